#include "store/redis_store.h"

#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <charconv>
#include <chrono>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "core/log.h"
#include "core/util.h"
#include "store/keyspace.h"

namespace gh::store {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using asio::awaitable;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

constexpr auto kConnectTimeout = std::chrono::seconds(2);
constexpr auto kCommandTimeout = std::chrono::seconds(2);
constexpr auto kBackoffFirst = std::chrono::milliseconds(100);
constexpr auto kBackoffMax = std::chrono::milliseconds(1000);

struct Reply {
  int type = REDIS_REPLY_NIL;
  std::string str;
  long long integer = 0;
  std::vector<Reply> elements;
  bool error() const { return type == REDIS_REPLY_ERROR; }
};

// hiredis's reader builds our Reply tree directly (no redisReply tree to copy from and free):
// the root is the reader's own slot (its privdata, owned by the read loop, which moves each
// finished reply out of it), every element is constructed in place in its parent's array.
Reply* reply_slot(const redisReadTask* t) {
  if (t->parent) {
    auto* parent = static_cast<Reply*>(t->parent->obj);
    return &parent->elements[static_cast<size_t>(t->idx)];
  }
  auto* root = static_cast<Reply*>(t->privdata);
  *root = Reply();
  return root;
}
void* read_string(const redisReadTask* t, char* s, size_t n) {
  Reply* r = reply_slot(t);
  r->type = t->type;
  r->str.assign(s, n);
  return r;
}
void* read_array(const redisReadTask* t, int n) {
  Reply* r = reply_slot(t);
  r->type = REDIS_REPLY_ARRAY;
  r->elements.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return r;
}
void* read_integer(const redisReadTask* t, long long v) {
  Reply* r = reply_slot(t);
  r->type = REDIS_REPLY_INTEGER;
  r->integer = v;
  return r;
}
void* read_nil(const redisReadTask* t) {
  Reply* r = reply_slot(t);
  r->type = REDIS_REPLY_NIL;
  return r;
}
void free_root(void*) {}  // the root is the read loop's slot
redisReplyObjectFunctions g_reply_fns = {read_string, read_array, read_integer, read_nil,
                                         free_root};

using Command = std::vector<std::string>;

// RESP encoding, written straight into a buffer: a command is an array of bulk strings. The
// buffer is grown once per command to a bound, written through a pointer, and trimmed.
char* write_len(char* p, char tag, size_t n) {
  *p++ = tag;
  p = std::to_chars(p, p + 20, n).ptr;
  *p++ = '\r';
  *p++ = '\n';
  return p;
}
char* write_arg(char* p, std::string_view a) {
  p = write_len(p, '$', a.size());
  std::memcpy(p, a.data(), a.size());
  p += a.size();
  *p++ = '\r';
  *p++ = '\n';
  return p;
}
char* write_arg(char* p, int64_t v) {
  char b[24];
  char* e = std::to_chars(b, b + sizeof b, v).ptr;
  return write_arg(p, std::string_view(b, static_cast<size_t>(e - b)));
}
constexpr size_t kArgOverhead = 25;  // '$', up to 20 digits, CRLF, then CRLF after the bytes
size_t arg_bound(std::string_view a) { return a.size() + kArgOverhead; }
size_t arg_bound(int64_t) { return 20 + kArgOverhead; }

template <typename... Args>
size_t cmd_bound(const Args&... args) {
  return kArgOverhead + (arg_bound(args) + ...);
}
// Writes one command at `p`, which has room for cmd_bound(args...) bytes.
template <typename... Args>
char* write_cmd(char* p, const Args&... args) {
  p = write_len(p, '*', sizeof...(Args));
  ((p = write_arg(p, args)), ...);
  return p;
}
template <typename... Args>
void put_cmd(std::string& out, const Args&... args) {
  const size_t at = out.size();
  out.resize(at + cmd_bound(args...));
  char* p = write_cmd(out.data() + at, args...);
  out.resize(static_cast<size_t>(p - out.data()));
}

void encode(const Command& args, std::string& out) {
  size_t bound = kArgOverhead;
  for (const auto& a : args) bound += arg_bound(a);
  const size_t at = out.size();
  out.resize(at + bound);
  char* p = write_len(out.data() + at, '*', args.size());
  for (const auto& a : args) p = write_arg(p, std::string_view(a));
  out.resize(static_cast<size_t>(p - out.data()));
}

// Commands already encoded, how many there are, and the key that routes them on a cluster.
struct Batch {
  std::string resp;
  size_t count = 0;
  std::string route_key;  // "" = any node
};

const char* const kIncrScript = R"lua(
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if v == tonumber(ARGV[1]) and tonumber(ARGV[2]) > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return v
)lua";

std::string sha1_hex(std::string_view s) {
  unsigned char d[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
  return hex_encode(d, sizeof d);
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct CtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};

}  // namespace

struct RedisStore::Impl {
  uint64_t id = 0;
  std::string host;
  std::string port;
  std::string username, password;
  int database = 0;
  bool tls = false;
  bool verify_host = true;
  std::unique_ptr<SSL_CTX, CtxFree> ssl_ctx;
  std::string incr_sha = sha1_hex(kIncrScript);
  std::string member_prefix = random_hex(8);  // unique members in the sliding logs
  std::atomic<uint64_t> member_seq{0};
  std::atomic<bool> up{false};
  std::atomic<int> reported{-1};  // -1 = nothing reported yet, 0 = down, 1 = up

  // Redis Cluster: the node serving each of the 16384 slots ("host:port"), learnt from
  // CLUSTER SLOTS and corrected by MOVED replies.
  bool cluster = false;
  std::vector<std::pair<std::string, std::string>> seeds;  // host, port
  std::mutex slots_mu;
  std::vector<std::string> slots;

