#include "net/server.h"

#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "admin/certs_api.h"
#include "admin/control_api.h"
#include "admin/keys_api.h"
#include "auth/session.h"
#include "auth/token_source.h"
#include "core/log.h"
#include "core/util.h"
#include "http/chunked.h"
#include "http/h2_client.h"
#include "http/h2_server.h"
#include "http/headers.h"
#include "http/http1_parser.h"
#include "http/response.h"
#include "net/cert_expiry.h"
#include "net/cert_refs.h"
#include "net/server_certs.h"
#include "net/upstream_guard.h"
#include "net/upstream_plan.h"
#include "obs/access_log.h"
#include "policy/access.h"
#include "policy/limiter.h"
#include "policy/policy.h"
#include "policy/url_match.h"
#include "proxy/router.h"
#include "proxy/snapshot.h"
#include "store/embedded_store.h"
#include "store/keyspace.h"
#include "store/open_store.h"
#include "store/redis_store.h"
#include "tls/client_tls.h"
#include "tls/server_tls.h"

namespace gh::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using asio::awaitable;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
using namespace std::string_view_literals;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

namespace {

constexpr size_t kReadChunk = 16384;
constexpr size_t kWriteFlush = 65536;
constexpr size_t kMaxAdminBody = 10u << 20;
constexpr size_t kPoolPerKey = 1024;
constexpr size_t kSessionCacheSize = 100000;

const char* const kProxyError = "There was a problem proxying the request";
const char* const kTimeoutError = "Upstream service reached hard timeout.";
const char* const kStoreDown = "Key store not available";

// Appends the field line "name: value" CRLF with one size change (a head has a dozen of these).
void append_field(std::string& out, std::string_view name, std::string_view value) {
  const size_t at = out.size();
  out.resize(at + name.size() + value.size() + 4);
  char* p = out.data() + at;
  std::memcpy(p, name.data(), name.size());
  p += name.size();
  *p++ = ':';
  *p++ = ' ';
  std::memcpy(p, value.data(), value.size());
  p += value.size();
  *p++ = '\r';
  *p = '\n';
}

void append_decimal(std::string& out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<size_t>(r.ptr - buf));
}