  class Conn;
  std::mutex subs_mu;
  std::vector<std::pair<std::thread::id, std::shared_ptr<Conn>>> subscribers;

  // This thread's connection to a node ("" = the configured one).
  std::shared_ptr<Conn> local(const asio::any_io_executor& ex, const std::shared_ptr<Impl>& self,
                              const std::string& node = {});
  std::string node_for_slot(unsigned slot) {
    std::lock_guard<std::mutex> lock(slots_mu);
    return slot < slots.size() ? slots[slot] : std::string();
  }
  void set_slot(unsigned slot, const std::string& node) {
    std::lock_guard<std::mutex> lock(slots_mu);
    if (slots.size() != 16384) slots.assign(16384, std::string());
    slots[slot] = node;
  }
  std::vector<std::string> masters() {
    std::lock_guard<std::mutex> lock(slots_mu);
    std::vector<std::string> out;
    for (const auto& n : slots) {
      if (!n.empty() && std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
    }
    return out;
  }
  void set_up(bool v, const std::string& why) {
    up.store(v);
    int was = reported.exchange(v ? 1 : 0);  // log each change once, and the first failure
    if (was != (v ? 1 : 0)) {
      if (v) {
        log::info("redis store connected", {{"host", host}, {"port", port}});
      } else {
        log::error("redis store unreachable: failing closed", {{"host", host}, {"reason", why}});
      }
    }
  }
};

// One connection, owned by one thread: commands are pipelined (written as they come, replies
// matched in order), reconnection with backoff runs in the background while anything holds it.
class RedisStore::Impl::Conn : public std::enable_shared_from_this<RedisStore::Impl::Conn> {
 public:
  using OnMessage = std::function<void()>;
  Conn(asio::any_io_executor ex, std::shared_ptr<Impl> impl, std::string host, std::string port,
       OnMessage on_message = {})
      : ex_(std::move(ex)),
        impl_(std::move(impl)),
        host_(std::move(host)),
        port_(std::move(port)),
        on_message_(std::move(on_message)),
        broken_(ex_),
        backoff_timer_(ex_),
        watchdog_timer_(ex_) {}

  void start() {
    asio::co_spawn(
        ex_, [self = shared_from_this()] { return self->maintain(); }, asio::detached);
  }

  void close() {
    closed_ = true;
    close_socket();
    broken_.cancel();
    backoff_timer_.cancel();
    watchdog_timer_.cancel();
  }

  // Sends `count` encoded commands (`resp`) with the next write and returns their replies;
  // nullopt when the connection is down, failed or did not answer in time (the caller fails
  // closed).
  awaitable<std::optional<std::vector<Reply>>> exec(std::string_view resp, size_t count) {
    if (state_ == State::kConnecting) {
      auto t = std::make_shared<asio::steady_timer>(ex_, kConnectTimeout);
      state_waiters_.push_back(t);
      co_await t->async_wait(nothrow);
    }
    if (state_ != State::kUp) co_return std::nullopt;
    auto w = enqueue(resp, count);  // send()'s body, without a coroutine frame of its own
    if (!w->done && !w->failed) co_await w->timer.async_wait(nothrow);
    if (!w->done) co_return std::nullopt;
    co_return std::move(w->replies);
  }

 private:
  enum class State { kConnecting, kUp, kDown, kClosed };
  using TlsStream = asio::ssl::stream<tcp::socket>;

  struct Waiter {
    // The timer only wakes the waiting coroutine (it never expires by itself, so arming it
    // costs no timerfd update); the connection's watchdog enforces the command timeout.
    explicit Waiter(const asio::any_io_executor& ex) : timer(ex, Clock::time_point::max()) {}
    asio::steady_timer timer;
    Clock::time_point sent_at = Clock::now();
    std::vector<Reply> replies;
    size_t expected = 0;
    bool done = false;
    bool failed = false;
  };

  void set_state(State s) {
    state_ = s;
    for (auto& t : state_waiters_) t->cancel();
    state_waiters_.clear();
  }

  void close_socket() {
    error_code ec;
    if (tls_) tls_->next_layer().close(ec);
    if (plain_) plain_->close(ec);
  }

  void fail_all() {
    for (auto& w : waiters_) {
      w->failed = true;
      w->timer.cancel();
    }
    waiters_.clear();
    out_.clear();
  }

  awaitable<std::pair<error_code, size_t>> read_some(asio::mutable_buffer b) {
    if (tls_) {
      auto [ec, n] = co_await tls_->async_read_some(b, nothrow);
      co_return std::make_pair(ec, n);
    }
    auto [ec, n] = co_await plain_->async_read_some(b, nothrow);
    co_return std::make_pair(ec, n);
  }

  awaitable<error_code> write_all(const std::string& data) {
    if (tls_) {
      auto [ec, n] = co_await asio::async_write(*tls_, asio::buffer(data), nothrow);
      co_return ec;
    }
    auto [ec, n] = co_await asio::async_write(*plain_, asio::buffer(data), nothrow);
    co_return ec;
  }

  // Closes the socket if `t` expires first: every network step has a deadline.
  std::shared_ptr<asio::steady_timer> deadline(Clock::duration d) {
    auto t = std::make_shared<asio::steady_timer>(ex_, d);
    asio::co_spawn(
        ex_,
        [t, self = shared_from_this()]() -> awaitable<void> {
          auto [ec] = co_await t->async_wait(nothrow);
          if (!ec) self->close_socket();
        },
        asio::detached);
    return t;
  }

  awaitable<std::optional<std::vector<Reply>>> send(const std::vector<Command>& cmds) {
    std::string resp;
    for (const auto& c : cmds) encode(c, resp);
    auto w = enqueue(resp, cmds.size());
    if (!w->done && !w->failed) co_await w->timer.async_wait(nothrow);
    if (!w->done) co_return std::nullopt;
    co_return std::move(w->replies);
  }

  // Queues `count` encoded commands for the next write; their replies arrive in the returned
  // waiter.
  std::shared_ptr<Waiter> enqueue(std::string_view resp, size_t count) {
    auto w = std::make_shared<Waiter>(ex_);
    w->expected = count;
    w->replies.reserve(count);
    out_.append(resp);
    waiters_.push_back(w);
    if (!writing_) {
      // Written once the handlers already ready have run, so that the commands of every request
      // handled in this turn of the event loop leave in one write (one system call and one read
      // for Redis, instead of one each per request).
      writing_ = true;
      asio::post(ex_, [self = shared_from_this()] {
        asio::co_spawn(
            self->ex_, [self]() { return self->write_out(); }, asio::detached);
      });
    }
    return w;
  }

  awaitable<void> write_out() {
    while (!out_.empty()) {
      wbuf_.swap(out_);
      auto ec = co_await write_all(wbuf_);
      wbuf_.clear();
      if (ec) {
        close_socket();  // the reader sees it and fails every waiter
        break;
      }
    }
    writing_ = false;
  }

  awaitable<bool> connect_once(std::string& why) {
    tcp::resolver resolver(ex_);
    auto [rec, results] = co_await resolver.async_resolve(host_, port_, nothrow);
    if (rec) {
      why = "cannot resolve " + host_ + ": " + rec.message();
      co_return false;
    }
    error_code cec = asio::error::host_not_found;
    for (const auto& r : results) {
      plain_.emplace(ex_);
      tls_.reset();
      auto t = deadline(kConnectTimeout);
      auto [e] = co_await plain_->async_connect(r.endpoint(), nothrow);
      t->cancel();
      cec = e;
      if (!e) break;
    }
    if (cec) {
      why = "cannot connect: " + cec.message();
      co_return false;
    }
    error_code ignored;
    plain_->set_option(tcp::no_delay(true), ignored);
    if (impl_->tls) {
      SSL* ssl = SSL_new(impl_->ssl_ctx.get());
      if (!ssl) {
        why = "cannot create a TLS session";
        co_return false;
      }
      const auto& h = host_;
      bool is_ip = h.find(':') != std::string::npos ||
                   h.find_first_not_of("0123456789.") == std::string::npos;
      if (!is_ip) SSL_set_tlsext_host_name(ssl, h.c_str());
      if (impl_->verify_host) {
        X509_VERIFY_PARAM* p = SSL_get0_param(ssl);
        if (is_ip) {
          X509_VERIFY_PARAM_set1_ip_asc(p, h.c_str());
        } else {
          X509_VERIFY_PARAM_set_hostflags(p, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
          X509_VERIFY_PARAM_set1_host(p, h.c_str(), h.size());
        }
      }
      tls_ = std::make_unique<TlsStream>(std::move(*plain_), ssl);
      plain_.reset();
      auto t = deadline(kConnectTimeout);
      auto [hec] = co_await tls_->async_handshake(asio::ssl::stream_base::client, nothrow);
      t->cancel();
      if (hec) {
        long vr = SSL_get_verify_result(tls_->native_handle());
        why = "TLS handshake failed: " +
              (vr != X509_V_OK ? std::string(X509_verify_cert_error_string(vr)) : hec.message());
        co_return false;
      }
    }
    co_return true;
  }

  awaitable<void> read_loop() {
    Reply slot;  // outlives the reader
    std::unique_ptr<redisReader, void (*)(redisReader*)> reader(
        redisReaderCreateWithFunctions(&g_reply_fns), redisReaderFree);
    if (reader) reader->privdata = &slot;  // no reader (out of memory): straight to the end
    std::vector<char> buf(16384);
    while (reader && !closed_) {
      auto [ec, n] = co_await read_some(asio::buffer(buf));
      if (ec) break;
      if (redisReaderFeed(reader.get(), buf.data(), n) != REDIS_OK) break;
      bool bad = false;
      while (true) {
        void* raw = nullptr;
        if (redisReaderGetReply(reader.get(), &raw) != REDIS_OK) {
          bad = true;
          break;
        }
        if (!raw) break;
        Reply r = std::move(*static_cast<Reply*>(raw));
        if (!waiters_.empty()) {
          auto& w = waiters_.front();
          w->replies.push_back(std::move(r));
          if (w->replies.size() == w->expected) {
            w->done = true;
            w->timer.cancel();
            waiters_.pop_front();
          }
        } else if (on_message_ && r.type == REDIS_REPLY_ARRAY && !r.elements.empty() &&
                   r.elements[0].str == "message") {
          on_message_();
        } else {
          bad = true;  // a reply nobody asked for: out of step
          break;
        }
      }
      if (bad) break;
    }
    close_socket();
    broken_now_ = true;
    fail_all();  // nobody waits for a reply that cannot come
    broken_.cancel();
  }

  // A command unanswered for kCommandTimeout: the connection cannot be trusted to stay in step,
  // so it is closed (every waiter fails, the maintainer reconnects).
  awaitable<void> watchdog() {
    auto& t = watchdog_timer_;
    while (!closed_ && !broken_now_) {
      t.expires_after(std::chrono::milliseconds(250));
      co_await t.async_wait(nothrow);
      if (!waiters_.empty() && Clock::now() - waiters_.front()->sent_at > kCommandTimeout) {
        log::warn("redis command timed out: reconnecting");
        close_socket();
        break;
      }
    }
  }

  awaitable<bool> handshake(std::string& why) {
    std::vector<Command> cmds;
    if (!impl_->password.empty()) {
      if (impl_->username.empty())
        cmds.push_back({"AUTH", impl_->password});
      else
        cmds.push_back({"AUTH", impl_->username, impl_->password});
    }
    if (impl_->database > 0 && !impl_->cluster)
      cmds.push_back({"SELECT", std::to_string(impl_->database)});
    if (on_message_) cmds.push_back({"SUBSCRIBE", kKeyEventsChannel});
    if (cmds.empty()) cmds.push_back({"PING"});
    auto r = co_await send(std::move(cmds));
    if (!r) {
      why = "no answer to the connection set-up";
      co_return false;
    }
    for (const auto& rep : *r) {
      if (rep.error()) {
        why = rep.str;
        co_return false;
      }
    }
    co_return true;
  }

  awaitable<void> maintain() {
    auto backoff = kBackoffFirst;
    while (!closed_) {
      set_state(State::kConnecting);
      std::string why;
      bool ok = co_await connect_once(why);
      if (ok && !closed_) {
        broken_.expires_at(Clock::time_point::max());
        broken_now_ = false;
        asio::co_spawn(
            ex_, [self = shared_from_this()] { return self->read_loop(); }, asio::detached);
        asio::co_spawn(
            ex_, [self = shared_from_this()] { return self->watchdog(); }, asio::detached);
        ok = co_await handshake(why);
        if (ok && !closed_) {
          set_state(State::kUp);
          impl_->set_up(true, "");
          backoff = kBackoffFirst;
          if (on_message_) on_message_();  // anything announced while we were away is lost
          co_await broken_.async_wait(nothrow);
          why = "connection lost";
        }
      }
      fail_all();
      close_socket();
      if (closed_) break;
      set_state(State::kDown);
      impl_->set_up(false, why);
      backoff_timer_.expires_after(backoff);
      co_await backoff_timer_.async_wait(nothrow);
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, kBackoffMax);
    }
    set_state(State::kClosed);
  }