bool list_has_token(std::string_view list, std::string_view token) {
  while (true) {
    size_t comma = list.find(',');
    if (iequals(trim(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) return false;
    list.remove_prefix(comma + 1);
  }
}

// Which fields a proxy must not forward (http::drop_when_forwarding), with the Connection
// header values held inline instead of a vector of listed names built per message.
class ConnectionLists {
 public:
  explicit ConnectionLists(const std::vector<http::Header>& headers) {
    for (const auto& h : headers) {
      if (h.name.size() != 10 || !iequals(h.name, "connection")) continue;
      if (n_ == kInline) {
        overflow_ = http::connection_listed(headers);
        break;
      }
      lists_[n_++] = h.value;
    }
  }
  bool drop(std::string_view name) const {
    if (http::is_hop_by_hop(name) || (name.size() == 14 && iequals(name, "content-length")))
      return true;
    if (!overflow_.empty()) return http::drop_when_forwarding(name, overflow_);
    for (size_t i = 0; i < n_; ++i) {
      if (list_has_token(lists_[i], name)) return true;
    }
    return false;
  }

 private:
  static constexpr size_t kInline = 4;
  std::string_view lists_[kInline];
  size_t n_ = 0;
  std::vector<std::string_view> overflow_;
};

// ---------------------------------------------------------------------------------------------
// A byte buffer with a read and a write position (no copy on consume). Its memory is never
// zero-filled: a connection that gives its buffer back between requests takes a fresh one for
// each request.
class Buffer {
 public:
  std::string_view data() const { return {buf_.get() + begin_, end_ - begin_}; }
  size_t size() const { return end_ - begin_; }
  void consume(size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  asio::mutable_buffer prepare(size_t n) {
    if (cap_ - end_ < n) {
      if (begin_ > 0) {
        std::memmove(buf_.get(), buf_.get() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
      }
      if (cap_ - end_ < n) {
        size_t cap = std::max(end_ + n, cap_ * 2);
        auto grown = std::make_unique_for_overwrite<char[]>(cap);
        if (end_ > 0) std::memcpy(grown.get(), buf_.get(), end_);
        buf_ = std::move(grown);
        cap_ = cap;
      }
    }
    return asio::buffer(buf_.get() + end_, cap_ - end_);
  }
  void commit(size_t n) { end_ += n; }
  // Gives the memory back (the buffer must be empty).
  void release() {
    buf_.reset();
    cap_ = begin_ = end_ = 0;
  }
  // Gives memory back while a connection sits idle.
  void release_if_empty() {
    if (end_ == begin_ && cap_ > kReadChunk) release();
  }

 private:
  std::unique_ptr<char[]> buf_;
  size_t cap_ = 0;
  size_t begin_ = 0, end_ = 0;
};

// ---------------------------------------------------------------------------------------------
// asio's reactor, used directly for reads. A read started with asio's async_wait makes the
// reactor re-arm the socket (epoll_ctl) every time, and asio's own async_read_some first tries
// a recv that, just after a request or a response went out, finds nothing: either way one
// system call per read that moves no byte. A ReadOp instead runs the read inside the reactor:
// at once when the reactor may have seen bytes arrive since the last read drained the socket,
// otherwise only on the next readiness edge. A read drained the socket when the kernel gave it
// fewer bytes than it asked for (or none): the op then answers done_and_exhausted, and the
// reactor skips the next read's first try until epoll reports the socket again. Edge-triggered
// epoll reports any byte that arrives after that recv, so nothing is missed.
enum class ReadStep { kWait, kDone, kDrained };

class Stream;
// The socket's reactor registration (asio keeps it in a protected member).
struct SocketAccess : tcp::socket {
  static constexpr auto impl() { return &SocketAccess::impl_; }
};

template <typename Handler, typename IoExecutor>
class ReadOp : public asio::detail::reactor_op {
 public:
  BOOST_ASIO_DEFINE_HANDLER_PTR(ReadOp);
  ReadOp(Stream* s, Buffer* in, bool release, Handler& h, const IoExecutor& ex)
      : reactor_op(error_code(), &ReadOp::do_perform, &ReadOp::do_complete),
        stream_(s),
        in_(in),
        release_(release),
        handler_(std::move(h)),
        work_(handler_, ex) {}

  static status do_perform(reactor_op* base);
  static void do_complete(void* owner, asio::detail::operation* base, const error_code&, size_t) {
    auto* o = static_cast<ReadOp*>(base);
    ptr p = {std::addressof(o->handler_), o, o};
    asio::detail::handler_work<Handler, IoExecutor> w(std::move(o->work_));
    asio::detail::binder2<Handler, error_code, size_t> handler(o->handler_, o->ec_,
                                                               o->bytes_transferred_);
    p.h = std::addressof(handler.handler_);
    p.reset();
    if (owner) {
      asio::detail::fenced_block b(asio::detail::fenced_block::half);
      w.complete(handler, handler.handler_);
    }
  }

 private:
  Stream* stream_;
  Buffer* in_;
  bool release_;
  Handler handler_;
  asio::detail::handler_work<Handler, IoExecutor> work_;
};

// ---------------------------------------------------------------------------------------------
// A plain TCP or TLS stream. TLS runs OpenSSL directly on the socket (non-blocking, read-ahead)
// and waits for readiness only when OpenSSL asks for it: no memory-BIO copy per record, and a
// write that the kernel accepts at once completes without a trip through the scheduler.
class Stream {
 public:
  explicit Stream(tcp::socket s) : sock_(std::move(s)) {}

  void start_tls(SSL* ssl) {
    ssl_.reset(ssl);
    error_code ec;
    sock_.non_blocking(true, ec);
    SSL_set_fd(ssl, static_cast<int>(sock_.native_handle()));
    // One recv per wake-up instead of a record header and then its body.
    SSL_set_read_ahead(ssl, 1);
    // Whether OpenSSL's last recv drained the socket (read_step).
    drained_ = std::make_unique<bool>(false);
    BIO* bio = SSL_get_rbio(ssl);
    BIO_set_callback_arg(bio, reinterpret_cast<char*>(drained_.get()));
    BIO_set_callback_ex(bio, &Stream::note_recv);
  }
  bool is_tls() const { return ssl_ != nullptr; }
  tcp::socket& lowest() { return sock_; }
  SSL* ssl() { return ssl_.get(); }

  awaitable<error_code> handshake(bool server) {
    if (server)
      SSL_set_accept_state(ssl_.get());
    else
      SSL_set_connect_state(ssl_.get());
    while (true) {
      if (!sock_.is_open()) co_return asio::error::bad_descriptor;
      clear_errors();
      int r = SSL_do_handshake(ssl_.get());
      if (r == 1) co_return error_code{};
      auto w = tcp::socket::wait_error;
      if (auto ec = status(r, w)) co_return ec;
      auto [wec] = co_await sock_.async_wait(w, nothrow);
      if (wec) co_return wec;
    }
  }
  // A read that does not suspend: true when it completed (bytes in `n`, or an error in `ec`),
  // false when the socket must first be ready for `w` (then read_some_after). Spares the
  // coroutine frame of read_some when the data is already there, as it mostly is under load.
  // A plain stream always answers false: asio's own read tries the socket first anyway.
  bool try_read_some(asio::mutable_buffer b, error_code& ec, size_t& n, tcp::socket::wait_type& w) {
    if (!ssl_) return false;
    // The watchdog may have closed the socket: its descriptor number may already be reused.
    if (!sock_.is_open()) {
      ec = asio::error::bad_descriptor;
      return true;
    }
    clear_errors();
    int r = SSL_read(ssl_.get(), b.data(), static_cast<int>(std::min<size_t>(b.size(), INT_MAX)));
    if (r > 0) {
      ec = {};
      n = static_cast<size_t>(r);
      return true;
    }
    w = tcp::socket::wait_error;
    ec = status(r, w);
    return static_cast<bool>(ec);
  }
  awaitable<std::pair<error_code, size_t>> read_some_after(asio::mutable_buffer b,
                                                           tcp::socket::wait_type w) {
    if (!ssl_) {
      auto [ec, n] = co_await sock_.async_read_some(b, nothrow);
      co_return std::make_pair(ec, n);
    }
    while (true) {
      auto [wec] = co_await sock_.async_wait(w, nothrow);
      if (wec) co_return std::make_pair(wec, 0);
      error_code ec;
      size_t n = 0;
      if (try_read_some(b, ec, n, w)) co_return std::make_pair(ec, n);
    }
  }
  // One attempt to read into `in` (ReadOp): kWait when nothing is there; kDrained when bytes
  // came and the socket is known to be empty now; kDone otherwise (bytes, or an error in
  // `ec`). OpenSSL asking to write first ends it with would_block (read_into then waits for
  // the socket to take bytes). `release`: the buffer goes back while there is nothing to read.
  ReadStep read_step(Buffer& in, bool release, error_code& ec, size_t& n) {
    if (!sock_.is_open()) {
      ec = asio::error::bad_descriptor;
      return ReadStep::kDone;
    }
    auto b = in.prepare(kReadChunk);
    if (!ssl_) {
      ssize_t r = ::recv(sock_.native_handle(), b.data(), b.size(), MSG_DONTWAIT);
      if (r > 0) {
        in.commit(static_cast<size_t>(r));
        n = static_cast<size_t>(r);
        return static_cast<size_t>(r) < b.size() ? ReadStep::kDrained : ReadStep::kDone;
      }
      if (r == 0) {
        ec = asio::error::eof;
        return ReadStep::kDone;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        if (release && in.size() == 0) in.release();
        return ReadStep::kWait;
      }
      ec = error_code(errno, boost::system::system_category());
      return ReadStep::kDone;
    }
    *drained_ = false;  // set by a short recv in this SSL_read only
    auto w = tcp::socket::wait_read;
    if (!try_read_some(b, ec, n, w)) {
      if (w == tcp::socket::wait_write) {
        ec = asio::error::would_block;
        return ReadStep::kDone;
      }
      if (release && in.size() == 0) in.release();
      return ReadStep::kWait;
    }
    if (ec) return ReadStep::kDone;
    in.commit(n);
    return *drained_ && !SSL_has_pending(ssl_.get()) ? ReadStep::kDrained : ReadStep::kDone;
  }
  // Reads what comes next into `in` (committed there), with no system call but the read itself
  // (ReadOp). `release`: `in`, when empty, gives its memory back while the read waits (an idle
  // client connection keeps no read buffer).
  awaitable<std::pair<error_code, size_t>> read_into(Buffer& in, bool release = false);
  // read_into, but with a read first whatever the reactor knows: for a read whose end may be
  // the peer's close. A read that took fewer bytes than it asked for drains the data, not a
  // FIN that came with them; only the next recv sees that.
  awaitable<std::pair<error_code, size_t>> read_now(Buffer& in) {
    error_code ec;
    size_t n = 0;
    if (read_step(in, false, ec, n) != ReadStep::kWait && ec != asio::error::would_block)
      co_return std::make_pair(ec, n);
    co_return co_await read_into(in);
  }
  void start_read_op(asio::detail::reactor_op* op, bool is_continuation) {
    if (!reactor_)
      reactor_ = &asio::use_service<asio::detail::reactor>(
          asio::query(sock_.get_executor(), asio::execution::context));
    auto& impl = (sock_.*SocketAccess::impl()).get_implementation();
    reactor_->start_op(asio::detail::reactor::read_op, impl.socket_, impl.reactor_data_, op,
                       is_continuation, true);
  }

  awaitable<std::pair<error_code, size_t>> read_some(asio::mutable_buffer b) {
    error_code ec;
    size_t n = 0;
    auto w = tcp::socket::wait_read;
    if (try_read_some(b, ec, n, w)) co_return std::make_pair(ec, n);
    co_return co_await read_some_after(b, w);
  }

  // Writes as much of `data` as the socket takes now, without suspending: true when all of it
  // was written or an error (in `ec`) ended the write; false with the rest left in `data` when
  // the socket must be ready for `w` first (then write_rest with exactly that rest: OpenSSL
  // wants a retried write repeated with the same arguments).
  bool try_write(std::string_view& data, error_code& ec, tcp::socket::wait_type& w) {
    ec = {};
    while (!data.empty()) {
      if (!sock_.is_open()) {
        ec = asio::error::bad_descriptor;
        return true;
      }
      if (!ssl_) {
        ssize_t r =
            ::send(sock_.native_handle(), data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r >= 0) {
          data.remove_prefix(static_cast<size_t>(r));
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
          w = tcp::socket::wait_write;
          return false;
        } else if (errno != EINTR) {
          ec = error_code(errno, boost::system::system_category());
          return true;
        }
        continue;
      }
      clear_errors();
      // Without partial writes OpenSSL reports success only once every byte is in the kernel.
      int r = SSL_write(ssl_.get(), data.data(),
                        static_cast<int>(std::min<size_t>(data.size(), INT_MAX)));
      if (r > 0) {
        data.remove_prefix(static_cast<size_t>(r));
        continue;
      }
      w = tcp::socket::wait_error;
      ec = status(r, w);
      return static_cast<bool>(ec);
    }
    return true;
  }
  awaitable<error_code> write_rest(std::string_view data, tcp::socket::wait_type w) {
    if (!ssl_) {
      asio::const_buffer b(data.data(), data.size());
      auto [ec, n] = co_await asio::async_write(sock_, b, nothrow);
      co_return ec;
    }
    while (true) {
      auto [wec] = co_await sock_.async_wait(w, nothrow);
      if (wec) co_return wec;
      error_code ec;
      if (try_write(data, ec, w)) co_return ec;
    }
  }
  awaitable<error_code> write(std::string_view data) {
    error_code ec;
    auto w = tcp::socket::wait_write;
    if (try_write(data, ec, w)) co_return ec;
    co_return co_await write_rest(data, w);
  }
  // Sends close_notify and waits for the peer's (as asio's async_shutdown did); errors end it.
  awaitable<void> tls_shutdown() {
    if (!ssl_) co_return;
    while (true) {
      if (!sock_.is_open()) co_return;
      clear_errors();
      int r = SSL_shutdown(ssl_.get());
      if (r == 0) r = SSL_shutdown(ssl_.get());
      if (r == 1) co_return;
      auto w = tcp::socket::wait_error;
      if (status(r, w) || w == tcp::socket::wait_error) co_return;
      auto [wec] = co_await sock_.async_wait(w, nothrow);
      if (wec) co_return;
    }
  }
  void close() {
    error_code ec;
    sock_.close(ec);
  }
  bool is_open() { return sock_.is_open(); }

 private:
  struct SslFree {
    void operator()(SSL* s) const { SSL_free(s); }
  };
  // BIO callback: after each recv OpenSSL makes, whether it left the socket empty (fewer bytes
  // than asked for, or none).
  static long note_recv(BIO* b, int oper, const char*, size_t len, int, long, int ret,
                        size_t* processed) {
    if (oper == (BIO_CB_READ | BIO_CB_RETURN)) {
      bool* drained = reinterpret_cast<bool*>(BIO_get_callback_arg(b));
      if (drained) *drained = ret > 0 ? (processed && *processed < len) : true;
    }
    return ret;
  }
  // SSL_get_error reads the thread's error queue: it must hold nothing from earlier calls.
  static void clear_errors() {
    if (ERR_peek_error() != 0) ERR_clear_error();
  }
  // The outcome of an SSL call that returned r <= 0: an error, or (empty error) the readiness
  // to wait for in `w`. Error codes are those asio's stream reported.
  error_code status(int r, tcp::socket::wait_type& w) {
    int sys = errno;
    int e = SSL_get_error(ssl_.get(), r);
    switch (e) {
      case SSL_ERROR_WANT_READ:
        w = tcp::socket::wait_read;
        return {};
      case SSL_ERROR_WANT_WRITE:
        w = tcp::socket::wait_write;
        return {};
      case SSL_ERROR_ZERO_RETURN:
        return asio::error::eof;
      case SSL_ERROR_SYSCALL: {
        unsigned long code = ERR_get_error();
        ERR_clear_error();
        if (code != 0) return {static_cast<int>(code), asio::error::get_ssl_category()};
        if (sys != 0) return {sys, boost::system::system_category()};
        return asio::ssl::error::stream_truncated;
      }
      case SSL_ERROR_SSL: {
        unsigned long code = ERR_get_error();
        ERR_clear_error();
        // The peer closed the connection without close_notify.
        if (ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
          return asio::ssl::error::stream_truncated;
        return {static_cast<int>(code), asio::error::get_ssl_category()};
      }
      default:
        return asio::ssl::error::unspecified_system_error;
    }
  }

  tcp::socket sock_;
  std::unique_ptr<SSL, SslFree> ssl_;
  std::unique_ptr<bool> drained_;  // see note_recv (TLS only)
  asio::detail::reactor* reactor_ = nullptr;
};

template <typename Handler, typename IoExecutor>
asio::detail::reactor_op::status ReadOp<Handler, IoExecutor>::do_perform(reactor_op* base) {
  auto* o = static_cast<ReadOp*>(base);
  switch (o->stream_->read_step(*o->in_, o->release_, o->ec_, o->bytes_transferred_)) {
    case ReadStep::kWait:
      return not_done;
    case ReadStep::kDrained:
      return done_and_exhausted;
    case ReadStep::kDone:
      break;
  }
  return done;
}

awaitable<std::pair<error_code, size_t>> Stream::read_into(Buffer& in, bool release) {
  if (release && in.size() == 0) in.release();  // taken again by the read that finds bytes
  auto init = [this, &in, release](auto handler) {
    using H = decltype(handler);
    using Op = ReadOp<H, tcp::socket::executor_type>;
    bool cont = boost_asio_handler_cont_helpers::is_continuation(handler);
    typename Op::ptr p = {std::addressof(handler), Op::ptr::allocate(handler), nullptr};
    p.p = new (p.v) Op(this, &in, release, handler, sock_.get_executor());
    start_read_op(p.p, cont);
    p.v = p.p = nullptr;
  };
  auto [ec, n] =
      co_await asio::async_initiate<decltype(nothrow), void(error_code, size_t)>(init, nothrow);
  if (ec == asio::error::would_block) {  // OpenSSL must write first (a TLS 1.3 key update)
    auto b = in.prepare(kReadChunk);
    std::tie(ec, n) = co_await read_some_after(b, tcp::socket::wait_write);
    if (!ec) in.commit(n);
  }
  co_return std::make_pair(ec, n);
}

struct H2UpStream;

// A connection to an upstream, or (HTTP/2 towards the upstream) one stream of a shared
// connection: the exchange writes the HTTP/1.1 request and reads an HTTP/1.1 response either
// way, so that one request path serves both.
struct UpstreamConn {
  explicit UpstreamConn(tcp::socket s) : stream(std::move(s)) {}
  ~UpstreamConn();
  Stream stream;
  Buffer in;
  std::string key;
  Clock::time_point last_used{};
  std::unique_ptr<H2UpStream> h2;  // set: this is a stream of an HTTP/2 connection
  // Ends it now: closes the socket, or resets the stream (a pending read or write fails).
  // `timed_out`: the upstream did not answer in time; a shared HTTP/2 connection then takes no
  // new streams (it may be dead without being closed) and ends when its streams have.
  void close(bool timed_out = false);
};

// Per-worker keep-alive pool of upstream connections, keyed by everything that shapes a
// connection (scheme, host, port, TLS policy).
class UpstreamPool {
 public:
  explicit UpstreamPool(std::chrono::seconds idle) : idle_(idle) {}

  // `look`: check the connection even when it was used moments ago (a request that could not
  // be retried on a fresh connection).
  std::unique_ptr<UpstreamConn> take(const std::string& key, bool look) {
    auto it = idle_conns_.find(key);
    if (it == idle_conns_.end()) return nullptr;
    auto& list = it->second;
    auto now = Clock::now();
    while (!list.empty()) {
      auto c = std::move(list.back());
      list.pop_back();
      // For a request that can be retried, a connection used moments ago is taken without a
      // look (under load that is nearly every request, and the look is a syscall): if the
      // upstream closed it meanwhile, the request goes again on a fresh connection.
      auto idle = now - c->last_used;
      if (idle < idle_ && ((!look && idle < kTrustedIdle) || alive(*c))) return c;
      c->stream.close();
    }
    return nullptr;
  }
  void put(std::unique_ptr<UpstreamConn> c) {
    auto& list = idle_conns_[c->key];
    if (list.size() >= kPoolPerKey) {
      c->stream.close();
      return;
    }
    c->last_used = Clock::now();
    c->in.release_if_empty();
    list.push_back(std::move(c));
  }
  void sweep() {
    auto now = Clock::now();
    for (auto& [k, list] : idle_conns_) {
      std::vector<std::unique_ptr<UpstreamConn>> keep;
      for (auto& c : list) {
        if (now - c->last_used < idle_ && alive(*c)) {
          keep.push_back(std::move(c));
        } else {
          c->stream.close();
        }
      }
      list.swap(keep);
    }
  }
  void clear() {
    for (auto& [k, list] : idle_conns_) {
      for (auto& c : list) c->stream.close();
    }
    idle_conns_.clear();
  }

 private:
  // An idle connection must have nothing to read: data or EOF means the upstream closed it
  // (or misbehaved) while it sat in the pool.
  static constexpr auto kTrustedIdle = std::chrono::milliseconds(250);
  static bool alive(UpstreamConn& c) {
    if (!c.stream.is_open()) return false;
    char b;
    ssize_t n = ::recv(c.stream.lowest().native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
  std::chrono::seconds idle_;
  std::unordered_map<std::string, std::vector<std::unique_ptr<UpstreamConn>>> idle_conns_;
};

enum class ListenerKind { kApi, kControl };

class Gateway;
class Worker;

// The deadline of one exchange (HTTP/1.1: its connection; HTTP/2: a stream) and the upstream
// connection it waits on, for a watchdog to cut.
struct Watch {
  explicit Watch(asio::io_context& ioc) : timer(ioc) {}
  asio::steady_timer timer;
  Clock::time_point deadline = Clock::time_point::max();
  bool closed = false;
  UpstreamConn* active_upstream = nullptr;
  bool upstream_timed_out = false;
  bool reading_body = false;  // waiting for more of the client's request body

  // Closes the upstream connection the exchange waits on (its I/O fails at once) and marks the
  // exchange timed out, so that nothing retries it.
  void cut_upstream() {
    if (!active_upstream) return;
    upstream_timed_out = true;
    active_upstream->close(true);
    active_upstream = nullptr;
  }
  void set_deadline(Clock::duration d) { set_deadline_at(Clock::now() + d); }
  void set_deadline_at(Clock::time_point t) {
    bool earlier = t < deadline;
    deadline = t;
    if (earlier) timer.cancel();
  }
};

struct H2Stream;
struct H2Conn;
struct H2UpConn;

struct ClientConn : Watch {
  ClientConn(Worker& w, tcp::socket s, ListenerKind k);
  Worker& worker;
  Stream stream;
  Buffer in;
  ListenerKind kind;
  std::string remote_ip;
  // Per-request scratch, kept across keep-alive requests so that a request allocates nothing.
  http::RequestHead req;
  http::ResponseHead resp;
  std::string path, head, out, pool_key;
  // The client certificate, judged once per connection (it cannot change on it): its SHA-256,
  // and the allow list it was last judged against with the verdict. The list is held so that
  // the verdict cannot be taken for another list made later at the same address.
  std::string peer_hex;
  int64_t peer_not_before = 0, peer_not_after = -1;  // read once (the first check)
  bool peer_times_read = false;
  std::shared_ptr<const tls::ClientCertAllow> judged_by;
  bool judged_allowed = false;

  // Gives back what one large request made a scratch string grow to.
  static void trim_scratch(std::string& s) {
    if (s.capacity() > kReadChunk) std::string().swap(s);
  }
  void trim_scratch() {
    trim_scratch(head);
    trim_scratch(out);
  }

  void finish() {
    closed = true;
    timer.cancel();
    stream.close();
  }
};

// Everything a request may need to know about itself for the access log.
struct Exchange {
  Clock::time_point start;
  std::string_view api_id;
  int status = 0;
  uint64_t bytes_out = 0;
  uint64_t upstream_us = 0;
  std::string error;
  // X-RateLimit-* headers for the client, kept as numbers and formatted only when written (no
  // strings per request); `limit_headers_on_errors` when a refusal carries them too
  // (rate_limit_response_headers: "rate_limits").
  struct LimitHeaders {
    bool present = false;
    int64_t limit = 0, remaining = 0, reset = 0;
  } limit_headers;
  bool limit_headers_on_errors = false;
  H2Stream* h2 = nullptr;  // the HTTP/2 stream the request came on (nullptr: HTTP/1.1)
  Watch* watch = nullptr;  // its deadlines (the connection's, or the stream's)
};

using Denial = std::optional<std::pair<int, const char*>>;

void append_signed(std::string& out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<size_t>(r.ptr - buf));
}

// The X-RateLimit-* header lines (each ending in CRLF).
void append_limit_headers(std::string& out, const Exchange::LimitHeaders& h) {
  out += "X-RateLimit-Limit: "sv;
  append_signed(out, h.limit);
  out += "\r\nX-RateLimit-Remaining: "sv;
  append_signed(out, h.remaining);
  out += "\r\nX-RateLimit-Reset: "sv;
  append_signed(out, h.reset);
  out += "\r\n"sv;
}

// A stored session with its policies applied, as the request path reads it.
struct KeyView {
  auth::Session session;  // applied
  policy::Access access;
  std::string storage_id;
  bool valid = false;  // false: the policies do not apply (the key is refused as unknown)
};

// ---------------------------------------------------------------------------------------------
class Gateway {
 public:
  explicit Gateway(const config::GatewayConfig& cfg);
  int run();

  void request_reload(std::function<void()> done);
  // Writes the quota counters used since the last call back to the store (embedded store; on
  // Redis they live there already). Runs on the main thread, never on a worker: a slow fsync
  // must not stall requests.
  awaitable<void> flush_quotas();
  bool shutting_down() const { return shutting_down_.load(std::memory_order_acquire); }

  const config::GatewayConfig& cfg;
  std::unique_ptr<tls::ServerTls> server_tls;
  // security.control_api_use_mutual_tls: the control port's own TLS (certificate required in
  // the handshake), or, on a listener shared with the APIs, the list each control request's
  // certificate is judged against.
  std::unique_ptr<tls::ServerTls> control_tls;
  std::shared_ptr<const tls::ClientCertAllow> control_allow;
  tls::ClientTls client_tls;
  net::UpstreamGuard guard;
  proxy::SnapshotHolder snapshots;
  std::atomic<bool> loaded{false};
  std::unique_ptr<store::Store> store;
  policy::Limiter limiter;
  admin::ControlApi control;
  admin::KeysApi keys;
  admin::CertsApi certs;
  auth::KeyHashing hashing;
  http::ParseLimits limits;
  const bool rate_limit_headers;  // rate_limit_response_headers: "rate_limits" (else quotas)

 private:
  void reload_now();
  void reload_server_certificates(const proxy::Snapshot& snap);
  tcp::acceptor make_acceptor(asio::io_context& ioc, const std::string& addr, int port);
  friend class Worker;

  asio::io_context main_ioc_;
  asio::steady_timer quota_timer_{main_ioc_};
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<bool> shutting_down_{false};
  std::mutex done_mu_;
  std::condition_variable done_cv_;
  int workers_done_ = 0;
  uint64_t generation_ = 0;
};

class Worker {
 public:
  Worker(Gateway& g, int id)
      : gw(g),
        id(id),
        snaps(g.snapshots),
        pool(std::chrono::seconds(g.cfg.gatehouse.upstream_idle_timeout)),
        alog(g.cfg.gatehouse.access_log),
        resolver(ioc),
        housekeeping(ioc) {}

  void start();
  void begin_drain();
  // One client connection fewer; a drained worker lets go of its store connection so that its
  // event loop can end.
  void connection_done() {
    --connections;
    if (draining && connections == 0) gw.store->close_thread();
  }
  awaitable<void> accept_loop(tcp::acceptor& a, ListenerKind kind);
  awaitable<void> session(std::shared_ptr<ClientConn> c);
  awaitable<void> watchdog(std::shared_ptr<ClientConn> c);
  awaitable<void> housekeeping_loop();

  // One request; `h2` is its HTTP/2 stream (nullptr: HTTP/1.1 on the connection).
  awaitable<bool> handle(ClientConn& c, http::RequestHead& req, H2Stream* h2 = nullptr);
  // Static mutual TLS (use_mutual_tls_auth): nullopt when the connection's client certificate
  // is on the API's allow list, else the status and Tyk's message.
  std::optional<std::pair<int, std::string>> check_client_cert(ClientConn& c,
                                                               const http::RequestHead& req,
                                                               const apidef::ApiSpec& spec,
                                                               const proxy::Snapshot& snap);

  // The key check of a token API. A Denial is nullopt when the request is admitted, else the
  // status and Tyk's message. check_token_now decides without suspending (no coroutine frame)
  // when everything it needs is in memory, and returns false, having counted nothing, when it
  // needs the store; check_token then decides with the same checks in the same order. When only
  // the limits need the store (a Redis store counts them), the key already found and checked
  // is handed back in `key` and `api`: check_limits alone is left to do.
  bool check_token_now(ClientConn& c, const http::RequestHead& req, const apidef::ApiSpec& spec,
                       const proxy::Snapshot& snap, Exchange& ex, Denial& out,
                       std::shared_ptr<const KeyView>& key, const policy::ApiAccess*& api);
  awaitable<Denial> check_token(ClientConn& c, const http::RequestHead& req,
                                const apidef::ApiSpec& spec, const proxy::Snapshot& snap,
                                Exchange& ex);
  // Certificate auth (use_certificate / certificateAuth): the key is the one made for the
  // certificate the client presented in the handshake.
  awaitable<Denial> check_certificate_auth(ClientConn& c, const http::RequestHead& req,
                                           const apidef::ApiSpec& spec, const proxy::Snapshot& snap,
                                           Exchange& ex);
  // Whether the store holds certificate `id` (remembered per worker until a key or
  // certificate change).
  awaitable<bool> cert_in_store(const std::string& id);
  // An mTLS API on a custom domain is reached only through a handshake made for that domain.
  static bool sni_matches(ClientConn& c, const http::RequestHead& req, const apidef::ApiSpec& spec);
  // What refuses a request before its key is looked up (no token, store down).
  Denial before_key(auth::TokenPlace place);
  // The checks of a looked-up key (nullptr: none found), in Tyk's order: unknown or unusable,
  // inactive, expired, access rights, allow list. Sets `api` to the key's access to this API.
  // With static mTLS, a key bound to certificates (mtls_static_certificate_bindings) is
  // admitted only on a connection that presented one of them.
  Denial check_key(ClientConn& c, const KeyView* key, const http::RequestHead& req,
                   const apidef::ApiSpec& spec, const policy::ApiAccess*& api) const;

  struct CachedSession {
    std::shared_ptr<const auth::Session> session;  // as stored
    uint64_t epoch = 0;
    std::shared_ptr<const KeyView> view;  // with the policies of snapshot `generation` applied
    uint64_t generation = 0;
    std::string org;  // the API org the view was made for
  };
  awaitable<std::shared_ptr<const KeyView>> session_for(const std::string& storage_id,
                                                        const proxy::Snapshot& snap,
                                                        const apidef::ApiSpec& spec);
  // The cached view of a session for this snapshot and API org (remade from the cached session
  // when either changed), or nullptr when the session must be read from the store. The pointer
  // is valid until `sessions` changes.
  const std::shared_ptr<const KeyView>* cached_view(const std::string& storage_id, uint64_t epoch,
                                                    const proxy::Snapshot& snap,
                                                    const apidef::ApiSpec& spec);
  void make_view(CachedSession& entry, const std::string& storage_id, const proxy::Snapshot& snap,
                 const apidef::ApiSpec& spec);

  // Rate limit and quota of an authenticated request (Tyk's order: rate first, so a refused
  // request uses no quota). limits_now decides in memory, or returns false having counted
  // nothing; check_limits may ask the store.
  struct LimitPlan {
    policy::Limit lim;  // with the API's disable_rate_limit / disable_quota applied
    std::string_view scope;
    bool rate = false;           // a rate limit applies
    bool quota = false;          // a quota applies
    bool store_counts = false;   // the store counts quotas (and may count the rate limit)
    bool rate_in_store = false;  // the rate limit is counted by the store, fleet-wide
    bool fixed = false;          // in fixed windows (enable_fixed_window_rate_limiter)
  };
  LimitPlan plan_limits(const KeyView& key, const policy::ApiAccess* api,
                        const apidef::ApiSpec& spec) const;
  bool limits_now(const KeyView& key, const policy::ApiAccess* api, const apidef::ApiSpec& spec,
                  Exchange& ex, Denial& out);
  awaitable<Denial> limits_once(const KeyView& key, const policy::ApiAccess* api,
                                const apidef::ApiSpec& spec, Exchange& ex);
  awaitable<Denial> check_limits(const KeyView& key, const policy::ApiAccess* api,
                                 const apidef::ApiSpec& spec, Exchange& ex);
  policy::Limiter::RateResult local_rate_take(std::string_view name, int64_t rate, double per);
  Denial take_local_rate(const LimitPlan& p, const KeyView& key, Exchange& ex);
  Denial take_local_quota(const LimitPlan& p, std::string_view name,
                          const std::optional<policy::Limiter::QuotaState>& persisted,
                          Exchange& ex);
  void set_rate_headers(Exchange& ex, const policy::Limit& lim, int64_t remaining,
                        int64_t reset_s) const;
  void set_quota_headers(Exchange& ex, const policy::Limit& lim, int64_t remaining,
                         int64_t renews_at) const;
  awaitable<bool> respond(ClientConn& c, const http::RequestHead& req, http::Response r,
                          Exchange& ex, bool body_consumed);
  awaitable<bool> handle_admin(ClientConn& c, http::RequestHead& req, const std::string& path,
                               Exchange& ex);
  awaitable<bool> proxy_request(ClientConn& c, http::RequestHead& req, const apidef::ApiSpec& spec,
                                const proxy::UpstreamPlan& plan, const std::string& path,
                                Exchange& ex);
  awaitable<std::unique_ptr<UpstreamConn>> connect_upstream(Watch& w, const apidef::ApiSpec& spec,
                                                            const proxy::UpstreamPlan& plan,
                                                            std::string& err,
                                                            bool offer_h2 = false);
  // HTTP/2 towards upstreams (proxy_enable_http2 over TLS, h2c:// targets): a stream on a
  // shared connection of this worker, or the HTTP/1.1 connection an upstream chose in ALPN;
  // nullptr with `err` when no connection could be made.
  awaitable<std::unique_ptr<UpstreamConn>> h2_upstream(Watch& w, const apidef::ApiSpec& spec,
                                                       const proxy::UpstreamPlan& plan,
                                                       const std::string& key, bool& reused,
                                                       std::string& err);
  awaitable<void> h2_up_reader(std::shared_ptr<H2UpConn> h);
  awaitable<void> h2_up_writer(std::shared_ptr<H2UpConn> h);
  // The exchange's HTTP/1.1 request bytes, sent as HTTP/2 (the head becomes HEADERS).
  awaitable<error_code> h2_up_send(UpstreamConn& up, std::string_view data);
  // More of the response, as HTTP/1.1 bytes appended to up.in.
  awaitable<error_code> h2_up_read(UpstreamConn& up);
  void h2_up_sweep(bool all);
  // Through a forward proxy to an https:// target: CONNECT, and the proxy's 2xx.
  awaitable<bool> open_tunnel(UpstreamConn& up, const apidef::TargetUrl& t,
                              const proxy::ForwardProxy& p, std::string& err);
  awaitable<void> graceful_close(ClientConn& c);

  // HTTP/2 (ALPN h2): the connection's reader, its writer, one coroutine per request stream and
  // a watchdog per stream.
  awaitable<void> h2_session(std::shared_ptr<ClientConn> c);
  awaitable<void> h2_writer(std::shared_ptr<H2Conn> h);
  awaitable<void> h2_stream(std::shared_ptr<H2Conn> h, std::shared_ptr<H2Stream> s,
                            http::H2Request r);
  awaitable<void> h2_sweeper(std::shared_ptr<H2Conn> h);
  awaitable<bool> h2_respond(ClientConn& c, const http::RequestHead& req, http::Response r,
                             Exchange& ex);
  void log_access(ClientConn& c, const http::RequestHead& req, const Exchange& ex);

  Gateway& gw;
  int id;
  asio::io_context ioc{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
  std::vector<tcp::acceptor> acceptors;
  proxy::SnapshotCache snaps;
  UpstreamPool pool;
  std::unordered_map<std::string, std::vector<std::shared_ptr<H2UpConn>>> h2_pool;
  // Pool keys whose upstream chose HTTP/1.1 in ALPN, and when (asked again a minute later).
  std::unordered_map<std::string, Clock::time_point> h1_only;
  obs::AccessLog alog;
  tcp::resolver resolver;
  asio::steady_timer housekeeping;
  std::unordered_set<ClientConn*> idle;
  std::unordered_map<std::string, CachedSession> sessions;   // storage id -> session
  std::unordered_map<std::string, uint64_t> certs_present_;  // certificate id -> key epoch
  // Scratch of the in-memory key check (hashes and counter names, never a token).
  std::string storage_id_, rate_name_, quota_name_;
  size_t connections = 0;
  bool draining = false;
  std::thread thread;
};

// --- HTTP/2 ----------------------------------------------------------------------------------
// One request stream. Its body arrives in `in` as HTTP/1.1 body bytes (chunk-framed when the
// client gave no content-length), so that the request path reads it as it reads a body from a
// socket; its deadlines are its own (the watchdog resets the stream, not the connection).
struct H2Stream : Watch {
  H2Stream(asio::io_context& ioc, H2Conn& h, int32_t id) : Watch(ioc), conn(h), id(id), wake(ioc) {}
  H2Conn& conn;
  int32_t id;
  http::RequestHead req;
  http::ResponseHead resp;
  std::string path, head, out, pool_key;
  Buffer in;
  bool chunked_in = false;  // a body of unknown length, framed as chunks in `in`
  bool in_done = false;     // the client's END_STREAM arrived
  size_t unacked = 0;       // body bytes received and not yet given back to flow control
  bool gone = false;        // the stream closed (reset by either side) under the exchange
  bool ended = false;       // the whole response was submitted
  bool discard = false;     // the exchange is over: more body data is released at once
  asio::steady_timer wake;  // wakes the exchange: body data, drained output, stream closed
  void notify() { wake.cancel(); }
  awaitable<void> wait() {
    wake.expires_at(Clock::time_point::max());
    co_await wake.async_wait(nothrow);
  }
};

struct H2Conn : http::H2Handler, std::enable_shared_from_this<H2Conn> {
  H2Conn(Worker& w, std::shared_ptr<ClientConn> conn, const http::H2Limits& lim)
      : worker(w),
        c(std::move(conn)),
        limits(lim),
        session(*this, lim),
        wake_writer(w.ioc),
        sweep(w.ioc) {}
  Worker& worker;
  std::shared_ptr<ClientConn> c;
  http::H2Limits limits;
  http::H2Server session;
  std::unordered_map<int32_t, std::shared_ptr<H2Stream>> streams;
  size_t working = 0;  // exchanges still running, reset ones included
  asio::steady_timer wake_writer;
  asio::steady_timer sweep;  // the streams' deadlines, checked twice a second while any is open
  bool write_blocked = false;
  Clock::time_point write_blocked_since;
  Clock::time_point last_done = Clock::now();
  bool any_request = false;
  bool reader_done = false;

  void flush() { wake_writer.cancel(); }
  // The connection's own deadline: the write deadline while the client does not take what is
  // sent, none while requests run (each stream has its own), else the header deadline before
  // the first request and the idle deadline after the last one. Bytes that complete no
  // request (a trickle of frames) do not extend it.
  void update_deadline();
  bool on_request(http::H2Request&& r) override;
  void on_data(int32_t id, const uint8_t* data, size_t n) override;
  void on_end(int32_t id) override;
  void on_close(int32_t id, uint32_t error_code) override;
  void on_drained(int32_t id) override;
};

void append_bytes(Buffer& b, std::string_view d) {
  auto m = b.prepare(d.size());
  std::memcpy(m.data(), d.data(), d.size());
  b.commit(d.size());
}

// --- HTTP/2 towards upstreams ------------------------------------------------------------------
// One exchange's stream on a shared upstream connection. The request arrives as the HTTP/1.1
// bytes the exchange writes (its head is parsed again and sent as HEADERS, its body decoded
// from its framing); the response leaves as HTTP/1.1 bytes (chunk-framed when the upstream gave
// no content-length, trailers included), which the exchange parses as from any upstream.
struct H2UpStream {
  H2UpStream(asio::io_context& ioc, std::shared_ptr<H2UpConn> c) : conn(std::move(c)), wake(ioc) {}
  std::shared_ptr<H2UpConn> conn;
  int32_t id = 0;    // 0 until the request head was submitted
  std::string head;  // the HTTP/1.1 request head while it is incomplete
  http::RequestHead req;
  http::BodyKind body = http::BodyKind::kNone;
  uint64_t remaining = 0;
  http::ChunkedDecoder dec;
  std::string carry;  // chunk framing not yet decoded
  bool head_request = false;
  bool te_trailers = false;  // the client sent "TE: trailers" (a hop-by-hop field on HTTP/1.1)
  std::string pending;       // response bytes (HTTP/1.1) not yet read by the exchange
  size_t unacked = 0;        // response DATA bytes not yet given back to flow control
  bool chunked = false;
  std::string trailers;
  bool closed = false;
  uint32_t error = 0;
  asio::steady_timer wake;  // response bytes, request body sent, stream closed
  void notify() { wake.cancel(); }
  awaitable<void> wait() {
    wake.expires_at(Clock::time_point::max());
    co_await wake.async_wait(nothrow);
  }
};

constexpr uint32_t kH2Cancel = 0x8;
constexpr uint32_t kH2RefusedStream = 0x7;
constexpr uint32_t kH2ConnectionLost = 0x100;  // not an HTTP/2 code: the connection ended
constexpr size_t kH2UpBuffer = 65536;  // request body bytes buffered per stream before waiting

struct H2UpConn : http::H2ClientHandler {
  H2UpConn(asio::io_context& ioc, std::string k, const http::H2ClientLimits& lim, bool tls)
      : key(std::move(k)), session(*this, lim), wake_writer(ioc), ready_wait(ioc), tls(tls) {
    ready_wait.expires_at(Clock::time_point::max());
  }
  std::string key;
  std::unique_ptr<UpstreamConn> conn;  // the TCP or TLS connection
  http::H2Client session;
  std::unordered_map<int32_t, H2UpStream*> streams;
  asio::steady_timer wake_writer;
  asio::steady_timer ready_wait;  // cancelled when the connection is made (or failed)
  bool ready = false, dead = false, closing = false, tls;
  bool retiring = false;  // closing and without streams: the writer ends it once flushed
  Clock::time_point retiring_since;
  std::string failure;  // why the connection could not be made (for the exchanges that waited)
  Clock::time_point last_used = Clock::now();

  void flush() { wake_writer.cancel(); }
  void end() {
    dead = true;
    if (conn) conn->stream.close();
    flush();
  }
  // After a stream left: a connection asked to close goes once it has none, when the writer
  // has sent what is queued (a reset of the last stream).
  void left() {
    last_used = Clock::now();
    if (closing && streams.empty() && !retiring) {
      retiring = true;
      retiring_since = last_used;
      flush();
    }
  }
  void fail_all(uint32_t code) {
    dead = true;
    auto copy = std::move(streams);
    streams.clear();
    for (auto& [id, s] : copy) {
      s->closed = true;
      s->error = code;
      s->notify();
    }
  }
  H2UpStream* find(int32_t id) {
    auto it = streams.find(id);
    return it == streams.end() ? nullptr : it->second;
  }

  void on_response(int32_t id, int status, http::Fields&& fields) override {
    H2UpStream* s = find(id);
    if (!s) return;
    s->pending += "HTTP/1.1 "sv;
    append_decimal(s->pending, static_cast<unsigned>(status));
    s->pending += ' ';
    s->pending += http::reason_phrase(status);
    s->pending += "\r\n"sv;
    bool has_length = false;
    for (auto& [k, v] : fields) {
      if (k == "connection" || k == "keep-alive" || k == "proxy-connection" ||
          k == "transfer-encoding" || k == "upgrade")
        continue;
      if (k == "content-length") has_length = true;
      append_canonical(s->pending, k);
      s->pending += ": "sv;
      s->pending += v;
      s->pending += "\r\n"sv;
    }
    if (!has_length && !s->head_request && status != 204 && status != 304) {
      s->chunked = true;
      s->pending += "Transfer-Encoding: chunked\r\n"sv;
    }
    s->pending += "\r\n"sv;
    s->notify();
  }
  void on_data(int32_t id, const uint8_t* data, size_t n) override {
    H2UpStream* s = find(id);
    if (!s) {
      session.consume(id, n);
      return;
    }
    std::string_view d(reinterpret_cast<const char*>(data), n);
    if (s->chunked) {
      http::append_chunk_header(s->pending, n);
      s->pending += d;
      s->pending += "\r\n"sv;
    } else {
      s->pending += d;
    }
    s->unacked += n;
    s->notify();
  }
  void on_trailers(int32_t id, http::Fields&& fields) override {
    H2UpStream* s = find(id);
    if (!s || !s->chunked) return;  // a body with a length has nowhere to carry them
    for (auto& [k, v] : fields) {
      append_canonical(s->trailers, k);
      s->trailers += ": "sv;
      s->trailers += v;
      s->trailers += "\r\n"sv;
    }
  }
  void on_close(int32_t id, uint32_t code) override {
    H2UpStream* s = find(id);
    if (!s) return;
    streams.erase(id);
    s->closed = true;
    s->error = code;
    if (code == 0 && s->chunked) {
      s->pending += "0\r\n"sv;
      s->pending += s->trailers;
      s->pending += "\r\n"sv;
    }
    s->notify();
    left();
  }
  void on_drained(int32_t id) override {
    if (H2UpStream* s = find(id)) s->notify();
  }
  // Field names as HTTP/1.1 clients commonly see them ("content-type" -> "Content-Type").
  static void append_canonical(std::string& out, std::string_view name) {
    bool up = true;
    for (char ch : name) {
      out += up && ch >= 'a' && ch <= 'z' ? static_cast<char>(ch - 'a' + 'A') : ch;
      up = ch == '-';
    }
  }
};

UpstreamConn::~UpstreamConn() {
  if (h2) close();
}

void UpstreamConn::close(bool timed_out) {
  if (!h2) {
    stream.close();
    return;
  }
  H2UpStream& s = *h2;
  H2UpConn& h = *s.conn;
  if (timed_out) h.closing = true;
  if (s.id != 0 && !s.closed) {
    h.streams.erase(s.id);
    h.session.reset(s.id, kH2Cancel);
    s.closed = true;
    s.error = kH2Cancel;
    h.flush();
    h.left();
  }
  // Response data the exchange will not read any more: its window goes back.
  if (s.id != 0 && s.unacked > 0) {
    h.session.consume(s.id, s.unacked);
    s.unacked = 0;
    h.flush();
  }
  s.notify();
}

void H2Conn::update_deadline() {
  const auto& cfg = worker.gw.cfg;
  Clock::time_point t = Clock::time_point::max();
  if (write_blocked) {
    t = write_blocked_since + std::chrono::seconds(cfg.http_server_options.write_timeout);
  } else if (working == 0) {
    t = last_done + std::chrono::seconds(any_request ? cfg.gatehouse.idle_timeout
                                                     : cfg.gatehouse.header_timeout);
  }
  c->set_deadline_at(t);
}

bool H2Conn::on_request(http::H2Request&& r) {
  if (reader_done || working >= limits.max_concurrent_streams) return false;
  auto s = std::make_shared<H2Stream>(worker.ioc, *this, r.id);
  // Decided now: body data may arrive before the stream's coroutine first runs.
  s->in_done = r.end_stream;
  s->chunked_in =
      !r.end_stream && std::none_of(r.headers.begin(), r.headers.end(),
                                    [](const auto& kv) { return kv.first == "content-length"; });
  streams[r.id] = s;
  if (streams.size() == 1) sweep.cancel();  // the sweeper starts ticking
  ++working;
  any_request = true;
  update_deadline();
  asio::co_spawn(worker.ioc, worker.h2_stream(shared_from_this(), std::move(s), std::move(r)),
                 asio::detached);
  return true;
}

void H2Conn::on_data(int32_t id, const uint8_t* data, size_t n) {
  auto it = streams.find(id);
  if (it == streams.end() || it->second->discard) {
    session.consume(id, n);
    return;
  }
  H2Stream& s = *it->second;
  std::string_view d(reinterpret_cast<const char*>(data), n);
  if (s.chunked_in) {
    char size[24];
    int len = std::snprintf(size, sizeof size, "%zx\r\n", n);
    append_bytes(s.in, std::string_view(size, static_cast<size_t>(len)));
    append_bytes(s.in, d);
    append_bytes(s.in, "\r\n");
  } else {
    append_bytes(s.in, d);
  }
  s.unacked += n;
  s.notify();
}

void H2Conn::on_end(int32_t id) {
  auto it = streams.find(id);
  if (it == streams.end()) return;
  H2Stream& s = *it->second;
  s.in_done = true;
  if (s.chunked_in) append_bytes(s.in, "0\r\n\r\n");
  s.notify();
}

void H2Conn::on_close(int32_t id, uint32_t) {
  auto it = streams.find(id);
  if (it == streams.end()) return;
  auto s = std::move(it->second);
  streams.erase(it);
  s->gone = true;
  // Reset while the upstream works for it: that work stops now (a rapid reset costs nothing
  // more than the reset) and is never retried.
  s->cut_upstream();
  s->notify();
}

void H2Conn::on_drained(int32_t id) {
  auto it = streams.find(id);
  if (it != streams.end()) it->second->notify();
}

// More of a stream's request body: gives what was used back to flow control, then waits (under
// the read deadline) for more. False when the stream is gone or ended without more.
awaitable<bool> h2_more(H2Stream& s, int read_timeout) {
  size_t before = s.in.size();
  if (s.unacked > 0) {
    s.conn.session.consume(s.id, s.unacked);
    s.unacked = 0;
    s.conn.flush();
  }
  s.reading_body = true;
  s.set_deadline(std::chrono::seconds(read_timeout));
  while (!s.gone && !s.in_done && s.in.size() == before) co_await s.wait();
  s.reading_body = false;
  co_return !s.gone && s.in.size() > before;
}

// Waits until the client took the stream's response data down to `limit` bytes.
awaitable<bool> h2_drain(H2Stream& s, size_t limit, int write_timeout) {
  s.set_deadline(std::chrono::seconds(write_timeout));
  while (!s.gone && s.conn.session.buffered(s.id) > limit) co_await s.wait();
  co_return !s.gone;
}

// The upstream response's fields that go to the client (HTTP/1.1 or HTTP/2): not the hop-by-hop
// ones, and not its X-RateLimit-* when the gateway sends its own (a client never sees two
// different limits).
template <class F>
void for_each_forwarded_field(const http::ResponseHead& resp, const Exchange& ex, F&& f) {
  ConnectionLists listed(resp.headers);
  for (const auto& h : resp.headers) {
    if (listed.drop(h.name)) continue;
    if (ex.limit_headers.present && h.name.size() > 12 &&
        iequals(h.name.substr(0, 12), "x-ratelimit-"))
      continue;
    f(h);
  }
}

// The trailer fields of a chunked body (ChunkedDecoder::trailers: checked "name: value" lines)
// that are passed on: not those a trailer section may not carry (framing, routing,
// authentication, connection fields: RFC 9110 6.5.1), which a recipient must not act on.
template <class F>
void for_each_forwarded_trailer(std::string_view lines, F&& f) {
  static constexpr std::string_view kNever[] = {"content-length",
                                                "transfer-encoding",
                                                "host",
                                                "connection",
                                                "keep-alive",
                                                "te",
                                                "trailer",
                                                "upgrade",
                                                "proxy-connection",
                                                "authorization",
                                                "proxy-authorization",
                                                "proxy-authenticate",
                                                "www-authenticate",
                                                "set-cookie",
                                                "cookie",
                                                "content-encoding",
                                                "content-type",
                                                "content-range",
                                                "expect",
                                                "max-forwards",
                                                "cache-control",
                                                "range"};
  while (!lines.empty()) {
    size_t eol = lines.find("\r\n");
    std::string_view line = lines.substr(0, eol);
    lines.remove_prefix(eol == std::string_view::npos ? lines.size() : eol + 2);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;
    std::string_view name = line.substr(0, colon), value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    bool never = false;
    for (auto n : kNever) never = never || iequals(name, n);
    if (!never) f(name, value);
  }
}

// The last chunk of a chunked body and the trailer fields that are passed on.
void append_last_chunk(std::string& out, std::string_view trailers) {
  out += "0\r\n"sv;
  for_each_forwarded_trailer(
      trailers, [&](std::string_view n, std::string_view v) { append_field(out, n, v); });
  out += "\r\n"sv;
}

// The response head to an HTTP/2 client: the upstream's fields less the hop-by-hop ones (as for
// HTTP/1.1), and ours X-RateLimit-* in place of the upstream's.
void h2_response_head(H2Stream& s, const http::RequestHead& req, const http::ResponseHead& resp,
                      const Exchange& ex) {
  if (s.gone) return;
  std::vector<std::pair<std::string, std::string>> fields;
  fields.reserve(resp.headers.size() + 4);
  if (ex.limit_headers.present) {
    fields.emplace_back("x-ratelimit-limit", std::to_string(ex.limit_headers.limit));
    fields.emplace_back("x-ratelimit-remaining", std::to_string(ex.limit_headers.remaining));
    fields.emplace_back("x-ratelimit-reset", std::to_string(ex.limit_headers.reset));
  }
  for_each_forwarded_field(resp, ex, [&](const http::Header& h) {
    fields.emplace_back(std::string(h.name), std::string(h.value));
  });
  const bool head = req.method == "HEAD";
  if (resp.body == http::BodyKind::kLength ||
      (head && resp.content_length && resp.status != 204 && resp.status != 304))
    fields.emplace_back("content-length", std::to_string(resp.content_length));
  const bool has_body = !head && resp.body != http::BodyKind::kNone;
  s.conn.session.respond(s.id, resp.status, std::move(fields), has_body);
  if (!has_body) s.ended = true;
  s.conn.flush();
}

ClientConn::ClientConn(Worker& w, tcp::socket s, ListenerKind k)
    : Watch(w.ioc), worker(w), stream(std::move(s)), kind(k) {
  error_code ec;
  auto ep = stream.lowest().remote_endpoint(ec);
  if (!ec) {
    auto a = ep.address();
    if (a.is_v6() && a.to_v6().is_v4_mapped())
      a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
    remote_ip = a.to_string();
  }
}

// ---------------------------------------------------------------------------------------------
Gateway::Gateway(const config::GatewayConfig& c)
    : cfg(c),
      client_tls(c),
      guard(c),
      store(store::open_store(c)),
      control(
          c, snapshots,
          admin::GatewayState{[this] { return shutting_down(); }, [this] { return loaded.load(); },
                              [this] { return store->healthy(); }, c.gatehouse.store_type}),
      keys(c, *store, snapshots, limiter),
      certs(c, *store),
      hashing(admin::key_hashing(c)),
      rate_limit_headers(c.rate_limit_response_headers == "rate_limits") {
  std::vector<tls::ServerCert> server_certs;
  if (cfg.http_server_options.use_ssl) {
    // The config's certificates (the APIs' own are added when their definitions are loaded).
    std::vector<std::string> problems, unused;
    server_certs = net::server_certificates(cfg, store.get(), nullptr, &problems, &unused);
    if (!problems.empty()) throw config::ConfigError(cfg.file + ": " + problems.front());
    server_tls = std::make_unique<tls::ServerTls>(cfg, server_certs);
  }
  if (cfg.security.control_api_use_mutual_tls) {
    // Control clients must hold a certificate signed by (or listed in) these.
    std::vector<std::string> problems;
    auto cas = net::resolve_cert_refs(cfg.security.certificates_control_api, cfg, *store,
                                      "security.certificates.control_api", &problems);
    for (const auto& p : problems) log::error("certificate not usable", {{"reason", p}});
    if (cas.empty())
      throw config::ConfigError(cfg.file +
                                ": field \"security.certificates.control_api\": "
                                "control_api_use_mutual_tls needs at least one usable certificate");
    if (!cfg.http_server_options.use_ssl)
      throw config::ConfigError(cfg.file +
                                ": field \"security.control_api_use_mutual_tls\": needs "
                                "http_server_options.use_ssl");
    if (cfg.control_api_port != 0) {
      control_tls = std::make_unique<tls::ServerTls>(cfg, server_certs, cas);
    } else {
      control_allow = std::make_shared<const tls::ClientCertAllow>(cas);
    }
  }
  limits.max_request_line = static_cast<size_t>(cfg.gatehouse.max_request_line);
  limits.max_header_bytes = static_cast<size_t>(cfg.gatehouse.max_header_bytes);
  limits.max_headers = static_cast<size_t>(cfg.gatehouse.max_headers);
}

// Certificates expiring within 30 days (or expired), one warning each: at start and on reload.
void report_expiring_certificates(const config::GatewayConfig& cfg, store::Store& store) {
  for (const auto& e : find_expiring(cfg, store, 30 * 86400)) {
    log::warn("certificate expires soon", {{"source", e.source},
                                           {"subject", e.subject},
                                           {"not_after", static_cast<long long>(e.not_after)}});
  }
}

void Gateway::reload_server_certificates(const proxy::Snapshot& snap) {
  // Read again from their files and the store: a replaced certificate serves new handshakes
  // from now on, and connections already set up keep theirs.
  std::vector<std::string> problems, api_problems;
  auto certs = net::server_certificates(cfg, store.get(), &snap, &problems, &api_problems);
  for (const auto& p : api_problems) log::warn("API certificate", {{"reason", p}});
  try {
    if (!problems.empty()) throw config::ConfigError(problems.front());
    server_tls->set_certificates(certs);
    if (control_tls) control_tls->set_certificates(certs);
  } catch (const config::ConfigError& e) {
    log::error("server certificates not reloaded: the previous ones stay in use",
               {{"reason", e.what()}});
  }
}

void Gateway::reload_now() {
  std::vector<std::string> problems;
  auto t0 = Clock::now();
  auto snap =
      proxy::build_snapshot(cfg.app_path, cfg.enable_custom_domains, ++generation_, &problems,
                            cfg.policies.policy_path, cfg.policies.policy_record_name);
  // Static mutual TLS: each API's allow list resolved now, and the server names that ask for a
  // client certificate.
  auto demand = std::make_shared<tls::ClientCertDemand>();
  std::vector<std::string> cert_problems;
  for (const auto& api : snap->apis) {
    if (!api->use_mutual_tls_auth || !api->active) continue;
    auto refs = api->client_certificates;
    for (const auto& r : cfg.security.certificates_apis) refs.push_back(r);
    auto bundles = resolve_cert_refs(refs, cfg, *store,
                                     "API " + api->api_id + " client_certificates", &cert_problems);
    auto allow = std::make_shared<const tls::ClientCertAllow>(bundles);
    for (const auto& c : allow->certs()) {
      X509_up_ref(c.get());
      demand->ca_names_from.emplace_back(c.get());
    }
    snap->client_allow[api->api_id] = std::move(allow);
    if (api->domain.empty()) {
      demand->any_host = true;
    } else {
      demand->hosts.push_back(api->domain);
    }
  }
  // Certificate-auth APIs ask for a certificate (any: the key made for it is the allow list).
  for (const auto& api : snap->apis) {
    if (api->auth != apidef::AuthKind::kCertificate || !api->active) continue;
    if (api->domain.empty()) {
      demand->any_host = true;
    } else {
      demand->hosts.push_back(api->domain);
    }
  }
  if (control_allow) {
    demand->any_host = true;  // control requests come on any name
    for (const auto& c : control_allow->certs()) {
      X509_up_ref(c.get());
      demand->ca_names_from.emplace_back(c.get());
    }
  }
  if (server_tls) {
    server_tls->set_client_demand(std::move(demand));
    reload_server_certificates(*snap);
  }
  // How each API's upstream connections are made (client certificates, pins, proxies).
  std::vector<std::string> upstream_problems;
  for (const auto& api : snap->apis) {
    if (!api->active) continue;
    snap->upstream[api.get()] =
        net::plan_upstream(*api, cfg, *store, client_tls, &upstream_problems);
  }
  for (const auto& p : upstream_problems) log::error("upstream settings", {{"reason", p}});
  for (const auto& p : problems) log::error("API definition skipped", {{"reason", p}});
  for (const auto& p : cert_problems) log::error("certificate not usable", {{"reason", p}});
  report_expiring_certificates(cfg, *store);
  size_t served = snap->router.size();
  size_t loaded_count = snap->apis.size();
  snapshots.set(std::move(snap));
  loaded.store(true);
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
  log::info("API definitions loaded", {{"apis", static_cast<unsigned long>(loaded_count)},
                                       {"served", static_cast<unsigned long>(served)},
                                       {"duration_us", static_cast<long long>(us)}});
}

void Gateway::request_reload(std::function<void()> done) {
  asio::post(main_ioc_, [this, done = std::move(done)] {
    if (!shutting_down()) reload_now();
    if (done) done();
  });
}

tcp::acceptor Gateway::make_acceptor(asio::io_context& ioc, const std::string& addr, int port) {
  error_code ec;
  auto address = addr.empty() ? asio::ip::address(asio::ip::address_v4::any())
                              : asio::ip::make_address(addr, ec);
  if (ec) throw config::ConfigError(cfg.file + ": field \"listen_address\": not an IP address");
  tcp::endpoint ep(address, static_cast<unsigned short>(port));
  tcp::acceptor a(ioc);
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  int one = 1;
  if (!ec && ::setsockopt(a.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
    ec = error_code(errno, boost::system::system_category());
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(1024, ec);
  if (ec)
    throw config::ConfigError("cannot listen on " + (addr.empty() ? "0.0.0.0" : addr) + ":" +
                              std::to_string(port) + ": " + ec.message());
  return a;
}

int Gateway::run() {
  reload_now();
  int n = cfg.gatehouse.workers;
  for (int i = 0; i < n; ++i) {
    auto w = std::make_unique<Worker>(*this, i);
    w->acceptors.push_back(make_acceptor(w->ioc, cfg.listen_address, cfg.listen_port));
    if (cfg.control_api_port != 0)
      w->acceptors.push_back(make_acceptor(w->ioc, cfg.listen_address, cfg.control_api_port));
    workers_.push_back(std::move(w));
  }
  for (const auto& wmsg : cfg.warnings) log::warn(wmsg);
  log::info("gatehouse listening", {{"port", cfg.listen_port},
                                    {"control_api_port", cfg.control_api_port},
                                    {"tls", cfg.http_server_options.use_ssl},
                                    {"workers", n},
                                    {"version", GATEHOUSE_VERSION}});

  asio::signal_set signals(main_ioc_, SIGTERM, SIGINT, SIGHUP);
  std::function<void(const error_code&, int)> on_signal = [&](const error_code& ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      log::info("SIGHUP: reloading");
      reload_now();
      signals.async_wait(on_signal);
      return;
    }
    log::info("shutting down: draining in-flight requests", {{"signal", sig}});
    shutting_down_.store(true, std::memory_order_release);
    for (auto& w : workers_) asio::post(w->ioc, [wp = w.get()] { wp->begin_drain(); });
    main_ioc_.stop();
  };
  signals.async_wait(on_signal);

  // Key changes made through other gateways on the same store reach this one's caches.
  store->watch_key_changes(main_ioc_,
                           [] { admin::key_epoch().fetch_add(1, std::memory_order_acq_rel); });
  asio::co_spawn(
      main_ioc_,
      [this]() -> awaitable<void> {
        while (!shutting_down()) {
          quota_timer_.expires_after(std::chrono::seconds(1));
          co_await quota_timer_.async_wait(nothrow);
          co_await flush_quotas();
        }
      },
      asio::detached);
  for (auto& w : workers_) w->start();
  main_ioc_.run();
  store->close_thread();

  // Wait for the workers to finish their in-flight requests, then stop what remains.
  {
    std::unique_lock<std::mutex> lock(done_mu_);
    done_cv_.wait_for(lock, std::chrono::seconds(cfg.gatehouse.drain_timeout),
                      [&] { return workers_done_ == static_cast<int>(workers_.size()); });
  }
  for (auto& w : workers_) w->ioc.stop();
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
    w->alog.flush();
  }
  // Quota counters used since the last write-back survive the restart.
  if (!workers_.empty()) {
    quota_timer_.cancel();
    main_ioc_.restart();
    asio::co_spawn(
        main_ioc_,
        [this]() -> awaitable<void> {
          co_await flush_quotas();
          store->close_thread();
        },
        asio::detached);
    main_ioc_.run();
  }
  log::info("gatehouse stopped");
  return 0;
}

// ---------------------------------------------------------------------------------------------
void Worker::start() {
  guard.emplace(ioc.get_executor());
  for (size_t i = 0; i < acceptors.size(); ++i) {
    ListenerKind kind = i == 0 ? ListenerKind::kApi : ListenerKind::kControl;
    asio::co_spawn(ioc, accept_loop(acceptors[i], kind), asio::detached);
  }
  asio::co_spawn(ioc, housekeeping_loop(), asio::detached);
  thread = std::thread([this] {
    ioc.run();
    alog.flush();
    std::lock_guard<std::mutex> lock(gw.done_mu_);
    ++gw.workers_done_;
    gw.done_cv_.notify_all();
  });
}

void Worker::begin_drain() {
  draining = true;
  for (auto& a : acceptors) {
    error_code ec;
    a.close(ec);
  }
  housekeeping.cancel();
  pool.clear();
  h2_up_sweep(true);
  // Idle keep-alive connections are closed now; busy ones close after their response.
  auto copy = idle;
  for (auto* c : copy) c->finish();
  if (connections == 0) gw.store->close_thread();
  guard.reset();
}

awaitable<void> Worker::housekeeping_loop() {
  auto last_sweep = Clock::now();
  while (!draining) {
    housekeeping.expires_after(std::chrono::milliseconds(200));
    co_await housekeeping.async_wait(nothrow);
    alog.flush();
    if (Clock::now() - last_sweep > std::chrono::seconds(5)) {
      pool.sweep();
      h2_up_sweep(false);
      if (id == 0) gw.limiter.sweep(Clock::now());
      last_sweep = Clock::now();
    }
  }
  alog.flush();
}

awaitable<void> Worker::accept_loop(tcp::acceptor& a, ListenerKind kind) {
  while (!draining) {
    auto [ec, sock] = co_await a.async_accept(nothrow);
    if (ec) {
      if (ec == asio::error::operation_aborted || draining) break;
      log::warn("accept failed", {{"error", ec.message()}});
      asio::steady_timer t(ioc, std::chrono::milliseconds(50));
      co_await t.async_wait(nothrow);
      continue;
    }
    if (connections >= static_cast<size_t>(gw.cfg.gatehouse.max_connections_per_worker)) {
      error_code ignored;
      sock.close(ignored);
      continue;
    }
    sock.set_option(tcp::no_delay(true), ec);
    auto c = std::make_shared<ClientConn>(*this, std::move(sock), kind);
    asio::co_spawn(ioc, session(c), asio::detached);
  }
}

// After a watchdog's timer fired: whether `w`'s deadline has passed for the client. A late
// upstream is cut on the way (not passed: the client gets the write budget for its answer).
bool client_deadline_passed(Watch& w, int write_timeout) {
  if (Clock::now() < w.deadline) return false;
  if (w.active_upstream && !w.reading_body) {
    w.cut_upstream();
    w.deadline = Clock::now() + std::chrono::seconds(write_timeout);
    return false;
  }
  return true;
}

awaitable<void> Worker::watchdog(std::shared_ptr<ClientConn> c) {
  while (!c->closed) {
    c->timer.expires_at(c->deadline);
    co_await c->timer.async_wait(nothrow);
    if (c->closed) break;
    if (!client_deadline_passed(*c, gw.cfg.http_server_options.write_timeout)) continue;
    c->stream.close();
    break;
  }
}

awaitable<void> Worker::graceful_close(ClientConn& c) {
  // Lingering close: send what we have, then stop sending and drain what the client still
  // sends for a moment, so that our response is not destroyed by a reset.
  c.set_deadline(std::chrono::seconds(1));
  if (c.stream.is_tls()) co_await c.stream.tls_shutdown();
  error_code ec;
  c.stream.lowest().shutdown(tcp::socket::shutdown_send, ec);
  if (!ec) {
    char sink[4096];
    for (int i = 0; i < 64; ++i) {
      auto [rec, n] = co_await c.stream.lowest().async_read_some(asio::buffer(sink), nothrow);
      if (rec) break;
    }
  }
  c.finish();
}

awaitable<void> Worker::session(std::shared_ptr<ClientConn> c) {
  ++connections;
  asio::co_spawn(ioc, watchdog(c), asio::detached);
  const auto& g = gw.cfg.gatehouse;
  c->set_deadline(std::chrono::seconds(g.header_timeout));

  if (gw.server_tls) {  // the control listener shares the API listener's TLS settings
    // Refuse plain HTTP on the TLS port with a readable answer instead of a handshake error.
    unsigned char first = 0;
    ssize_t n = -1;
    error_code wec;
    idle.insert(c.get());
    // A readiness wake-up can come without data (EAGAIN): wait again until the deadline.
    for (int spins = 0; spins < 1000; ++spins) {
      std::tie(wec) = co_await c->stream.lowest().async_wait(tcp::socket::wait_read, nothrow);
      if (wec) break;
      n = ::recv(c->stream.lowest().native_handle(), &first, 1, MSG_PEEK);
      if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) break;
    }
    idle.erase(c.get());
    if (n <= 0) {
      log::debug("connection closed before TLS",
                 {{"client", c->remote_ip},
                  {"error", wec ? wec.message() : std::to_string(n)},
                  {"errno", errno}});
      c->finish();
      connection_done();
      co_return;
    }
    if (first != 0x16) {
      if (first >= 'A' && first <= 'Z') {
        auto r = http::error_response(400, "Client sent an HTTP request to an HTTPS server.");
        r.close = true;
        std::string out;
        http::serialize(r, false, out);
        co_await c->stream.write(out);
        co_await graceful_close(*c);
      } else {
        c->finish();
      }
      connection_done();
      co_return;
    }
    c->stream.start_tls(c->kind == ListenerKind::kControl && gw.control_tls
                            ? gw.control_tls->new_ssl()
                            : gw.server_tls->new_ssl());
    auto hec = co_await c->stream.handshake(true);
    if (hec) {
      log::debug("TLS handshake failed", {{"client", c->remote_ip}, {"error", hec.message()}});
      c->finish();
      connection_done();
      co_return;
    }
    const unsigned char* proto = nullptr;
    unsigned int proto_len = 0;
    SSL_get0_alpn_selected(c->stream.ssl(), &proto, &proto_len);
    if (proto_len == 2 && proto[0] == 'h' && proto[1] == '2') {
      co_await h2_session(c);
      connection_done();
      co_return;
    }
  }

  bool first_request = true;
  while (true) {
    http::RequestHead& req = c->req;
    http::ParseResult pr;
    bool head_deadline = first_request;
    // Between requests a connection that waits for the client is idle (a drain closes it). It
    // is registered only when it actually waits: nothing else runs while it does not.
    bool between_requests = false;
    if (c->in.size() == 0) {
      c->in.release_if_empty();
      between_requests = true;
      if (draining) break;
    }
    while (true) {
      if (c->in.size() > 0) {
        pr = http::parse_request_head(c->in.data(), gw.limits, req);
        if (pr.status != http::ParseStatus::kIncomplete) break;
        if (!head_deadline) {
          c->set_deadline(std::chrono::seconds(g.header_timeout));
          head_deadline = true;
        }
      }
      error_code ec;
      size_t n = 0;
      auto w = tcp::socket::wait_read;
      if (between_requests && !(c->stream.is_tls() && SSL_has_pending(c->stream.ssl()))) {
        // Just after a response the client has most likely not sent its next request yet: no
        // read that would find nothing, and no re-arming of the socket (Stream::read_into).
        // An idle TLS connection's read buffer goes back while the client thinks (it keeps no
        // 16 KiB buffer), and is taken again when bytes are there.
        idle.insert(c.get());
        std::tie(ec, n) = co_await c->stream.read_into(c->in, c->stream.is_tls());
        idle.erase(c.get());
      } else {
        auto buf = c->in.prepare(kReadChunk);
        if (c->stream.try_read_some(buf, ec, n, w)) {
          if (!ec) c->in.commit(n);
        } else {
          std::tie(ec, n) = co_await c->stream.read_into(c->in);
        }
      }
      between_requests = false;
      if (ec) {
        if (c->in.size() > 0 && ec != asio::error::eof)
          log::debug("client connection failed",
                     {{"client", c->remote_ip}, {"error", ec.message()}});
        goto done;
      }
    }
    first_request = false;
    if (pr.status == http::ParseStatus::kError) {
      Exchange ex;
      ex.start = Clock::now();
      ex.error = pr.reason;
      auto r = http::error_response(pr.http_status, pr.reason);
      r.close = true;
      std::string out;
      http::serialize(r, false, out);
      ex.status = pr.http_status;
      ex.bytes_out = out.size();
      co_await c->stream.write(out);
      http::RequestHead none;
      log_access(*c, none, ex);
      co_await graceful_close(*c);
      goto done;
    }
    c->in.consume(pr.consumed);
    bool keep = co_await handle(*c, req);
    if (!keep || draining || c->closed) {
      if (!c->closed) co_await graceful_close(*c);
      goto done;
    }
    c->trim_scratch();
    c->set_deadline(std::chrono::seconds(g.idle_timeout));
  }
done:
  idle.erase(c.get());
  c->finish();
  connection_done();
}

// --- HTTP/2 connections ------------------------------------------------------------------------
awaitable<void> Worker::h2_session(std::shared_ptr<ClientConn> c) {
  const auto& g = gw.cfg.gatehouse;
  http::H2Limits lim;
  lim.max_concurrent_streams = static_cast<uint32_t>(g.http2.max_concurrent_streams);
  lim.initial_window = static_cast<uint32_t>(g.http2.initial_window);
  lim.connection_window = static_cast<uint32_t>(g.http2.connection_window);
  lim.max_header_list_bytes = static_cast<uint32_t>(g.max_header_bytes);
  lim.max_headers = static_cast<uint32_t>(g.max_headers);
  lim.max_continuations = static_cast<uint32_t>(g.http2.max_continuations);
  lim.reset_burst = static_cast<uint64_t>(g.http2.reset_burst);
  lim.reset_rate = static_cast<uint64_t>(g.http2.reset_rate);
  lim.max_outbound_ack = static_cast<uint32_t>(g.http2.max_outbound_ack);
  lim.control_frame_burst = static_cast<uint32_t>(g.http2.control_frame_burst);
  lim.control_frame_rate = static_cast<uint32_t>(g.http2.control_frame_rate);
  auto h = std::make_shared<H2Conn>(*this, c, lim);
  h->update_deadline();
  asio::co_spawn(ioc, h2_writer(h), asio::detached);
  asio::co_spawn(ioc, h2_sweeper(h), asio::detached);
  h->flush();  // our SETTINGS
  while (!c->closed) {
    error_code ec;
    size_t n = 0;
    auto w = tcp::socket::wait_read;
    auto buf = c->in.prepare(kReadChunk);
    bool waiting = h->working == 0;
    if (!c->stream.try_read_some(buf, ec, n, w)) {
      if (waiting) idle.insert(c.get());
      std::tie(ec, n) = co_await c->stream.read_some_after(buf, w);
      if (waiting) idle.erase(c.get());
    }
    if (ec) break;
    bool ok = h->session.receive(reinterpret_cast<const uint8_t*>(buf.data()), n);
    h->flush();
    if (!ok || !h->session.want_read()) break;
    if (draining && h->working == 0) {
      h->session.shutdown();
      h->flush();
      break;
    }
  }
  // No more requests: stop the running ones' upstream work, let the writer send what is
  // queued (a GOAWAY), then close.
  h->reader_done = true;
  for (auto& [id, s] : h->streams) {
    s->gone = true;
    s->cut_upstream();
    s->notify();
  }
  h->streams.clear();
  h->sweep.cancel();
  h->flush();
  asio::steady_timer tick(ioc);
  while ((h->working > 0 || h->write_blocked) && !c->closed) {
    tick.expires_after(std::chrono::milliseconds(10));
    co_await tick.async_wait(nothrow);
    h->flush();
  }
  if (!c->closed) {
    // What is still queued (a GOAWAY saying why) goes out before the TLS close.
    std::string rest;
    h->session.take_output(rest);
    if (!rest.empty()) co_await c->stream.write(rest);
    co_await graceful_close(*c);
  }
  if (!h->session.failure().empty())
    log::warn("HTTP/2 connection ended",
              {{"client", c->remote_ip}, {"reason", h->session.failure()}});
  h->flush();
  c->finish();
}

awaitable<void> Worker::h2_writer(std::shared_ptr<H2Conn> h) {
  std::string out;
  auto& c = *h->c;
  while (!c.closed) {
    out.clear();
    h->session.take_output(out);
    if (out.empty()) {
      if (h->reader_done && h->working == 0) break;
      h->wake_writer.expires_at(Clock::time_point::max());
      co_await h->wake_writer.async_wait(nothrow);
      continue;
    }
    std::string_view rest = out;
    error_code ec;
    auto w = tcp::socket::wait_write;
    if (!c.stream.try_write(rest, ec, w)) {
      h->write_blocked = true;
      h->write_blocked_since = Clock::now();
      h->update_deadline();
      ec = co_await c.stream.write_rest(rest, w);
      h->write_blocked = false;
      h->update_deadline();
    }
    if (ec) {
      c.stream.close();
      break;
    }
  }
}

// The streams' deadlines (one timer per connection instead of one per stream): a late upstream
// is cut as on HTTP/1.1; a stream whose client stalls (its body, or reading the response) is
// reset alone.
awaitable<void> Worker::h2_sweeper(std::shared_ptr<H2Conn> h) {
  const int write_timeout = gw.cfg.http_server_options.write_timeout;
  while (!h->c->closed && !h->reader_done) {
    if (h->streams.empty())
      h->sweep.expires_at(Clock::time_point::max());
    else
      h->sweep.expires_after(std::chrono::milliseconds(500));
    co_await h->sweep.async_wait(nothrow);
    const auto now = Clock::now();
    for (auto& [id, s] : h->streams) {
      if (s->closed || now < s->deadline || !client_deadline_passed(*s, write_timeout)) continue;
      h->session.reset(id, 0x8 /* CANCEL */);  // closes it (and takes it from the map) later
      s->gone = true;
      s->cut_upstream();
      s->notify();
    }
    h->flush();
  }
}

awaitable<void> Worker::h2_stream(std::shared_ptr<H2Conn> h, std::shared_ptr<H2Stream> s,
                                  http::H2Request r) {
  ClientConn& c = *h->c;
  // The request as an HTTP/1.1 head, checked by the same parser and limits as one that came
  // on HTTP/1.1 (nghttp2 has already refused what RFC 9113 forbids).
  std::string raw;
  raw.reserve(256);
  raw += r.method;
  raw += ' ';
  raw += r.path;
  raw += " HTTP/1.1\r\n"sv;
  if (!r.authority.empty()) append_field(raw, "Host", r.authority);
  std::string cookies;
  for (const auto& [k, v] : r.headers) {
    if (k == "host") {
      if (r.authority.empty()) append_field(raw, "Host", v);
      continue;
    }
    if (k == "cookie") {  // RFC 9113 8.2.3: one field again for HTTP/1.1
      if (!cookies.empty()) cookies += "; "sv;
      cookies += v;
      continue;
    }
    if (k == "te" || k == "expect" || k == "transfer-encoding" || k == "connection") continue;
    append_field(raw, k, v);
  }
  if (!cookies.empty()) append_field(raw, "Cookie", cookies);
  // DATA frames of unknown total go to the upstream as chunks.
  if (s->chunked_in) raw += "Transfer-Encoding: chunked\r\n"sv;
  raw += "\r\n"sv;

  Exchange ex;
  ex.start = Clock::now();
  ex.h2 = s.get();
  if (r.too_large) {
    ex.error = "request header fields too large";
    co_await h2_respond(c, s->req, http::error_response(431, "Request Header Fields Too Large"),
                        ex);
  } else {
    auto pr = http::parse_request_head(raw, gw.limits, s->req);
    if (pr.status != http::ParseStatus::kDone) {
      ex.error = pr.status == http::ParseStatus::kError ? pr.reason : "incomplete head";
      co_await h2_respond(c, s->req,
                          http::error_response(pr.http_status ? pr.http_status : 400,
                                               pr.http_status ? pr.reason : "Bad Request"),
                          ex);
    } else {
      co_await handle(c, s->req, s.get());
    }
  }
  // The exchange is over: body data still to come is released at once, what was used goes
  // back to flow control, and a response that did not end whole is reset (never looks done).
  s->discard = true;
  h->session.consume(s->id, s->unacked);
  s->unacked = 0;
  if (!s->ended && !s->gone) h->session.reset(s->id, 0x2 /* INTERNAL_ERROR */);
  s->closed = true;
  --h->working;
  h->last_done = Clock::now();
  h->update_deadline();
  h->flush();
  if (draining && h->working == 0 && !h->reader_done) {
    // Shutting down: the last exchange is done, so the reader stops waiting for more (the
    // GOAWAY then says no new stream will be served).
    h->session.shutdown();
    error_code ec;
    c.stream.lowest().cancel(ec);
  }
}

awaitable<bool> Worker::h2_respond(ClientConn& c, const http::RequestHead& req, http::Response r,
                                   Exchange& ex) {
  H2Stream& s = *ex.h2;
  ex.status = r.status;
  if (!s.gone && !s.ended) {
    std::vector<std::pair<std::string, std::string>> fields;
    fields.reserve(r.headers.size() + 2);
    if (!r.content_type.empty()) fields.emplace_back("content-type", r.content_type);
    for (auto& kv : r.headers) fields.push_back(std::move(kv));
    fields.emplace_back("content-length", std::to_string(r.body.size()));
    const bool body = req.method != "HEAD" && !r.body.empty();
    s.conn.session.respond(s.id, r.status, std::move(fields), body);
    if (body) {
      s.conn.session.send_data(s.id, r.body);
      s.conn.session.end_data(s.id);
    }
    s.ended = true;
    s.conn.flush();
    ex.bytes_out = r.body.size();
  }
  log_access(c, req, ex);
  co_return true;
}

void Worker::log_access(ClientConn& c, const http::RequestHead& req, const Exchange& ex) {
  if (!gw.cfg.gatehouse.access_log) return;
  obs::AccessRecord r;
  r.worker = id;
  r.client_ip = c.remote_ip;
  r.method = req.method;
  r.host = req.host;
  r.path = req.path;
  // A key id in a control API path is a credential: never logged, however it is spelt.
  std::string redacted;
  if (ex.api_id.empty() && req.path.find("keys") != std::string_view::npos) {
    std::string norm;
    if (proxy::normalise_path(req.path, norm)) {
      redacted = admin::redact_path(norm);
      r.path = redacted;
    }
  }
  r.api_id = ex.api_id;
  r.status = ex.status;
  r.bytes_out = ex.bytes_out;
  r.duration_us = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - ex.start).count());
  r.upstream_us = ex.upstream_us;
  r.tls = c.stream.is_tls();
  r.error = ex.error;
  alog.record(r);
}

awaitable<bool> Worker::respond(ClientConn& c, const http::RequestHead& req, http::Response r,
                                Exchange& ex, bool body_consumed) {
  if (ex.h2) co_return co_await h2_respond(c, req, std::move(r), ex);
  // A body we did not read cannot be skipped safely: close instead.
  if ((!body_consumed && req.body != http::BodyKind::kNone) || !req.keep_alive || draining)
    r.close = true;
  if (req.version_minor == 0 && !r.close) r.headers.emplace_back("Connection", "keep-alive");
  std::string out;
  http::serialize(r, req.method == "HEAD", out);
  ex.status = r.status;
  ex.bytes_out = out.size();
  error_code ec;
  std::string_view rest = out;
  auto w = tcp::socket::wait_write;
  if (!c.stream.try_write(rest, ec, w)) ec = co_await c.stream.write_rest(rest, w);
  log_access(c, req, ex);
  co_return !r.close && !ec;
}

// Reads a whole request body (control API only), at most `limit` bytes.
// Returns 0 on success or the HTTP status to answer with.
awaitable<int> read_whole_body(ClientConn& c, const http::RequestHead& req, size_t limit,
                               std::string& body, H2Stream* h2, int read_timeout) {
  Buffer& in = h2 ? h2->in : c.in;
  auto more = [&]() -> awaitable<bool> {
    if (h2) co_return co_await h2_more(*h2, read_timeout);
    auto [ec, n] = co_await c.stream.read_some(in.prepare(kReadChunk));
    if (ec) co_return false;
    in.commit(n);
    co_return true;
  };
  if (req.body == http::BodyKind::kLength) {
    if (req.content_length > limit) co_return 413;
    while (in.size() < req.content_length) {
      if (!co_await more()) co_return -1;
    }
    body.assign(in.data().substr(0, req.content_length));
    in.consume(req.content_length);
  } else if (req.body == http::BodyKind::kChunked) {
    http::ChunkedDecoder dec;
    while (!dec.done()) {
      auto s = dec.step(in.data());
      in.consume(s.consumed);
      body.append(s.data);
      if (body.size() > limit) co_return 413;
      if (dec.failed()) co_return 400;
      if (dec.done()) break;
      if (s.consumed == 0 && !co_await more()) co_return -1;
    }
  }
  co_return 0;
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t unix_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Why the connection's client certificate is outside its validity period now (Tyk's message
// for an expired one), or nullptr when it is within it. Its dates are read once per connection,
// then compared with the clock on every request.
const char* peer_validity_refusal(ClientConn& c, X509* leaf) {
  if (!c.peer_times_read) {
    c.peer_times_read = true;
    if (!tls::validity_period(leaf, &c.peer_not_before, &c.peer_not_after)) {
      c.peer_not_before = 0;
      c.peer_not_after = -1;  // unreadable: never valid
    }
  }
  int64_t now = unix_now();
  if (now > c.peer_not_after) return "Certificate has expired";
  if (now < c.peer_not_before) return "Certificate is not yet valid";
  return nullptr;
}

const std::shared_ptr<const KeyView>* Worker::cached_view(const std::string& sid, uint64_t epoch,
                                                          const proxy::Snapshot& snap,
                                                          const apidef::ApiSpec& spec) {
  auto it = sessions.find(sid);
  if (it == sessions.end()) return nullptr;
  CachedSession& entry = it->second;
  if (entry.epoch != epoch) {
    sessions.erase(it);
    return nullptr;
  }
  if (!entry.view || entry.generation != snap.generation || entry.org != spec.org_id)
    make_view(entry, sid, snap, spec);
  return &entry.view;
}

void Worker::make_view(CachedSession& entry, const std::string& sid, const proxy::Snapshot& snap,
                       const apidef::ApiSpec& spec) {
  // Policies are applied from the current snapshot, so a changed policy governs every key
  // after a reload without the keys being saved again.
  auto view = std::make_shared<KeyView>();
  view->storage_id = sid;
  auto applied = policy::apply_policies(entry.session->raw, snap.policies, spec.org_id);
  if (applied) {
    auto parsed = auth::parse_session(boost::json::value(applied.value()));
    auto access = policy::build_access(applied.value(),
                                       gw.cfg.http_server_options.enable_path_suffix_matching);
    if (parsed && access) {
      view->session = std::move(parsed.value());
      view->access = std::move(access.value());
      view->valid = true;
    } else {
      log::warn("key refused: its session cannot be used",
                {{"reason", parsed ? access.error() : parsed.error()}});
    }
  } else {
    log::warn("key refused: policies do not apply", {{"reason", applied.error()}});
  }
  entry.view = std::move(view);
  entry.generation = snap.generation;
  entry.org = spec.org_id;
}

awaitable<std::shared_ptr<const KeyView>> Worker::session_for(const std::string& sid,
                                                              const proxy::Snapshot& snap,
                                                              const apidef::ApiSpec& spec) {
  // Taken before the store is read: a key change made meanwhile leaves the entry outdated.
  uint64_t epoch = admin::key_epoch().load(std::memory_order_acquire);
  if (const auto* view = cached_view(sid, epoch, snap, spec)) co_return *view;
  auto value = co_await gw.store->get(store::apikey_key(sid));
  if (!value) co_return nullptr;
  boost::system::error_code ec;
  auto v = boost::json::parse(*value, ec);
  if (ec) co_return nullptr;
  auto s = auth::parse_session(v);
  if (!s) co_return nullptr;
  if (sessions.size() > kSessionCacheSize) sessions.clear();
  CachedSession& entry = sessions[sid];
  entry.session = std::make_shared<const auth::Session>(std::move(s.value()));
  entry.epoch = epoch;
  make_view(entry, sid, snap, spec);
  co_return entry.view;
}

Denial Worker::before_key(auth::TokenPlace place) {
  if (place == auth::TokenPlace::kNone) return Denial{{401, "Authorization field missing"}};
  // The store is down: no key is admitted, cached or not (a key deleted meanwhile through
  // another gateway could not be known to be gone).
  if (!gw.store->healthy()) return Denial{{503, kStoreDown}};
  return Denial{};
}

Denial Worker::check_key(ClientConn& c, const KeyView* key, const http::RequestHead& req,
                         const apidef::ApiSpec& spec, const policy::ApiAccess*& api) const {
  // A key whose policies do not apply is refused as an unknown one, as in Tyk.
  if (!key || !key->valid) return Denial{{403, "Access to this API has been disallowed"}};
  const auto& session = key->session;
  if (spec.use_mutual_tls_auth && !session.mtls_bindings.empty()) {
    // Token-certificate binding. The static allow list has already admitted the certificate.
    SSL* ssl = c.stream.ssl();
    X509* leaf = ssl ? SSL_get0_peer_certificate(ssl) : nullptr;
    if (!leaf) return Denial{{401, "Access to this API has been disallowed"}};
    if (c.peer_hex.empty()) c.peer_hex = tls::cert_der_sha256(leaf);
    bool bound = false;
    for (const auto& b : session.mtls_bindings) {
      if (b.size() == spec.org_id.size() + c.peer_hex.size() &&
          b.compare(0, spec.org_id.size(), spec.org_id) == 0 &&
          b.compare(spec.org_id.size(), std::string::npos, c.peer_hex) == 0) {
        bound = true;
        break;
      }
    }
    if (!bound) {
      log::warn("key presented with a certificate it is not bound to",
                {{"api_id", spec.api_id}, {"certificate_sha256", c.peer_hex}});
      return Denial{{401, "Access to this API has been disallowed"}};
    }
  }
  // Tyk checks an inactive key before an expired one.
  if (session.is_inactive) return Denial{{403, "Key is inactive, please renew"}};
  if (session.expired(unix_now())) return Denial{{401, "Key has expired, please renew"}};
  if (!session.grants(spec.api_id, gw.cfg.allow_master_keys))
    return Denial{{403, "Access to this API has been disallowed"}};
  api = key->access.api(spec.api_id);
  // Method and path allow list, on the canonical spelling of the path (with and without the
  // listen path, as Tyk's prefix matching does).
  if (api && !api->allowed_urls.empty()) {
    std::string canon;
    bool allowed = false;
    if (policy::canonical_path(req.path, canon)) {
      std::string_view full(canon), rel;
      const auto& lp = spec.listen_path;
      if (!lp.empty() && full.size() >= lp.size() && full.compare(0, lp.size(), lp) == 0 &&
          (full.size() == lp.size() || full[lp.size()] == '/'))
        rel = full.size() == lp.size() ? std::string_view("/") : full.substr(lp.size());
      for (const auto& rule : api->allowed_urls) {
        if (rule.matches(full, req.method) || (!rel.empty() && rule.matches(rel, req.method))) {
          allowed = true;
          break;
        }
      }
    }
    if (!allowed) return Denial{{403, "Access to this resource has been disallowed"}};
  }
  return Denial{};
}

bool Worker::check_token_now(ClientConn& c, const http::RequestHead& req,
                             const apidef::ApiSpec& spec, const proxy::Snapshot& snap, Exchange& ex,
                             Denial& out, std::shared_ptr<const KeyView>& key_out,
                             const policy::ApiAccess*& api_out) {
  std::string_view token;
  std::string decoded;  // only a query parameter is copied
  out = before_key(auth::find_token(req, spec.token, token, decoded));
  if (out) return true;
  // Only the most likely storage id is tried here: the others (and a miss) need the store. The
  // token is hashed afresh on every request rather than remembered: a per-worker token -> id
  // map would keep raw credentials in memory and compare them on lookup, to save well under a
  // thousand instructions.
  auth::first_lookup_id(token, gw.hashing, storage_id_);
  const auto* view =
      cached_view(storage_id_, admin::key_epoch().load(std::memory_order_acquire), snap, spec);
  if (!view) return false;
  // The view stays in the cache for the rest of this call: nothing here suspends.
  const KeyView& key = **view;
  const policy::ApiAccess* api = nullptr;
  out = check_key(c, &key, req, spec, api);
  if (out) return true;
  if (limits_now(key, api, spec, ex, out)) return true;
  key_out = *view;  // `api` points into it
  api_out = api;
  return false;
}

awaitable<Denial> Worker::check_token(ClientConn& c, const http::RequestHead& req,
                                      const apidef::ApiSpec& spec, const proxy::Snapshot& snap,
                                      Exchange& ex) {
  auto found = auth::find_token(req, spec.token);
  if (auto denied = before_key(found.place)) co_return denied;
  // Unknown tokens, tokens of any length and known ones all take this same path: hash, look up.
  std::shared_ptr<const KeyView> key;
  for (const auto& sid :
       auth::lookup_ids(found.token, spec.org_id, gw.cfg.hash_key_function, gw.hashing)) {
    key = co_await session_for(sid, snap, spec);
    if (key) break;
  }
  const policy::ApiAccess* api = nullptr;
  if (auto denied = check_key(c, key.get(), req, spec, api)) co_return denied;
  auto limited = co_await check_limits(*key, api, spec, ex);
  co_return limited;
}

awaitable<bool> Worker::cert_in_store(const std::string& id) {
  uint64_t epoch = admin::key_epoch().load(std::memory_order_acquire);
  if (auto it = certs_present_.find(id); it != certs_present_.end()) {
    if (it->second == epoch) co_return true;
    certs_present_.erase(it);
  }
  if (!co_await gw.store->get(store::cert_key(id))) co_return false;
  if (certs_present_.size() > kSessionCacheSize) certs_present_.clear();
  certs_present_[id] = epoch;
  co_return true;
}

awaitable<Denial> Worker::check_certificate_auth(ClientConn& c, const http::RequestHead& req,
                                                 const apidef::ApiSpec& spec,
                                                 const proxy::Snapshot& snap, Exchange& ex) {
  SSL* ssl = c.stream.ssl();
  X509* leaf = ssl ? SSL_get0_peer_certificate(ssl) : nullptr;
  if (const char* why = leaf ? peer_validity_refusal(c, leaf) : nullptr)
    co_return Denial{{403, why}};
  std::shared_ptr<const KeyView> key;
  if (leaf) {
    if (!gw.store->healthy()) co_return Denial{{503, kStoreDown}};
    if (c.peer_hex.empty()) c.peer_hex = tls::cert_der_sha256(leaf);
    // The key made for this certificate (POST /tyk/keys/create with "certificate"), else one
    // stored under the certificate id itself.
    std::string token = auth::generate_token(spec.org_id, c.peer_hex, gw.cfg.hash_key_function);
    std::string cert_id = spec.org_id + c.peer_hex;
    for (const std::string* t : {&token, &cert_id}) {
      for (const auto& sid :
           auth::lookup_ids(*t, spec.org_id, gw.cfg.hash_key_function, gw.hashing)) {
        key = co_await session_for(sid, snap, spec);
        if (key) break;
      }
      if (key) break;
    }
    if (!key) co_return Denial{{401, "Access to this API has been disallowed"}};
    // The certificate must still be in the store: deleting it revokes the key.
    if (!co_await cert_in_store(cert_id))
      co_return Denial{{403, "Access to this API has been disallowed"}};
  } else if (!gw.cfg.security.allow_unsafe_dynamic_mtls_token) {
    co_return Denial{{401, "Client certificate required"}};
  } else {
    // security.allow_unsafe_dynamic_mtls_token: the key's token alone (warned at start).
    auto found = auth::find_token(req, spec.token);
    if (found.place == auth::TokenPlace::kNone)
      co_return Denial{{401, "Client certificate required"}};
    if (!gw.store->healthy()) co_return Denial{{503, kStoreDown}};
    for (const auto& sid :
         auth::lookup_ids(found.token, spec.org_id, gw.cfg.hash_key_function, gw.hashing)) {
      key = co_await session_for(sid, snap, spec);
      if (key) break;
    }
    if (!key) co_return Denial{{403, "Access to this API has been disallowed"}};
    if (key->valid && !key->session.certificate.empty() &&
        !co_await cert_in_store(key->session.certificate))
      co_return Denial{{403, "Access to this API has been disallowed"}};
  }
  const policy::ApiAccess* api = nullptr;
  if (auto denied = check_key(c, key.get(), req, spec, api)) co_return denied;
  auto limited = co_await check_limits(*key, api, spec, ex);
  co_return limited;
}

Worker::LimitPlan Worker::plan_limits(const KeyView& key, const policy::ApiAccess* api,
                                      const apidef::ApiSpec& spec) const {
  LimitPlan p;
  p.lim = api ? api->limit : key.access.session_limit;
  if (spec.disable_rate_limit) p.lim.rate = 0;
  if (spec.disable_quota) p.lim.quota_max = 0;
  if (api) p.scope = api->scope;
  p.rate = p.lim.rate > 0 && p.lim.per > 0;
  p.quota = p.lim.quota_max > 0;
  // The rate limit is counted by this gateway unless the store counts it for the whole fleet
  // (enable_redis_rolling_limiter or enable_fixed_window_rate_limiter on a Redis store). As in
  // Tyk, the fixed window wins when both are set.
  p.store_counts = gw.store->counts_limits();
  p.fixed = gw.cfg.enable_fixed_window_rate_limiter;
  p.rate_in_store = p.store_counts && (gw.cfg.enable_redis_rolling_limiter || p.fixed);
  return p;
}

void Worker::set_rate_headers(Exchange& ex, const policy::Limit& lim, int64_t remaining,
                              int64_t reset_s) const {
  if (!gw.rate_limit_headers) return;
  ex.limit_headers = {true, lim.rate, remaining, unix_now() + reset_s};
  ex.limit_headers_on_errors = true;
}

void Worker::set_quota_headers(Exchange& ex, const policy::Limit& lim, int64_t remaining,
                               int64_t renews_at) const {
  if (gw.rate_limit_headers) return;
  ex.limit_headers = {true, lim.quota_max, remaining, renews_at};
}

// A rate limit counted by this gateway: Tyk's fixed windows with enable_fixed_window_rate_limiter,
// else the sliding log.
policy::Limiter::RateResult Worker::local_rate_take(std::string_view name, int64_t rate,
                                                    double per) {
  if (gw.cfg.enable_fixed_window_rate_limiter)
    return gw.limiter.fixed_take(name, rate, per, unix_now_ns(), Clock::now());
  return gw.limiter.rate_take(name, rate, per, Clock::now());
}

Denial Worker::take_local_rate(const LimitPlan& p, const KeyView& key, Exchange& ex) {
  store::rate_limit_key(rate_name_, key.storage_id, p.scope);
  auto r = local_rate_take(rate_name_, p.lim.rate, p.lim.per);
  set_rate_headers(ex, p.lim, r.remaining, r.reset_s);
  if (!r.allowed) return Denial{{429, "Rate Limit Exceeded"}};
  return Denial{};
}

Denial Worker::take_local_quota(const LimitPlan& p, std::string_view name,
                                const std::optional<policy::Limiter::QuotaState>& persisted,
                                Exchange& ex) {
  const auto& lim = p.lim;
  auto q =
      gw.limiter.quota_take(name, lim.quota_max, lim.quota_renewal_rate, unix_now(), persisted);
  set_quota_headers(ex, lim, q.remaining, q.renews_at);
  if (!q.allowed) return Denial{{403, "Quota exceeded"}};
  return Denial{};
}

bool Worker::limits_now(const KeyView& key, const policy::ApiAccess* api,
                        const apidef::ApiSpec& spec, Exchange& ex, Denial& out) {
  auto p = plan_limits(key, api, spec);
  // The fleet-wide rate limit and a quota on a store that counts it need a round trip.
  if ((p.rate && p.rate_in_store) || (p.store_counts && p.quota)) return false;
  if (p.quota) {
    store::quota_key(quota_name_, key.storage_id, p.scope);
    // The first use of a quota continues from the counter the store kept (check_limits).
    if (!gw.limiter.quota_known(quota_name_)) return false;
  }
  // Tyk's order: the rate first, so that a refused request uses no quota.
  if (p.rate && !p.rate_in_store) {
    out = take_local_rate(p, key, ex);
    // A throttled key waits and tries again: that is check_limits' work.
    if (out) return p.lim.throttle_retry_limit <= 0;
  }
  out = Denial{};
  if (p.quota) out = take_local_quota(p, quota_name_, std::nullopt, ex);
  return true;
}

// Tyk's throttling (throttle_interval, throttle_retry_limit of the limit that applies): a
// request over the rate limit waits throttle_interval seconds and is checked again, up to
// throttle_retry_limit times, before it is refused. Only the key's rate limit throttles (not
// the quota, not the API's global_rate_limit). The exchange's deadline is moved past each wait.
awaitable<Denial> Worker::check_limits(const KeyView& key, const policy::ApiAccess* api,
                                       const apidef::ApiSpec& spec, Exchange& ex) {
  auto denied = co_await limits_once(key, api, spec, ex);
  auto rate_refusal = [&] {
    return denied && denied->first == 429 &&
           std::strcmp(denied->second, "Rate Limit Exceeded") == 0;
  };
  if (!rate_refusal()) co_return denied;
  const policy::Limit lim = plan_limits(key, api, spec).lim;  // the limit that refused it
  if (lim.throttle_retry_limit <= 0) co_return denied;
  const auto wait = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(std::clamp(lim.throttle_interval, 0.0, 86400.0)));
  asio::steady_timer t(ioc);
  for (int64_t i = 0; i < lim.throttle_retry_limit && rate_refusal(); ++i) {
    if (ex.watch)
      ex.watch->set_deadline(wait + std::chrono::seconds(gw.cfg.gatehouse.header_timeout));
    t.expires_after(wait);
    co_await t.async_wait(nothrow);
    if ((ex.watch && ex.watch->closed) || (ex.h2 && ex.h2->gone)) break;  // the client left
    denied = co_await limits_once(key, api, spec, ex);
  }
  co_return denied;
}

awaitable<Denial> Worker::limits_once(const KeyView& key, const policy::ApiAccess* api,
                                      const apidef::ApiSpec& spec, Exchange& ex) {
  auto p = plan_limits(key, api, spec);
  const auto& lim = p.lim;
  if (p.rate && !p.rate_in_store) {
    if (auto denied = take_local_rate(p, key, ex)) co_return denied;
  }
  if (p.store_counts) {
    // One round trip for the fleet-wide rate limit and the quota together.
    store::LimitRequest lr;
    policy::Limiter::Window window;
    uint64_t epoch = 0;
    if (p.rate && p.rate_in_store) {
      lr.rate_key = store::rate_limit_key(key.storage_id, p.scope);
      lr.rate = lim.rate;
      lr.per = lim.per;
      lr.want_rate_reset = gw.rate_limit_headers;
      if (p.fixed) {
        const int64_t now_ns = unix_now_ns();
        window = policy::Limiter::fixed_window(lim.per, now_ns);
        epoch = admin::key_epoch().load(std::memory_order_acquire);
        // This gateway already saw the store refuse this window: no round trip until it ends.
        int64_t reset_s = 0;
        if (gw.limiter.fixed_spent(lr.rate_key, window, lim.rate, epoch, now_ns, reset_s)) {
          set_rate_headers(ex, lim, 0, reset_s);
          co_return Denial{{429, "Rate Limit Exceeded"}};
        }
        lr.fixed_window = true;
        lr.window_start_ns = window.start_ns;
        lr.window_end_ns = window.end_ns;
      }
    }
    if (p.quota) {
      lr.quota_key = store::quota_key(key.storage_id, p.scope);
      lr.quota_max = lim.quota_max;
      lr.quota_renewal = lim.quota_renewal_rate;
    }
    if (lr.rate > 0 || lr.quota_max > 0) {
      auto res = co_await gw.store->take_limits(std::move(lr));
      if (!res.ok) co_return Denial{{503, kStoreDown}};
      if (p.rate && p.rate_in_store) {
        set_rate_headers(ex, lim, res.rate_remaining, res.rate_reset_s);
        if (!res.rate_allowed) {
          if (p.fixed)
            gw.limiter.fixed_mark_spent(store::rate_limit_key(key.storage_id, p.scope), window,
                                        lim.rate, epoch, Clock::now());
          co_return Denial{{429, "Rate Limit Exceeded"}};
        }
      }
      if (p.quota) {
        set_quota_headers(ex, lim, std::max<int64_t>(0, res.quota_remaining), res.quota_renews_at);
        if (!res.quota_allowed) co_return Denial{{403, "Quota exceeded"}};
      }
    }
    co_return Denial{};
  }
  if (p.quota) {
    auto name = store::quota_key(key.storage_id, p.scope);
    std::optional<policy::Limiter::QuotaState> persisted;
    if (!gw.limiter.quota_known(name)) {
      // First use since the start: continue from the counter the store kept.
      if (auto e = co_await gw.store->get_entry(name))
        persisted =
            policy::Limiter::QuotaState{std::strtoll(e->value.c_str(), nullptr, 10), e->expires_at};
    }
    co_return take_local_quota(p, name, persisted, ex);
  }
  co_return Denial{};
}

awaitable<void> Gateway::flush_quotas() {
  auto dirty = limiter.dirty_quotas();
  if (dirty.empty()) co_return;
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  std::vector<store::Store::Write> writes;
  writes.reserve(dirty.size());
  for (auto& [name, st] : dirty) {
    int64_t ttl = st.renews_at > 0 ? st.renews_at - now : 0;
    if (st.renews_at > 0 && ttl <= 0) ttl = 1;  // the period is over: let it lapse
    writes.push_back(store::Store::Write{name, std::to_string(st.used), ttl});
  }
  if (!co_await store->set_many(std::move(writes)))
    log::error("quota counters could not be written to the store",
               {{"count", static_cast<unsigned long>(dirty.size())}});
}

bool Worker::sni_matches(ClientConn& c, const http::RequestHead& req, const apidef::ApiSpec& spec) {
  if (spec.domain.empty()) return true;
  SSL* ssl = c.stream.ssl();
  const char* sni = ssl ? SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) : nullptr;
  return sni && iequals(sni, proxy::host_only(req.host));
}

std::optional<std::pair<int, std::string>> Worker::check_client_cert(ClientConn& c,
                                                                     const http::RequestHead& req,
                                                                     const apidef::ApiSpec& spec,
                                                                     const proxy::Snapshot& snap) {
  using Refusal = std::optional<std::pair<int, std::string>>;
  SSL* ssl = c.stream.ssl();
  if (!ssl) return Refusal{{403, "TLS not enabled"}};
  // An mTLS API on its own domain is reached only through a handshake made for that domain:
  // a connection set up for another name (or none) cannot carry requests to it.
  if (!sni_matches(c, req, spec)) return Refusal{{421, "Misdirected Request"}};
  X509* leaf = SSL_get0_peer_certificate(ssl);
  if (!leaf) return Refusal{{403, "Client TLS certificate is required"}};
  if (const char* why = peer_validity_refusal(c, leaf)) return Refusal{{403, why}};
  if (c.peer_hex.empty()) c.peer_hex = tls::cert_der_sha256(leaf);
  auto it = snap.client_allow.find(spec.api_id);
  if (it != snap.client_allow.end()) {
    if (c.judged_by != it->second) {
      c.judged_allowed = it->second->admits(ssl, leaf, c.peer_hex);
      c.judged_by = it->second;
    }
    if (c.judged_allowed) return Refusal{};
  }
  return Refusal{{403, "Certificate with SHA256 " + c.peer_hex + " not allowed"}};
}

awaitable<bool> Worker::handle(ClientConn& c, http::RequestHead& req, H2Stream* h2) {
  Exchange ex;
  ex.start = Clock::now();
  ex.h2 = h2;
  ex.watch = h2 ? static_cast<Watch*>(h2) : &c;
  auto snap = snaps.current();  // held for the whole exchange: a reload cannot pull it away
  std::string& path = h2 ? h2->path : c.path;
  if (!proxy::normalise_path(req.path.empty() ? std::string_view("*") : req.path, path)) {
    co_return co_await respond(c, req, http::error_response(404, "Not Found"), ex, false);
  }
  bool control = c.kind == ListenerKind::kControl;
  if (!control && gw.cfg.control_api_port == 0 && gw.control.owns(path)) {
    control = gw.cfg.control_api_hostname.empty() ||
              proxy::host_only(req.host) == gw.cfg.control_api_hostname;
  }
  if (control) co_return co_await handle_admin(c, req, path, ex);

  const apidef::ApiSpec* spec = snap ? snap->router.match(req.host, path) : nullptr;
  if (!spec) {
    ex.error = "no API matches";
    co_return co_await respond(c, req, http::error_response(404, "Not Found"), ex, false);
  }
  ex.api_id = spec->api_id;
  if (spec->use_mutual_tls_auth) {
    auto refusal = check_client_cert(c, req, *spec, *snap);
    if (refusal) {
      ex.error = refusal->second;
      co_return co_await respond(c, req, http::error_response(refusal->first, refusal->second), ex,
                                 false);
    }
  }
  if (spec->auth == apidef::AuthKind::kAuthToken || spec->auth == apidef::AuthKind::kCertificate) {
    Denial denied;
    if (spec->auth == apidef::AuthKind::kCertificate) {
      // The certificate of a handshake made for another name does not reach this API.
      if (!sni_matches(c, req, *spec)) {
        denied = Denial{{421, "Misdirected Request"}};
      } else {
        denied = co_await check_certificate_auth(c, req, *spec, *snap, ex);
      }
    } else {
      // Mostly decided in memory; a key or quota not yet in memory takes the coroutine path,
      // and so do limits counted by the store (with the key already checked).
      std::shared_ptr<const KeyView> key;
      const policy::ApiAccess* api = nullptr;
      if (!check_token_now(c, req, *spec, *snap, ex, denied, key, api)) {
        if (key)
          denied = co_await check_limits(*key, api, *spec, ex);
        else
          denied = co_await check_token(c, req, *spec, *snap, ex);
      }
    }
    if (denied) {
      ex.error = denied->second;
      auto r = http::error_response(denied->first, denied->second);
      if (ex.limit_headers_on_errors && ex.limit_headers.present) {
        const auto& h = ex.limit_headers;
        r.headers.emplace_back("X-RateLimit-Limit", std::to_string(h.limit));
        r.headers.emplace_back("X-RateLimit-Remaining", std::to_string(h.remaining));
        r.headers.emplace_back("X-RateLimit-Reset", std::to_string(h.reset));
      }
      co_return co_await respond(c, req, std::move(r), ex, false);
    }
  } else if (spec->auth != apidef::AuthKind::kKeyless) {
    // Authentication methods arrive with their own middleware; until then such an API is closed.
    ex.error = "authentication method not available";
    co_return co_await respond(c, req, http::error_response(401, "Authorization field missing"), ex,
                               false);
  }
  // The API's own limit, after the key's (as in Tyk: a request refused here has used quota).
  if (spec->global_rate > 0 && spec->global_per > 0 && !spec->disable_rate_limit) {
    // Counted by this gateway, in the same kind of window as the keys' limits.
    auto r = local_rate_take(spec->global_limit_key, spec->global_rate, spec->global_per);
    if (!r.allowed) {
      ex.error = "API Rate Limit Exceeded";
      co_return co_await respond(c, req, http::error_response(429, "API Rate Limit Exceeded"), ex,
                                 false);
    }
  }
  int64_t limit = gw.cfg.http_server_options.max_request_body_size > 0
                      ? gw.cfg.http_server_options.max_request_body_size
                      : gw.cfg.gatehouse.max_body_bytes;
  if (limit > 0 && req.body == http::BodyKind::kLength &&
      req.content_length > static_cast<uint64_t>(limit)) {
    ex.error = "request body too large";
    co_return co_await respond(c, req, http::error_response(413, "Request is too large"), ex,
                               false);
  }
  const proxy::UpstreamPlan* plan = nullptr;
  if (auto it = snap->upstream.find(spec); it != snap->upstream.end()) plan = &it->second;
  if (!plan) {
    ex.error = "no upstream plan";
    co_return co_await respond(c, req, http::error_response(500, kProxyError), ex, false);
  }
  co_return co_await proxy_request(c, req, *spec, *plan, path, ex);
}

awaitable<bool> Worker::handle_admin(ClientConn& c, http::RequestHead& req, const std::string& path,
                                     Exchange& ex) {
  std::string body;
  if (req.expect_continue && req.body != http::BodyKind::kNone && !ex.h2 &&
      !(req.body == http::BodyKind::kLength && req.content_length > kMaxAdminBody)) {
    if (co_await c.stream.write("HTTP/1.1 100 Continue\r\n\r\n")) co_return false;
  }
  int st = co_await read_whole_body(c, req, kMaxAdminBody, body, ex.h2,
                                    gw.cfg.http_server_options.read_timeout);
  if (st == -1) co_return false;
  if (st != 0) {
    co_return co_await respond(
        c, req,
        http::status_response(st, "error",
                              st == 413 ? "Request is too large" : "Request malformed"),
        ex, false);
  }
  admin::AdminRequest ar;
  ar.method = req.method;
  ar.path = path;
  ar.query = req.query;
  ar.body = body;
  for (const auto& h : req.headers) {
    if (iequals(h.name, "x-tyk-authorization")) {
      ar.authorization = h.value;
      ar.has_authorization = true;
    }
  }
  admin::AdminResult result;
  if (gw.control_allow && (path == "/tyk" || path.rfind("/tyk/", 0) == 0)) {
    // Control API mutual TLS on the shared listener: judged per request.
    std::string hex;
    auto verdict = gw.control_allow->check(c.stream.ssl(), &hex);
    if (verdict != tls::ClientCertAllow::Verdict::kAllowed) {
      const char* msg = verdict == tls::ClientCertAllow::Verdict::kMissing
                            ? "Client TLS certificate is required"
                        : verdict == tls::ClientCertAllow::Verdict::kExpired
                            ? "Certificate has expired"
                            : "Certificate is not allowed for the control API";
      log::warn("control API request refused: client certificate", {{"reason", msg}});
      co_return co_await respond(c, req, http::status_response(403, "error", msg), ex, true);
    }
  }
  if (admin::KeysApi::owns(path) || admin::CertsApi::owns(path)) {
    if (!gw.control.authorized(ar)) {
      result = admin::ControlApi::forbidden(ar);
    } else if (admin::KeysApi::owns(path)) {
      result = co_await gw.keys.handle(ar);
    } else {
      result = co_await gw.certs.handle(ar);
    }
  } else {
    result = gw.control.handle(ar);
  }
  if (result.reload != admin::ReloadMode::kNone) {
    if (result.reload == admin::ReloadMode::kBlock) {
      auto waiter = std::make_shared<asio::steady_timer>(ioc, Clock::time_point::max());
      auto ex_ = ioc.get_executor();
      gw.request_reload([waiter, ex_] { asio::post(ex_, [waiter] { waiter->cancel(); }); });
      co_await waiter->async_wait(nothrow);
    } else {
      gw.request_reload(nullptr);
    }
  }
  result.response.headers.emplace_back("X-Content-Type-Options", "nosniff");
  result.response.headers.emplace_back("Cache-Control", "no-cache, no-store, must-revalidate");
  co_return co_await respond(c, req, std::move(result.response), ex, true);
}

bool idempotent(std::string_view m) {
  return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "PUT" || m == "DELETE" || m == "TRACE";
}

awaitable<bool> Worker::open_tunnel(UpstreamConn& up, const apidef::TargetUrl& t,
                                    const proxy::ForwardProxy& p, std::string& err) {
  std::string target = t.host.find(':') != std::string::npos ? "[" + t.host + "]" : t.host;
  target += ":" + std::to_string(t.port);
  std::string connect = "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n";
  if (!p.authorization.empty()) append_field(connect, "Proxy-Authorization", p.authorization);
  connect += "\r\n"sv;
  auto [wec, wn] = co_await asio::async_write(up.stream.lowest(), asio::buffer(connect), nothrow);
  if (wec) {
    err = "forward proxy " + p.authority + ": " + wec.message();
    co_return false;
  }
  // The proxy's answer: a head only (nothing may follow it before the TLS handshake).
  std::string buf;
  while (buf.find("\r\n\r\n") == std::string::npos) {
    if (buf.size() > 16384) {
      err = "forward proxy " + p.authority + ": answer to CONNECT too long";
      co_return false;
    }
    char tmp[2048];
    auto [rec, n] = co_await up.stream.lowest().async_read_some(asio::buffer(tmp), nothrow);
    if (rec) {
      err = "forward proxy " + p.authority + " closed the tunnel: " + rec.message();
      co_return false;
    }
    buf.append(tmp, n);
  }
  http::ResponseHead head;
  http::ParseLimits lim;
  auto r = http::parse_response_head(buf, lim, "CONNECT", head);
  if (r.status != http::ParseStatus::kDone || head.status < 200 || head.status > 299 ||
      r.consumed != buf.size()) {
    err = "forward proxy " + p.authority + " refused CONNECT " + target + ": " +
          (r.status == http::ParseStatus::kDone ? std::to_string(head.status) : "bad answer");
    co_return false;
  }
  co_return true;
}

awaitable<std::unique_ptr<UpstreamConn>> Worker::connect_upstream(Watch& w,
                                                                  const apidef::ApiSpec& spec,
                                                                  const proxy::UpstreamPlan& plan,
                                                                  std::string& err, bool offer_h2) {
  const auto& t = spec.target;
  // Through a forward proxy the connection goes to the proxy.
  const std::string& dial_host = plan.proxy ? plan.proxy->host : t.host;
  const uint16_t dial_port = plan.proxy ? plan.proxy->port : t.port;
  const std::string& dial_name = plan.proxy ? plan.proxy->authority : t.authority;
  std::vector<tcp::endpoint> eps;
  error_code ec;
  auto addr = asio::ip::make_address(dial_host, ec);
  if (!ec) {
    eps.emplace_back(addr, dial_port);
  } else {
    auto [rec, results] =
        co_await resolver.async_resolve(dial_host, std::to_string(dial_port), nothrow);
    if (rec) {
      err = "cannot resolve " + dial_host + ": " + rec.message();
      co_return nullptr;
    }
    for (const auto& r : results) eps.push_back(r.endpoint());
  }
  if (gw.guard.enabled()) {
    // SSRF guard rails: internal addresses (after resolution) only when allowed.
    std::vector<tcp::endpoint> ok;
    for (const auto& ep : eps) {
      if (gw.guard.allowed(ep.address())) ok.push_back(ep);
    }
    if (ok.empty()) {
      err = "upstream " + dial_name + " resolves to an internal address (" +
            (eps.empty() ? std::string("none") : eps.front().address().to_string()) +
            ") refused by gatehouse.upstream_guard";
      co_return nullptr;
    }
    eps.swap(ok);
  }
  auto up = std::make_unique<UpstreamConn>(tcp::socket(ioc));
  w.active_upstream = up.get();
  w.set_deadline(std::chrono::seconds(gw.cfg.gatehouse.upstream_connect_timeout));
  error_code cec = asio::error::host_not_found;
  for (const auto& ep : eps) {
    error_code oec;
    up->stream.lowest().close(oec);
    auto [e] = co_await up->stream.lowest().async_connect(ep, nothrow);
    cec = e;
    if (!e || w.upstream_timed_out) break;
  }
  if (cec) {
    err = "cannot connect to " + dial_name + ": " + cec.message();
    w.active_upstream = nullptr;
    co_return nullptr;
  }
  up->stream.lowest().set_option(tcp::no_delay(true), ec);
  if (plan.proxy && t.tls() && !co_await open_tunnel(*up, t, *plan.proxy, err)) {
    w.active_upstream = nullptr;
    co_return nullptr;
  }
  if (t.tls()) {
    SSL* ssl = gw.client_tls.new_ssl(plan.tls_ctx, t.host, plan.pins.get());
    if (!ssl) {
      err = "cannot create TLS session";
      w.active_upstream = nullptr;
      co_return nullptr;
    }
    if (offer_h2) {
      static const unsigned char kH2First[] = "\x02h2\x08http/1.1";
      SSL_set_alpn_protos(ssl, kH2First, sizeof kH2First - 1);
    }
    up->stream.start_tls(ssl);
    w.active_upstream = up.get();
    auto hec = co_await up->stream.handshake(false);
    if (hec) {
      long vr = SSL_get_verify_result(up->stream.ssl());
      err = "TLS handshake with " + t.authority + " failed: " +
            (vr != X509_V_OK ? std::string(X509_verify_cert_error_string(vr)) : hec.message());
      w.active_upstream = nullptr;
      co_return nullptr;
    }
    // Checked on every new connection; a pooled one was checked when it was made, under the
    // same pins (the pool key names them).
    if (plan.pins && !tls::ClientTls::chain_is_pinned(up->stream.ssl(), *plan.pins)) {
      err =
          "certificate pinning: no public key of " + t.authority + "'s certificate chain is pinned";
      w.active_upstream = nullptr;
      co_return nullptr;
    }
    if (plan.force_common_name && !tls::ClientTls::common_name_is(up->stream.ssl(), t.host)) {
      err = "ssl_force_common_name_check: the certificate's common name is not " + t.host;
      w.active_upstream = nullptr;
      co_return nullptr;
    }
  }
  co_return up;
}

awaitable<std::unique_ptr<UpstreamConn>> Worker::h2_upstream(Watch& w, const apidef::ApiSpec& spec,
                                                             const proxy::UpstreamPlan& plan,
                                                             const std::string& key, bool& reused,
                                                             std::string& err) {
  auto stream_on = [&](const std::shared_ptr<H2UpConn>& h) {
    auto up = std::make_unique<UpstreamConn>(tcp::socket(ioc));
    up->h2 = std::make_unique<H2UpStream>(ioc, h);
    up->key = key;
    return up;
  };
  while (true) {
    std::shared_ptr<H2UpConn> making;
    auto& list = h2_pool[key];
    std::erase_if(list, [](const auto& h) { return h->dead; });
    for (auto& h : list) {
      if (!h->ready) {
        making = h;
      } else if (!h->closing && h->session.accepting()) {
        reused = true;
        co_return stream_on(h);
      }
    }
    if (making) {
      // Another exchange is making a connection for this key: share it rather than open many
      // (and share its failure: one connect timeout, not one per waiting exchange).
      co_await making->ready_wait.async_wait(nothrow);
      if (!making->failure.empty()) {
        err = making->failure;
        co_return nullptr;
      }
      continue;
    }
    auto only = h1_only.find(key);
    if (only != h1_only.end()) {
      if (Clock::now() - only->second < std::chrono::minutes(1)) co_return nullptr;
      h1_only.erase(only);
    }
    reused = false;
    const auto& g = gw.cfg.gatehouse;
    http::H2ClientLimits lim;
    lim.max_header_list_bytes = static_cast<uint32_t>(g.max_header_bytes);
    // (One field fewer: the response may gain Transfer-Encoding on its way to the parser.)
    lim.max_headers = static_cast<uint32_t>(std::max(1, g.max_headers - 1));
    lim.max_continuations = static_cast<uint32_t>(g.http2.max_continuations);
    auto h = std::make_shared<H2UpConn>(ioc, key, lim, spec.target.tls());
    list.push_back(h);
    auto up = co_await connect_upstream(w, spec, plan, err, true);
    h->ready = true;
    h->ready_wait.cancel();
    if (!up) {
      h->dead = true;
      h->failure = err;
      co_return nullptr;
    }
    if (up->stream.is_tls()) {
      const unsigned char* proto = nullptr;
      unsigned len = 0;
      SSL_get0_alpn_selected(up->stream.ssl(), &proto, &len);
      if (std::string_view(reinterpret_cast<const char*>(proto), proto ? len : 0) != "h2") {
        // The upstream speaks HTTP/1.1: this connection serves the exchange as such, and the
        // key goes the HTTP/1.1 way for a while.
        h->dead = true;
        h1_only[key] = Clock::now();
        up->key = key;
        co_return up;
      }
    }
    h->conn = std::move(up);
    h->closing = draining;  // made while the worker drains: ends with its streams
    asio::co_spawn(ioc, h2_up_reader(h), asio::detached);
    asio::co_spawn(ioc, h2_up_writer(h), asio::detached);
    h->flush();  // the preface and our SETTINGS
    co_return stream_on(h);
  }
}

awaitable<void> Worker::h2_up_reader(std::shared_ptr<H2UpConn> h) {
  Buffer buf;
  std::string why;
  while (!h->dead) {
    auto b = buf.prepare(kReadChunk);
    auto [ec, n] = co_await h->conn->stream.read_some(b);
    if (ec) {
      if (!h->streams.empty()) why = ec.message();
      break;
    }
    bool ok = h->session.receive(static_cast<const uint8_t*>(b.data()), n);
    h->flush();
    if (!ok) {
      why = h->session.failure();
      break;
    }
    if (!h->session.want_read()) break;  // GOAWAY and no stream left
  }
  if (!why.empty())
    log::warn("upstream HTTP/2 connection ended", {{"upstream", h->key}, {"reason", why}});
  h->fail_all(kH2ConnectionLost);
  // (The writer alone writes: a GOAWAY still queued is dropped with the connection.)
  h->end();
}

awaitable<void> Worker::h2_up_writer(std::shared_ptr<H2UpConn> h) {
  std::string out;
  while (!h->dead) {
    out.clear();
    h->session.take_output(out);
    if (out.empty()) {
      if (h->retiring) {
        h->end();  // all sent: the reader ends
        break;
      }
      h->wake_writer.expires_at(Clock::time_point::max());
      co_await h->wake_writer.async_wait(nothrow);
      continue;
    }
    if (co_await h->conn->stream.write(out)) {
      h->end();  // the reader ends and fails the streams
      break;
    }
  }
}

awaitable<error_code> Worker::h2_up_send(UpstreamConn& up, std::string_view data) {
  H2UpStream& s = *up.h2;
  H2UpConn& h = *s.conn;
  const error_code lost = asio::error::connection_reset;
  if (s.closed && s.error != 0) co_return lost;
  std::string rest;
  if (s.id == 0) {
    if (h.dead) co_return lost;
    s.head.append(data);
    auto end = s.head.find("\r\n\r\n");
    if (end == std::string::npos) co_return error_code{};
    // The gateway's own head (the client's limits were applied to the client's): fields it
    // added may take it past them.
    static const http::ParseLimits kOwnHead{65536, 1 << 20, 10000};
    auto pr =
        http::parse_request_head(std::string_view(s.head).substr(0, end + 4), kOwnHead, s.req);
    if (pr.status != http::ParseStatus::kDone) co_return error_code(asio::error::invalid_argument);
    const auto& r = s.req;
    http::Fields f;
    f.reserve(r.headers.size() + 4);
    f.emplace_back(":method", r.method);
    f.emplace_back(":scheme", h.tls ? "https" : "http");
    f.emplace_back(":authority", r.host);
    f.emplace_back(":path", r.target);
    for (const auto& hd : r.headers) {
      std::string name(hd.name);
      for (auto& ch : name)
        if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
      // Fields of an HTTP/1.1 connection have no place in HTTP/2 (RFC 9113 8.2.2).
      if (name == "host" || name == "connection" || name == "keep-alive" ||
          name == "proxy-connection" || name == "transfer-encoding" || name == "upgrade")
        continue;
      if (name == "te") continue;
      f.emplace_back(std::move(name), hd.value);
    }
    if (s.te_trailers) f.emplace_back("te", "trailers");  // (gRPC upstreams require it)
    s.body = r.body;
    s.remaining = r.content_length;
    s.head_request = r.method == "HEAD";
    const bool has_body = s.body == http::BodyKind::kChunked ||
                          (s.body == http::BodyKind::kLength && s.remaining > 0);
    if (!has_body) s.body = http::BodyKind::kNone;
    int32_t id = h.session.submit(f, has_body);
    if (id < 0) co_return lost;
    s.id = id;
    h.streams[id] = &s;
    rest = s.head.substr(end + 4);
    std::string().swap(s.head);
    data = rest;
  }
  if (s.body == http::BodyKind::kLength && s.remaining > 0) {
    size_t take = static_cast<size_t>(std::min<uint64_t>(s.remaining, data.size()));
    h.session.send_data(s.id, data.substr(0, take));
    s.remaining -= take;
    if (s.remaining == 0) h.session.end_data(s.id);
  } else if (s.body == http::BodyKind::kChunked && !s.dec.done()) {
    std::string joined;
    std::string_view in = data;
    if (!s.carry.empty()) {
      joined = std::move(s.carry);
      joined.append(data);
      in = joined;
    }
    s.carry.clear();
    while (!in.empty()) {
      auto st = s.dec.step(in);
      in.remove_prefix(st.consumed);
      if (!st.data.empty()) h.session.send_data(s.id, st.data);
      if (s.dec.failed()) co_return error_code(asio::error::invalid_argument);
      if (s.dec.done()) {
        h.session.end_data(s.id);
        break;
      }
      if (st.consumed == 0) break;
    }
    if (!s.dec.done()) s.carry.assign(in);
  }
  h.flush();
  // At most kH2UpBuffer bytes wait for the upstream's window: then the exchange waits.
  while (!s.closed && h.session.buffered(s.id) > kH2UpBuffer) co_await s.wait();
  if (s.closed && s.error != 0) co_return lost;
  co_return error_code{};
}

awaitable<error_code> Worker::h2_up_read(UpstreamConn& up) {
  H2UpStream& s = *up.h2;
  while (s.pending.empty()) {
    if (s.closed)
      co_return s.error == 0 ? error_code(asio::error::eof)
                             : error_code(asio::error::connection_reset);
    co_await s.wait();
  }
  append_bytes(up.in, s.pending);
  s.pending.clear();
  if (s.unacked > 0) {
    // The exchange has taken what it holds to its client: the upstream may send that much more.
    s.conn->session.consume(s.id, s.unacked);
    s.unacked = 0;
    s.conn->flush();
  }
  co_return error_code{};
}

// Idle upstream HTTP/2 connections close after upstream_idle_timeout; `all` (the worker
// drains): every connection closes once its streams are done.
void Worker::h2_up_sweep(bool all) {
  const auto idle_for = std::chrono::seconds(gw.cfg.gatehouse.upstream_idle_timeout);
  const auto now = Clock::now();
  for (auto it = h2_pool.begin(); it != h2_pool.end();) {
    auto& list = it->second;
    for (auto& h : list) {
      if (h->dead || !h->ready) continue;
      if (all) {
        h->closing = true;
        if (h->streams.empty()) h->end();
      } else if (h->streams.empty() && now - h->last_used > idle_for) {
        h->end();
      } else if (h->retiring && now - h->retiring_since > std::chrono::seconds(5)) {
        h->end();  // its last frames could not be sent (the upstream does not read)
      }
    }
    std::erase_if(list, [](const auto& h) { return h->dead; });
    if (list.empty())
      it = h2_pool.erase(it);
    else
      ++it;
  }
}

awaitable<bool> Worker::proxy_request(ClientConn& c, http::RequestHead& req,
                                      const apidef::ApiSpec& spec, const proxy::UpstreamPlan& plan,
                                      const std::string& path, Exchange& ex) {
  const auto& cfg = gw.cfg;
  H2Stream* const h2 = ex.h2;
  // An HTTP/2 stream has its own deadlines, scratch and body; HTTP/1.1 uses the connection's.
  Watch& w = h2 ? static_cast<Watch&>(*h2) : c;
  Buffer& cin = h2 ? h2->in : c.in;
  // --- the upstream request head ------------------------------------------------------------
  std::string& head = h2 ? h2->head : c.head;
  head.clear();
  head.reserve(req.raw.size() + 256);
  head.append(req.method);
  head += ' ';
  if (plan.proxy && !spec.target.tls()) {
    // Through a forward proxy, a plain-HTTP request names its target in absolute form.
    head += "http://"sv;
    head += spec.target.authority;
  }
  const bool strip = spec.strip_auth_data && (spec.auth == apidef::AuthKind::kAuthToken ||
                                              spec.auth == apidef::AuthKind::kCertificate);
  if (strip && spec.token.use_param && req.has_query) {
    std::string q = auth::strip_query_param(
        req.query, spec.token.param_name.empty() ? spec.token.header_name : spec.token.param_name);
    proxy::append_upstream_target(head, spec, path, q, !q.empty());
  } else {
    proxy::append_upstream_target(head, spec, path, req.query, req.has_query);
  }
  head += " HTTP/1.1\r\nHost: "sv;
  head.append(spec.preserve_host_header ? req.host : std::string_view(spec.target.authority));
  head += "\r\n"sv;
  if (plan.proxy && !spec.target.tls() && !plan.proxy->authorization.empty()) {
    head += "Proxy-Authorization: "sv;
    head += plan.proxy->authorization;
    head += "\r\n"sv;
  }
  ConnectionLists listed(req.headers);
  bool has_xff = false;
  for (const auto& h : req.headers) {
    if (listed.drop(h.name) || iequals(h.name, "host") || iequals(h.name, "expect")) continue;
    // A client's proxy credentials are for the gateway, never for what lies behind it.
    if (iequals(h.name, "proxy-authorization")) continue;
    if (iequals(h.name, "x-forwarded-for")) {
      has_xff = true;
      continue;
    }
    // Only the gateway speaks for the client's certificate (RFC 9440).
    if (iequals(h.name, "client-cert") || iequals(h.name, "client-cert-chain")) continue;
    if (strip) {
      // The credential never reaches the upstream, wherever it was sent.
      if (spec.token.use_header && iequals(h.name, spec.token.header_name)) continue;
      if (spec.token.use_cookie && iequals(h.name, "cookie")) {
        auto rest =
            auth::strip_cookie(h.value, spec.token.cookie_name.empty() ? spec.token.header_name
                                                                       : spec.token.cookie_name);
        if (!rest.empty()) append_field(head, "Cookie", rest);
        continue;
      }
    }
    append_field(head, h.name, h.value);
  }
  // The client's X-Forwarded-For values in order, then the client itself.
  head += "X-Forwarded-For: "sv;
  const size_t xff_start = head.size();
  if (has_xff) {
    for (const auto& h : req.headers) {
      if (!iequals(h.name, "x-forwarded-for")) continue;
      if (head.size() != xff_start) head += ", "sv;
      head.append(h.value);
    }
  }
  if (head.size() != xff_start) head += ", "sv;
  head += c.remote_ip;
  head += "\r\n"sv;
  if (cfg.gatehouse.forward_client_cert && spec.use_mutual_tls_auth) {
    // Verified against the API's allow list before the request got here.
    auto leaf = tls::rfc9440_cert(c.stream.ssl());
    if (!leaf.empty()) {
      append_field(head, "Client-Cert", leaf);
      auto chain = tls::rfc9440_chain(c.stream.ssl());
      if (!chain.empty()) append_field(head, "Client-Cert-Chain", chain);
    }
  }
  if (req.body == http::BodyKind::kLength) {
    head += "Content-Length: "sv;
    append_decimal(head, req.content_length);
    head += "\r\n"sv;
  } else if (req.body == http::BodyKind::kChunked) {
    head += "Transfer-Encoding: chunked\r\n"sv;
  }
  head += "\r\n"sv;

  if (req.expect_continue && req.body != http::BodyKind::kNone && !h2) {
    if (co_await c.stream.write("HTTP/1.1 100 Continue\r\n\r\n")) co_return false;
  }

  int64_t body_limit = cfg.http_server_options.max_request_body_size > 0
                           ? cfg.http_server_options.max_request_body_size
                           : cfg.gatehouse.max_body_bytes;
  std::string& key = h2 ? h2->pool_key : c.pool_key;
  key.clear();
  key += spec.target.scheme;
  key += "://"sv;
  key += spec.target.authority;
  key += plan.pool_tag;

  auto fail = [&](int status, const char* msg, std::string why) -> http::Response {
    ex.error = why;
    log::warn("upstream request failed",
              {{"api_id", spec.api_id}, {"upstream", spec.target.authority}, {"reason", why}});
    return http::error_response(status, msg);
  };

  // More of the client's request body, under the read deadline; false when the client is gone.
  auto read_client = [&]() -> awaitable<bool> {
    if (h2) co_return co_await h2_more(*h2, cfg.http_server_options.read_timeout);
    // A client that stalls its body longer than read_timeout is dropped (the watchdog closes
    // its connection, not the upstream's).
    w.set_deadline(std::chrono::seconds(cfg.http_server_options.read_timeout));
    w.reading_body = true;
    auto [rec, n] = co_await c.stream.read_some(cin.prepare(kReadChunk));
    w.reading_body = false;
    if (rec) co_return false;
    cin.commit(n);
    co_return true;
  };

  auto upstream_start = Clock::now();
  bool body_consumed = false;  // client body bytes already taken: no retry possible
  std::unique_ptr<UpstreamConn> up;
  http::ResponseHead& resp = h2 ? h2->resp : c.resp;
  // HTTP/2 towards the upstream: over TLS when proxy_enable_http2 (ALPN decides), always for
  // h2c:// targets (prior knowledge); a plain-HTTP forward proxy carries HTTP/1.1 only.
  const bool want_h2 = (spec.target.h2c() || (cfg.proxy_enable_http2 && spec.target.tls())) &&
                       !(plan.proxy && !spec.target.tls());
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool reused = false;
    w.upstream_timed_out = false;
    std::string err;
    up.reset();  // (a retry: the connection that failed)
    if (want_h2) up = co_await h2_upstream(w, spec, plan, key, reused, err);
    if (!up && err.empty()) {
      // A retry always takes a fresh connection.
      up = attempt == 0
               ? pool.take(key, !idempotent(req.method) || req.body != http::BodyKind::kNone)
               : nullptr;
      reused = up != nullptr;
    }
    if (!up) {
      if (err.empty()) up = co_await connect_upstream(w, spec, plan, err);
      if (!up) {
        w.active_upstream = nullptr;
        if (w.upstream_timed_out)
          co_return co_await respond(c, req, fail(504, kTimeoutError, err), ex, body_consumed);
        co_return co_await respond(c, req, fail(500, kProxyError, err), ex, body_consumed);
      }
      up->key = key;
    }
    if (up->h2) {
      for (const auto& h : req.headers)
        if (iequals(h.name, "te") && list_has_token(h.value, "trailers"))
          up->h2->te_trailers = true;
    }
    w.active_upstream = up.get();
    w.set_deadline(std::chrono::seconds(cfg.proxy_default_timeout));

    // --- send the request and its body ------------------------------------------------------
    // An HTTP/1.1 request goes out at the end of this event-loop turn, after the other
    // connections whose requests arrived with it. An upstream on one of this host's CPUs is
    // woken by the first send and usually runs at once; sends bunched together let it answer
    // several requests per wake-up instead of one (context switches per request on a keyed
    // keep-alive load with the origin on the gateway's CPU: 0.75 -> 0.3; docs/performance.md).
    // Alone on the loop, a request waits only for one non-blocking poll.
    if (!up->h2) co_await asio::post(ioc, asio::use_awaitable);
    error_code wec;
    const char* body_error = "";
    int client_error = 0;  // status to answer with when the client's body is at fault
    bool client_gone = false;
    if (req.body == http::BodyKind::kNone) {
      if (up->h2) {
        wec = co_await h2_up_send(*up, head);
      } else {
        std::string_view rest = head;
        auto w = tcp::socket::wait_write;
        if (!up->stream.try_write(rest, wec, w)) wec = co_await up->stream.write_rest(rest, w);
      }
    } else if (req.body == http::BodyKind::kLength) {
      uint64_t remaining = req.content_length;
      std::string out = head;
      while (!wec) {
        size_t take = static_cast<size_t>(std::min<uint64_t>(remaining, cin.size()));
        out.append(cin.data().substr(0, take));
        cin.consume(take);
        remaining -= take;
        if (take > 0) body_consumed = true;
        if (!out.empty()) {
          if (up->h2)
            wec = co_await h2_up_send(*up, out);
          else
            wec = co_await up->stream.write(out);
          out.clear();
        }
        if (remaining == 0 || wec) break;
        if ((client_gone = !co_await read_client())) break;
      }
    } else {
      http::ChunkedDecoder dec;
      std::string out = head;
      uint64_t total = 0;
      while (!wec) {
        auto s = dec.step(cin.data());
        cin.consume(s.consumed);
        if (s.consumed > 0) body_consumed = true;
        if (!s.data.empty()) {
          total += s.data.size();
          if (body_limit > 0 && total > static_cast<uint64_t>(body_limit)) {
            client_error = 413;
            break;
          }
          http::append_chunk_header(out, s.data.size());
          out.append(s.data);
          out += "\r\n"sv;
        }
        if (dec.failed()) {
          client_error = 400;
          body_error = dec.error();
          break;
        }
        if (dec.done()) {
          // The client's trailer fields go on (HTTP/1.1 upstreams; an HTTP/2 stream ends
          // without them), less those a trailer section may not carry.
          append_last_chunk(out, dec.trailers());
          if (up->h2)
            wec = co_await h2_up_send(*up, out);
          else
            wec = co_await up->stream.write(out);
          break;
        }
        if (s.consumed == 0) {
          if (!out.empty()) {
            if (up->h2)
              wec = co_await h2_up_send(*up, out);
            else
              wec = co_await up->stream.write(out);
            out.clear();
            if (wec) break;
          }
          if ((client_gone = !co_await read_client())) break;
        } else if (out.size() > kWriteFlush) {
          if (up->h2)
            wec = co_await h2_up_send(*up, out);
          else
            wec = co_await up->stream.write(out);
          out.clear();
        }
      }
    }
    if (client_gone) {
      w.active_upstream = nullptr;
      up->close();
      co_return false;
    }
    if (client_error) {
      w.active_upstream = nullptr;
      up->close();
      ex.error = client_error == 413 ? "request body too large" : body_error;
      auto r = http::error_response(
          client_error, client_error == 413 ? "Request is too large" : "Malformed chunked body");
      r.close = true;
      co_return co_await respond(c, req, std::move(r), ex, false);
    }
    w.set_deadline(std::chrono::seconds(cfg.proxy_default_timeout));

    // --- read the response head -------------------------------------------------------------
    http::ParseResult pr;
    bool got_bytes = false;
    error_code rec;
    if (!wec) {
      while (true) {
        if (up->in.size() > 0) {
          pr = http::parse_response_head(up->in.data(), gw.limits, req.method, resp);
          if (pr.status == http::ParseStatus::kDone && resp.status >= 100 && resp.status < 200) {
            if (resp.status == 101) {
              pr.status = http::ParseStatus::kError;
              pr.reason = "upstream switched protocols";
              break;
            }
            up->in.consume(pr.consumed);  // interim response: wait for the final one
            continue;
          }
          if (pr.status != http::ParseStatus::kIncomplete) break;
        }
        if (up->h2) {
          rec = co_await h2_up_read(*up);
          if (rec) break;
        } else {
          auto [e, n] = co_await up->stream.read_into(up->in);
          if (e) {
            rec = e;
            break;
          }
        }
        got_bytes = true;
      }
    }
    if (wec || rec) {
      bool timed_out = w.upstream_timed_out;
      // An HTTP/2 stream the upstream refused (REFUSED_STREAM, or beyond a GOAWAY) was never
      // processed: any method may go again.
      const bool refused = up->h2 && up->h2->error == kH2RefusedStream;
      w.active_upstream = nullptr;
      up->close();
      if ((refused || (reused && idempotent(req.method))) && !got_bytes && !body_consumed &&
          !timed_out && attempt == 0)
        continue;  // a pooled connection the upstream had closed: try a fresh one
      if (timed_out)
        co_return co_await respond(c, req, fail(504, kTimeoutError, "upstream response timed out"),
                                   ex, true);
      co_return co_await respond(c, req, fail(500, kProxyError, (wec ? wec : rec).message()), ex,
                                 true);
    }
    if (pr.status == http::ParseStatus::kError) {
      w.active_upstream = nullptr;
      up->close();
      co_return co_await respond(c, req, fail(500, kProxyError, pr.reason), ex, true);
    }
    if (plan.proxy && !spec.target.tls() && resp.status == 407) {
      // The forward proxy's own refusal is the gateway's problem, not the client's to answer.
      w.active_upstream = nullptr;
      up->close();
      co_return co_await respond(
          c, req,
          fail(500, kProxyError, "forward proxy " + plan.proxy->authority + " answered 407"), ex,
          true);
    }
    up->in.consume(pr.consumed);
    break;
  }
  ex.upstream_us = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - upstream_start).count());

  // --- the response to the client -----------------------------------------------------------
  bool client_chunked = false;
  bool close_after = !req.keep_alive || draining;
  std::string& out = h2 ? h2->out : c.out;
  out.clear();
  if (h2) {
    close_after = false;
    h2_response_head(*h2, req, resp, ex);
    ex.status = resp.status;
  } else {
    out.reserve(resp.raw.size() + 128);
    out += "HTTP/1.1 "sv;
    append_decimal(out, static_cast<unsigned>(resp.status));
    out += ' ';
    if (resp.reason.empty())
      out += http::reason_phrase(resp.status);
    else
      out.append(resp.reason);
    out += "\r\n"sv;
    if (ex.limit_headers.present) append_limit_headers(out, ex.limit_headers);
    for_each_forwarded_field(resp, ex,
                             [&](const http::Header& h) { append_field(out, h.name, h.value); });
    switch (resp.body) {
      case http::BodyKind::kNone:
        if (resp.status != 204 && resp.status != 304 && req.method == "HEAD" &&
            resp.content_length) {
          out += "Content-Length: "sv;
          append_decimal(out, resp.content_length);
          out += "\r\n"sv;
        } else if (resp.status != 204 && resp.status != 304 && req.method != "HEAD") {
          out += "Content-Length: 0\r\n"sv;
        }
        break;
      case http::BodyKind::kLength:
        out += "Content-Length: "sv;
        append_decimal(out, resp.content_length);
        out += "\r\n"sv;
        break;
      case http::BodyKind::kChunked:
      case http::BodyKind::kUntilClose:
        if (req.version_minor == 1) {
          client_chunked = true;
          out += "Transfer-Encoding: chunked\r\n"sv;
        } else {
          close_after = true;
        }
        break;
    }
    if (close_after)
      out += "Connection: close\r\n"sv;
    else if (req.version_minor == 0)
      out += "Connection: keep-alive\r\n"sv;
    out += "\r\n"sv;
    ex.status = resp.status;
  }

  bool upstream_ok = true;  // the upstream body was read completely
  std::vector<std::pair<std::string, std::string>> h2_trailers;  // for an HTTP/2 client
  bool client_ok = true;                                         // the client got everything
  // Writes `out` as far as the client takes it now (no coroutine frame); false when the rest
  // must wait for the socket: flush_rest then finishes it.
  std::string_view unsent;
  auto wait_for = tcp::socket::wait_write;
  const size_t h2_buffer = static_cast<size_t>(cfg.gatehouse.http2.stream_buffer);
  auto flush_now = [&](bool& ok) {
    ok = true;
    if (h2) {
      // Into the stream's send buffer; above its size the exchange waits for the client.
      if (h2->gone) {
        ok = false;
        out.clear();
        return true;
      }
      if (!out.empty()) {
        ex.bytes_out += out.size();
        h2->conn.session.send_data(h2->id, out);
        out.clear();
        h2->conn.flush();
      }
      return h2->conn.session.buffered(h2->id) <= h2_buffer;
    }
    if (out.empty()) return true;
    ex.bytes_out += out.size();
    unsent = out;
    error_code e;
    if (!c.stream.try_write(unsent, e, wait_for)) return false;
    out.clear();
    ok = !e;
    return true;
  };
  auto flush_rest = [&]() -> awaitable<bool> {
    if (h2) co_return co_await h2_drain(*h2, h2_buffer, cfg.http_server_options.write_timeout);
    auto e = co_await c.stream.write_rest(unsent, wait_for);
    out.clear();
    co_return !e;
  };
  auto read_up = [&]() -> awaitable<bool> {
    w.set_deadline(std::chrono::seconds(cfg.proxy_default_timeout));
    if (up->h2) co_return !co_await h2_up_read(*up);
    // This body ends with the upstream's close, which may be there already, behind the last
    // bytes a short read took: the socket is read at once (read_into would wait for news).
    auto [e, n] = resp.body == http::BodyKind::kUntilClose ? co_await up->stream.read_now(up->in)
                                                           : co_await up->stream.read_into(up->in);
    co_return !e;
  };

  if (resp.body == http::BodyKind::kLength) {
    uint64_t remaining = resp.content_length;
    while (true) {
      size_t take = static_cast<size_t>(std::min<uint64_t>(remaining, up->in.size()));
      out.append(up->in.data().substr(0, take));
      up->in.consume(take);
      remaining -= take;
      if (!flush_now(client_ok)) client_ok = co_await flush_rest();
      if (!client_ok) break;
      if (remaining == 0) break;
      if (!(upstream_ok = co_await read_up())) break;
    }
  } else if (resp.body == http::BodyKind::kChunked) {
    http::ChunkedDecoder dec;
    while (true) {
      auto s = dec.step(up->in.data());
      up->in.consume(s.consumed);
      if (!s.data.empty()) {
        if (client_chunked) http::append_chunk_header(out, s.data.size());
        out.append(s.data);
        if (client_chunked) out += "\r\n"sv;
      }
      if (dec.failed()) {
        upstream_ok = false;
        break;
      }
      if (dec.done()) {
        if (client_chunked) {
          append_last_chunk(out, dec.trailers());
        } else if (h2) {
          for_each_forwarded_trailer(dec.trailers(), [&](std::string_view n, std::string_view v) {
            h2_trailers.emplace_back(n, v);
          });
        }
        if (!flush_now(client_ok)) client_ok = co_await flush_rest();
        break;
      }
      if (s.consumed == 0) {
        if (!flush_now(client_ok)) client_ok = co_await flush_rest();
        if (!client_ok) break;
        if (!(upstream_ok = co_await read_up())) break;
      } else if (out.size() > kWriteFlush) {
        if (!flush_now(client_ok)) client_ok = co_await flush_rest();
        if (!client_ok) break;
      }
    }
  } else if (resp.body == http::BodyKind::kUntilClose) {
    while (true) {
      auto d = up->in.data();
      if (!d.empty()) {
        if (client_chunked) http::append_chunk_header(out, d.size());
        out.append(d);
        if (client_chunked) out += "\r\n"sv;
        up->in.consume(d.size());
      }
      if (!flush_now(client_ok)) client_ok = co_await flush_rest();
      if (!client_ok) break;
      if (!co_await read_up()) {
        // The connection ended the body; a timeout means it was cut short.
        upstream_ok = !w.upstream_timed_out;
        if (client_chunked && upstream_ok) out += "0\r\n\r\n"sv;
        if (!flush_now(client_ok)) client_ok = co_await flush_rest();
        break;
      }
    }
  } else {
    if (!flush_now(client_ok)) client_ok = co_await flush_rest();
  }

  w.active_upstream = nullptr;
  bool reusable = upstream_ok && resp.keep_alive && up->in.size() == 0 &&
                  resp.body != http::BodyKind::kUntilClose && !draining;
  if (up->h2) {
    up->close();  // a stream left unfinished is reset; the connection stays
  } else if (reusable) {
    pool.put(std::move(up));
  } else {
    up->close();
  }
  if (!upstream_ok) {
    ex.error = w.upstream_timed_out ? "upstream body timed out" : "upstream body truncated";
    log::warn("upstream response broken", {{"api_id", spec.api_id}, {"reason", ex.error}});
  }
  if (h2 && upstream_ok && client_ok && !h2->gone && !h2->ended) {
    // (A response cut short is reset by h2_stream instead: it must not look complete.)
    h2->conn.session.end_data(h2->id, std::move(h2_trailers));
    h2->ended = true;
    h2->conn.flush();
  }
  log_access(c, req, ex);
  // A response whose body did not arrive whole must not look complete: close the connection.
  co_return client_ok&& upstream_ok && !close_after;
}

}  // namespace

int run(const config::GatewayConfig& cfg) {
  std::signal(SIGPIPE, SIG_IGN);
  // Block the signals we handle in every thread but the one running the signal_set's context.
  Gateway g(cfg);
  return g.run();
}

}  // namespace gh::net