  asio::any_io_executor ex_;
  std::shared_ptr<Impl> impl_;
  std::string host_, port_;
  OnMessage on_message_;
  std::optional<tcp::socket> plain_;
  std::unique_ptr<TlsStream> tls_;
  State state_ = State::kConnecting;
  bool closed_ = false;
  bool broken_now_ = false;
  std::deque<std::shared_ptr<Waiter>> waiters_;
  std::vector<std::shared_ptr<asio::steady_timer>> state_waiters_;
  std::string out_;   // commands not written yet
  std::string wbuf_;  // the ones being written
  bool writing_ = false;
  asio::steady_timer broken_;
  asio::steady_timer backoff_timer_;
  asio::steady_timer watchdog_timer_;
};

namespace {
std::atomic<uint64_t> g_next_id{1};
// This thread's connections: store id -> node -> connection.
thread_local std::unordered_map<
    uint64_t, std::unordered_map<std::string, std::shared_ptr<RedisStore::Impl::Conn>>>
    t_conns;
thread_local uint64_t t_last_id = 0;
thread_local std::weak_ptr<RedisStore::Impl::Conn> t_last_conn;
}  // namespace

std::shared_ptr<RedisStore::Impl::Conn> RedisStore::Impl::local(const asio::any_io_executor& ex,
                                                                const std::shared_ptr<Impl>& self,
                                                                const std::string& node) {
  // The common case (one server): this thread's last connection to it, without building names.
  if (node.empty() && t_last_id == id) {
    if (auto c = t_last_conn.lock()) return c;
  }
  std::string key = node.empty() ? host + ":" + port : node;
  auto& mine = t_conns[id];
  auto it = mine.find(key);
  if (it != mine.end()) return it->second;
  auto colon = key.rfind(':');
  auto c = std::make_shared<Conn>(ex, self, key.substr(0, colon), key.substr(colon + 1));
  mine[key] = c;
  c->start();
  if (node.empty()) {
    t_last_id = id;
    t_last_conn = c;
  }
  return c;
}

namespace {

std::string tls_version_error(const config::GatewayConfig& cfg, const char* field) {
  return cfg.file + ": field \"storage." + field + "\": expected \"1.2\" or \"1.3\"";
}

int parse_tls_version(const std::string& v, int dflt, const config::GatewayConfig& cfg,
                      const char* field) {
  if (v.empty()) return dflt;
  if (v == "1.2" || v == "771") return TLS1_2_VERSION;
  if (v == "1.3" || v == "772") return TLS1_3_VERSION;
  throw config::ConfigError(tls_version_error(cfg, field));
}

}  // namespace

RedisStore::RedisStore(const config::GatewayConfig& cfg) : impl_(std::make_shared<Impl>()) {
  const auto& s = cfg.storage;
  auto field = [&](const char* f, const std::string& msg) {
    return config::ConfigError(cfg.file + ": field \"storage." + f + "\": " + msg);
  };
  impl_->id = g_next_id++;
  impl_->host = s.host;
  impl_->port = std::to_string(s.port);
  for (const auto& a : s.addrs) {
    auto colon = a.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == a.size())
      throw field("addrs", "expected host:port, got \"" + a + "\"");
    std::string h = a.substr(0, colon);
    if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
    impl_->seeds.emplace_back(h, a.substr(colon + 1));
  }
  if (impl_->seeds.empty()) impl_->seeds.emplace_back(impl_->host, impl_->port);
  // Without cluster mode Tyk takes the first address; in cluster mode any one of them answers
  // CLUSTER SLOTS.
  impl_->host = impl_->seeds.front().first;
  impl_->port = impl_->seeds.front().second;
  impl_->cluster = s.enable_cluster;
  if (s.enable_cluster && s.database != 0)
    throw field("database", "Redis Cluster has only database 0");
  impl_->username = s.username;
  impl_->password = s.password;
  impl_->database = s.database;
  impl_->tls = s.use_ssl;
  if (s.use_ssl) {
    impl_->ssl_ctx.reset(SSL_CTX_new(TLS_client_method()));
    SSL_CTX* c = impl_->ssl_ctx.get();
    SSL_CTX_set_min_proto_version(
        c, parse_tls_version(s.tls_min_version, TLS1_2_VERSION, cfg, "tls_min_version"));
    SSL_CTX_set_max_proto_version(
        c, parse_tls_version(s.tls_max_version, TLS1_3_VERSION, cfg, "tls_max_version"));
    SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    if (!s.ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(c, s.ca_file.c_str(), nullptr) != 1)
        throw field("ca_file", "cannot read CA certificates from " + s.ca_file);
    } else {
      SSL_CTX_set_default_verify_paths(c);
    }
    if (!s.cert_file.empty() || !s.key_file.empty()) {
      if (s.cert_file.empty() || s.key_file.empty())
        throw field(s.cert_file.empty() ? "cert_file" : "key_file",
                    "cert_file and key_file go together");
      if (SSL_CTX_use_certificate_chain_file(c, s.cert_file.c_str()) != 1)
        throw field("cert_file", "cannot read a certificate from " + s.cert_file);
      if (SSL_CTX_use_PrivateKey_file(c, s.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
        throw field("key_file", "cannot read a private key from " + s.key_file);
      if (SSL_CTX_check_private_key(c) != 1)
        throw field("key_file", "the key does not match cert_file");
    }
    if (s.ssl_insecure_skip_verify) {
      SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
      impl_->verify_host = false;
      log::warn("Redis TLS verification is disabled (storage.ssl_insecure_skip_verify)");
    } else {
      SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
    }
  }
}

RedisStore::~RedisStore() {
  std::lock_guard<std::mutex> lock(impl_->subs_mu);
  impl_->subscribers.clear();
}

namespace {

// Redis Cluster's key slot: CRC16 (XMODEM) of the key, or of its {hash tag}, modulo 16384.
unsigned key_slot(std::string_view key) {
  auto open = key.find('{');
  if (open != std::string_view::npos) {
    auto close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1)
      key = key.substr(open + 1, close - open - 1);
  }
  unsigned crc = 0;
  for (unsigned char ch : key) {
    crc ^= static_cast<unsigned>(ch) << 8;
    for (int i = 0; i < 8; ++i) crc = (crc & 0x8000) ? ((crc << 1) ^ 0x1021) : (crc << 1);
    crc &= 0xffff;
  }
  return crc % 16384;
}

// The key a command is routed by ("" = any node).
std::string_view routing_key(const Command& c) {
  if (c.empty()) return {};
  if (c[0] == "EVALSHA" || c[0] == "EVAL") {
    if (c.size() > 3 && c[2] != "0") return std::string_view(c[3]);
    return {};
  }
  if (c[0] == "PUBLISH" || c[0] == "SCAN" || c[0] == "PING" || c[0] == "CLUSTER") return {};
  return c.size() > 1 ? std::string_view(c[1]) : std::string_view();
}

// The commands as one encoded batch, routed by the first key among them.
Batch batch_of(const std::vector<Command>& cmds) {
  Batch b;
  b.count = cmds.size();
  for (const auto& c : cmds) {
    encode(c, b.resp);
    if (b.route_key.empty()) b.route_key.assign(routing_key(c));
  }
  return b;
}

awaitable<std::optional<std::vector<Reply>>> run_at(const std::shared_ptr<RedisStore::Impl>& impl,
                                                    const std::string& node, const Batch& b) {
  auto ex = co_await asio::this_coro::executor;
  auto conn = impl->local(ex, impl, node);
  auto r = co_await conn->exec(b.resp, b.count);
  co_return r;
}

// Learns which node serves which slot (CLUSTER SLOTS from a known master or a seed).
awaitable<bool> refresh_slots(const std::shared_ptr<RedisStore::Impl>& impl) {
  auto nodes = impl->masters();
  for (const auto& [h, p] : impl->seeds) nodes.push_back(h + ":" + p);
  for (const auto& node : nodes) {
    Batch b;
    put_cmd(b.resp, std::string_view("CLUSTER"), std::string_view("SLOTS"));
    b.count = 1;
    auto r = co_await run_at(impl, node, b);
    if (!r || r->empty() || (*r)[0].type != REDIS_REPLY_ARRAY) continue;
    std::vector<std::string> slots(16384);
    std::string asked_host = node.substr(0, node.rfind(':'));
    for (const auto& range : (*r)[0].elements) {
      if (range.elements.size() < 3 || range.elements[2].elements.size() < 2) continue;
      auto from = range.elements[0].integer, to = range.elements[1].integer;
      const auto& master = range.elements[2].elements;
      std::string host = master[0].str.empty() ? asked_host : master[0].str;
      std::string addr = host + ":" + std::to_string(master[1].integer);
      for (auto i = from; i <= to && i < 16384; ++i) slots[static_cast<size_t>(i)] = addr;
    }
    std::lock_guard<std::mutex> lock(impl->slots_mu);
    impl->slots = std::move(slots);
    co_return true;
  }
  co_return false;
}

// Commands about one key (or none), sent to the node that serves it; MOVED updates the slot map
// and resends, ASK resends once to the importing node after ASKING.
awaitable<std::optional<std::vector<Reply>>> run(const std::shared_ptr<RedisStore::Impl>& impl,
                                                 Batch b) {
  if (!impl->cluster) {  // straight to this thread's connection (one coroutine frame fewer)
    auto ex = co_await asio::this_coro::executor;
    auto r = co_await impl->local(ex, impl)->exec(b.resp, b.count);
    co_return r;
  }
  std::string node;
  if (!b.route_key.empty()) {
    unsigned slot = key_slot(b.route_key);
    node = impl->node_for_slot(slot);
    if (node.empty()) {
      co_await refresh_slots(impl);
      node = impl->node_for_slot(slot);
    }
  }
  bool asking = false;
  for (int hop = 0; hop < 5; ++hop) {
    std::optional<std::vector<Reply>> r;
    if (asking) {
      Batch a;
      a.resp = "*1\r\n$6\r\nASKING\r\n" + b.resp;
      a.count = b.count + 1;
      r = co_await run_at(impl, node, a);
      if (r && !r->empty()) r->erase(r->begin());
    } else {
      r = co_await run_at(impl, node, b);
    }
    if (!r) co_return r;
    std::string redirect;
    for (const auto& rep : *r) {
      if (rep.error() && (rep.str.rfind("MOVED ", 0) == 0 || rep.str.rfind("ASK ", 0) == 0)) {
        redirect = rep.str;
        break;
      }
    }
    if (redirect.empty()) co_return r;
    auto sp1 = redirect.find(' ');
    auto sp2 = redirect.find(' ', sp1 + 1);
    if (sp2 == std::string::npos) co_return std::nullopt;
    unsigned slot = 0;
    std::from_chars(redirect.data() + sp1 + 1, redirect.data() + sp2, slot);
    node = redirect.substr(sp2 + 1);
    asking = redirect[0] == 'A';
    if (!asking) {
      impl->set_slot(slot, node);
      co_await refresh_slots(impl);  // one slot moved: others may have too
    }
  }
  co_return std::nullopt;
}

awaitable<std::optional<std::vector<Reply>>> run(const std::shared_ptr<RedisStore::Impl>& impl,
                                                 std::vector<Command> cmds) {
  auto r = co_await run(impl, batch_of(cmds));
  co_return r;
}

awaitable<std::optional<Reply>> run_one(const std::shared_ptr<RedisStore::Impl>& impl,
                                        Command cmd) {
  std::vector<Command> cmds;
  cmds.push_back(std::move(cmd));
  auto r = co_await run(impl, std::move(cmds));
  if (!r || r->empty()) co_return std::nullopt;
  co_return std::move(r->front());
}

// EVALSHA, loading the script on first use (NOSCRIPT).
awaitable<std::optional<Reply>> eval(const std::shared_ptr<RedisStore::Impl>& impl,
                                     const char* script, const std::string& sha,
                                     std::vector<std::string> keys, std::vector<std::string> args) {
  Command c{"EVALSHA", sha, std::to_string(keys.size())};
  for (auto& k : keys) c.push_back(k);
  for (auto& a : args) c.push_back(a);
  auto r = co_await run_one(impl, c);
  if (r && r->error() && r->str.rfind("NOSCRIPT", 0) == 0) {
    c[0] = "EVAL";
    c[1] = script;
    r = co_await run_one(impl, c);
  }
  if (r && r->error()) {
    log::error("redis script failed", {{"error", r->str}});
    co_return std::nullopt;
  }
  co_return r;
}
}  // namespace

awaitable<std::optional<std::string>> RedisStore::get(std::string key) {
  Command c{"GET", std::move(key)};
  auto r = co_await run_one(impl_, std::move(c));
  if (!r || r->type != REDIS_REPLY_STRING) co_return std::nullopt;
  co_return std::move(r->str);
}

awaitable<std::optional<Store::Entry>> RedisStore::get_entry(std::string key) {
  std::vector<Command> cmds;
  cmds.push_back(Command{"GET", key});
  cmds.push_back(Command{"PTTL", key});
  auto r = co_await run(impl_, std::move(cmds));
  if (!r || r->size() != 2 || (*r)[0].type != REDIS_REPLY_STRING) co_return std::nullopt;
  Entry e;
  e.value = std::move((*r)[0].str);
  long long pttl = (*r)[1].integer;
  if (pttl > 0) e.expires_at = unix_now() + (pttl + 999) / 1000;
  co_return e;
}

awaitable<bool> RedisStore::set(std::string key, std::string value, int64_t ttl_seconds) {
  Command c{"SET", std::move(key), std::move(value)};
  if (ttl_seconds > 0) {
    c.push_back("EX");
    c.push_back(std::to_string(ttl_seconds));
  }
  auto r = co_await run_one(impl_, std::move(c));
  co_return r && r->type == REDIS_REPLY_STATUS;
}

awaitable<bool> RedisStore::set_many(std::vector<Write> writes) {
  if (writes.empty()) co_return true;
  if (impl_->cluster) {  // keys live on different nodes: one at a time
    bool ok = true;
    for (auto& w : writes) {
      bool one = co_await set(std::move(w.key), std::move(w.value), w.ttl_seconds);
      ok = ok && one;
    }
    co_return ok;
  }
  std::vector<Command> cmds;
  for (auto& w : writes) {
    Command c{"SET", std::move(w.key), std::move(w.value)};
    if (w.ttl_seconds > 0) {
      c.push_back("EX");
      c.push_back(std::to_string(w.ttl_seconds));
    }
    cmds.push_back(std::move(c));
  }
  auto r = co_await run(impl_, std::move(cmds));
  if (!r) co_return false;
  for (const auto& rep : *r)
    if (rep.type != REDIS_REPLY_STATUS) co_return false;
  co_return true;
}

awaitable<bool> RedisStore::del(std::string key) {
  Command c{"DEL", std::move(key)};
  auto r = co_await run_one(impl_, std::move(c));
  co_return r && r->type == REDIS_REPLY_INTEGER && r->integer > 0;
}

awaitable<std::vector<std::string>> RedisStore::scan(std::string prefix) {
  std::string pattern;
  for (char ch : prefix) {
    if (ch == '*' || ch == '?' || ch == '[' || ch == ']' || ch == '\\') pattern += '\\';
    pattern += ch;
  }
  pattern += '*';
  std::vector<std::string> out;
  std::vector<std::string> nodes{""};
  if (impl_->cluster) {  // every master holds a part of the keys
    if (impl_->masters().empty()) co_await refresh_slots(impl_);
    nodes = impl_->masters();
  }
  for (const auto& node : nodes) {
    std::string cursor = "0";
    for (int rounds = 0; rounds < 100000; ++rounds) {
      Batch b;
      put_cmd(b.resp, std::string_view("SCAN"), std::string_view(cursor), std::string_view("MATCH"),
              std::string_view(pattern), std::string_view("COUNT"), std::string_view("1000"));
      b.count = 1;
      auto r = co_await run_at(impl_, node, b);
      if (!r || r->empty()) break;
      auto& rep = r->front();
      if (rep.type != REDIS_REPLY_ARRAY || rep.elements.size() != 2) break;
      cursor = rep.elements[0].str;
      for (auto& e : rep.elements[1].elements) out.push_back(std::move(e.str));
      if (cursor == "0") break;
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  co_return out;
}

awaitable<std::optional<int64_t>> RedisStore::incr(std::string key, int64_t by,
                                                   int64_t ttl_seconds) {
  std::vector<std::string> keys{std::move(key)};
  std::vector<std::string> args{std::to_string(by), std::to_string(ttl_seconds)};
  auto r = co_await eval(impl_, kIncrScript, impl_->incr_sha, std::move(keys), std::move(args));
  if (!r || r->type != REDIS_REPLY_INTEGER) co_return std::nullopt;
  co_return static_cast<int64_t>(r->integer);
}

bool RedisStore::healthy() { return impl_->up.load(); }

namespace {

int64_t unix_now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The oldest entry's score in a ZRANGE ... WITHSCORES reply, if any.
std::optional<int64_t> oldest_score(const Reply& r) {
  if (r.type != REDIS_REPLY_ARRAY || r.elements.size() < 2) return std::nullopt;
  double v = 0;
  const auto& s = r.elements[1].str;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc()) return std::nullopt;
  return static_cast<int64_t>(v);
}

int64_t ceil_seconds(int64_t us) { return us <= 0 ? 0 : (us + 999999) / 1000000; }

// Rate limit (a sliding log on a sorted set) and quota (a counter that expires at the end of its
// period) of one request in one round trip of native commands: the sliding log's steps run as
// one transaction (MULTI/EXEC), so gateways sharing the log admit exactly `rate` per window;
// INCR is atomic by itself. The common case is this one round trip. A second one follows only
// when the request was refused (its log entry and its quota unit are taken back: a refused
// request uses neither) or when a quota period starts (the counter gets its expiry).
// Scripts would do it in one step but cost Redis several times the CPU of these commands.
// With a fixed window (Tyk's enable_fixed_window_rate_limiter) the rate limit is one INCR and
// PEXPIRE on the window's counter instead of the transaction.
awaitable<bool> limits_round_trip(const std::shared_ptr<RedisStore::Impl>& impl,
                                  const LimitRequest& req, bool rate, bool quota,
                                  LimitResult& out) {
  const int64_t now = unix_now_us();
  const auto per_us = static_cast<int64_t>(req.per * 1e6);
  // The commands go straight into one encoded batch (no per-command vectors or strings): one
  // pass sizes it, a second writes it through a pointer.
  char mbuf[96];
  std::string_view member;
  if (rate) {
    const std::string_view prefix = impl->member_prefix;
    char* m = std::to_chars(mbuf, mbuf + 24, now).ptr;
    *m++ = '-';
    m = std::copy_n(prefix.data(), std::min<size_t>(prefix.size(), 32), m);
    *m++ = '-';
    m = std::to_chars(m, mbuf + sizeof mbuf, impl->member_seq.fetch_add(1)).ptr;
    member = std::string_view(mbuf, static_cast<size_t>(m - mbuf));
  }
  const std::string_view rkey = req.rate_key, qkey = req.quota_key;
  const std::string_view kInf = "-inf", kZero = "0";
  using sv = std::string_view;
  // A fixed window is one counter (INCR is atomic: no transaction) that expires with its window.
  // On a cluster every limit batch is a transaction all the same: a slot being migrated answers
  // ASK to a command whose key has left, and outside MULTI the ASKING that lets the batch into
  // the importing node covers only its first command, so a plain pipeline would run in part on
  // each node. A transaction runs on one node or not at all.
  const bool fixed = rate && req.fixed_window;
  const bool multi = (rate && !fixed) || impl->cluster;
  const int64_t window_left_us = (req.window_end_ns / 1000) - now;
  auto commands = [&](auto&& cmd) {
    if (multi) cmd(sv("MULTI"));
    if (fixed) {
      cmd(sv("INCR"), rkey);
      cmd(sv("PEXPIRE"), rkey, std::max<int64_t>(1, (window_left_us + 999) / 1000));
    } else if (rate) {
      cmd(sv("ZREMRANGEBYSCORE"), rkey, kInf, now - per_us);
      cmd(sv("ZCARD"), rkey);
      cmd(sv("ZADD"), rkey, now, member);
      cmd(sv("PEXPIRE"), rkey, (per_us + 999) / 1000);
      if (req.want_rate_reset) cmd(sv("ZRANGE"), rkey, kZero, kZero, sv("WITHSCORES"));
    }
    if (quota) {
      cmd(sv("INCR"), qkey);
      cmd(sv("PTTL"), qkey);
    }
    if (multi) cmd(sv("EXEC"));
  };
  Batch b;
  size_t bound = 0;
  commands([&](const auto&... args) {
    bound += cmd_bound(args...);
    ++b.count;
  });
  b.resp.resize(bound);
  char* p = b.resp.data();
  commands([&](const auto&... args) { p = write_cmd(p, args...); });
  b.resp.resize(static_cast<size_t>(p - b.resp.data()));
  if (impl->cluster) b.route_key = rate ? req.rate_key : req.quota_key;
  auto r = co_await run(impl, std::move(b));
  if (!r || r->empty()) co_return false;
  const std::vector<Reply>* res = &*r;
  if (multi) {
    if (r->back().type != REDIS_REPLY_ARRAY) {
      std::string why = r->back().str;
      for (const auto& e : *r) {
        if (e.error()) {
          why = e.str;
          break;
        }
      }
      log::error("redis limit transaction failed", {{"error", why}});
      co_return false;
    }
    res = &r->back().elements;
  }
  const size_t expected = (fixed  ? 2
                           : rate ? 4 + (req.want_rate_reset ? 1 : 0)
                                  : 0) +
                          (quota ? 2 : 0);
  if (res->size() != expected) {
    log::error("redis limit transaction answered out of step",
               {{"replies", std::to_string(res->size())}});
    co_return false;
  }
  for (const auto& e : *res) {
    if (e.error()) {
      log::error("redis limit command failed", {{"error", e.str}});
      co_return false;
    }
  }
  size_t i = 0;
  std::vector<Command> after;  // the second round trip, when one is needed
  bool rate_refused = false;
  if (fixed) {
    // Tyk's rule: the request is admitted when the window's count, its own included, is at
    // most `rate`. A refusal is not taken back: once over, the count only climbs until the
    // window ends, so no later request in it is admitted either way.
    int64_t n = (*res)[i++].integer;
    ++i;  // PEXPIRE
    out.rate_reset_s = ceil_seconds(window_left_us);
    out.rate_allowed = n <= req.rate;
    rate_refused = !out.rate_allowed;
    out.rate_remaining = out.rate_allowed ? req.rate - n : 0;
  } else if (rate) {
    ++i;  // ZREMRANGEBYSCORE
    int64_t n = (*res)[i++].integer;
    i += 2;  // ZADD, PEXPIRE
    if (n >= req.rate) {
      rate_refused = true;
      out.rate_allowed = false;
      out.rate_remaining = 0;
      after.push_back(Command{"ZREM", req.rate_key, std::string(member)});
    } else {
      out.rate_allowed = true;
      out.rate_remaining = std::max<int64_t>(0, req.rate - n - 1);
      out.rate_reset_s = 0;
    }
    if (req.want_rate_reset) {
      // This request's entry is the newest, so the oldest is the same with or without it.
      auto oldest = oldest_score((*res)[i++]);
      out.rate_reset_s = oldest ? ceil_seconds(*oldest + per_us - now) : ceil_seconds(per_us);
    }
  }
  int64_t used = 0, pttl = -1;
  if (quota) {
    used = (*res)[i++].integer;
    pttl = (*res)[i++].integer;
    if (rate_refused) {
      after.push_back(Command{"DECR", req.quota_key});
    } else {
      if (pttl < 0 && req.quota_renewal > 0) {
        // A new period (or a counter whose expiry was never set): it ends `renewal` from now.
        after.push_back(Command{"EXPIRE", req.quota_key, std::to_string(req.quota_renewal)});
        pttl = req.quota_renewal * 1000;
      }
      out.quota_allowed = used <= req.quota_max;
      out.quota_remaining = out.quota_allowed ? req.quota_max - used : 0;
      out.quota_renews_at = pttl > 0 ? unix_now() + (pttl + 999) / 1000 : 0;
      if (!out.quota_allowed) after.push_back(Command{"DECR", req.quota_key});
    }
  }
  if (!after.empty()) co_await run(impl, std::move(after));
  co_return true;
}

}  // namespace

awaitable<LimitResult> RedisStore::take_limits(LimitRequest req) {
  LimitResult out;
  bool rate = req.rate > 0 && req.per > 0 && !req.rate_key.empty();
  bool quota = req.quota_max > 0 && !req.quota_key.empty();
  out.ok = true;
  if (!rate && !quota) co_return out;
  if (rate && req.fixed_window)
    req.rate_key = fixed_window_key(std::move(req.rate_key), req.window_start_ns);
  // On a cluster the two counters usually live in different slots: two round trips, the quota
  // only when the rate limit admitted the request.
  bool split = impl_->cluster && rate && quota && key_slot(req.rate_key) != key_slot(req.quota_key);
  if (!split) {
    out.ok = co_await limits_round_trip(impl_, req, rate, quota, out);
    co_return out;
  }
  out.ok = co_await limits_round_trip(impl_, req, true, false, out);
  if (!out.ok || !out.rate_allowed) co_return out;
  out.ok = co_await limits_round_trip(impl_, req, false, true, out);
  co_return out;
}

awaitable<void> RedisStore::announce_key_change() {
  Command c{"PUBLISH", kKeyEventsChannel, "keys"};
  co_await run_one(impl_, std::move(c));
}

void RedisStore::watch_key_changes(asio::io_context& ioc, std::function<void()> on_change) {
  auto c = std::make_shared<Impl::Conn>(ioc.get_executor(), impl_, impl_->host, impl_->port,
                                        std::move(on_change));
  {
    std::lock_guard<std::mutex> lock(impl_->subs_mu);
    impl_->subscribers.emplace_back(std::this_thread::get_id(), c);
  }
  c->start();
}

void RedisStore::close_thread(bool keep_watch) {
  if (t_last_id == impl_->id) t_last_conn.reset();
  if (auto it = t_conns.find(impl_->id); it != t_conns.end()) {
    for (auto& [node, c] : it->second) c->close();
    t_conns.erase(it);
  }
  if (keep_watch) return;
  std::lock_guard<std::mutex> lock(impl_->subs_mu);
  auto& subs = impl_->subscribers;
  for (auto it = subs.begin(); it != subs.end();) {
    if (it->first == std::this_thread::get_id()) {
      it->second->close();
      it = subs.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace gh::store
