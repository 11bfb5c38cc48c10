// mtls_load: an HTTP/1.1-over-TLS load generator that presents a client certificate (wrk, ab and
// h2load cannot). One thread, non-blocking sockets, epoll; the same client for every proxy.
//
//   mtls_load --port P [--host 127.0.0.1] [--path /] [--conns 50] [--duration 10]
//             [--cert FILE --key FILE] [--sni NAME] [--handshake]
//
// Keep-alive mode (default): --conns connections, each sending its next GET as soon as the
// previous response is complete. Handshake mode (--handshake): every request on a new connection
// with a full handshake (no session resumption: no tickets, no session cache) and
// "Connection: close". Prints one line:
//   requests N seconds S rps R p50_us X p99_us Y errors E non2xx M
// Latency is from the request's first byte written (keep-alive) or from connect() (handshake)
// to the response's last byte.
//
// Build: g++ -O2 -std=c++17 -o mtls_load bench/mtls_load.cpp -lssl -lcrypto
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string path = "/";
  int conns = 50;
  double duration = 10;
  std::string cert, key, sni = "bench.local";
  bool handshake = false;
};

enum class State { kConnecting, kHandshaking, kWriting, kReading };

struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;
  State state = State::kConnecting;
  std::string out;
  size_t written = 0;
  std::string in;
  Clock::time_point started;
};

struct Stats {
  long requests = 0, errors = 0, non2xx = 0;
  std::vector<uint32_t> latency_us;
};

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "mtls_load: %s\n", what);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) die(("missing value for " + a).c_str());
      return argv[++i];
    };
    if (a == "--host")
      o.host = val();
    else if (a == "--port")
      o.port = std::atoi(val().c_str());
    else if (a == "--path")
      o.path = val();
    else if (a == "--conns")
      o.conns = std::atoi(val().c_str());
    else if (a == "--duration")
      o.duration = std::atof(val().c_str());
    else if (a == "--cert")
      o.cert = val();
    else if (a == "--key")
      o.key = val();
    else if (a == "--sni")
      o.sni = val();
    else if (a == "--handshake")
      o.handshake = true;
    else
      die(("unknown option " + a).c_str());
  }
  if (o.port <= 0 || o.conns <= 0 || o.duration <= 0)
    die("needs --port, --conns > 0, --duration > 0");
  return o;
}

// Whether `in` holds one complete response; sets its status.
bool complete(const std::string& in, int* status) {
  size_t end = in.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  if (in.size() < 12) return false;
  *status = std::atoi(in.c_str() + 9);
  std::string head = in.substr(0, end);
  for (auto& ch : head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  size_t body = end + 4;
  size_t cl = head.find("\r\ncontent-length:");
  if (cl != std::string::npos) {
    size_t n = std::strtoul(head.c_str() + cl + 17, nullptr, 10);
    return in.size() >= body + n;
  }
  if (head.find("\r\ntransfer-encoding: chunked") != std::string::npos)
    return in.find("\r\n0\r\n\r\n", body - 2) != std::string::npos;
  return true;  // no body
}

class Load {
 public:
  explicit Load(const Options& o) : o_(o) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (!ctx_) die("SSL_CTX_new");
    SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    // Every handshake is a full one.
    SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx_, SSL_OP_NO_TICKET);
    if (!o.cert.empty()) {
      if (SSL_CTX_use_certificate_chain_file(ctx_, o.cert.c_str()) != 1 ||
          SSL_CTX_use_PrivateKey_file(ctx_, o.key.c_str(), SSL_FILETYPE_PEM) != 1)
        die("cannot load the client certificate or key");
    }
    request_ = "GET " + o.path + " HTTP/1.1\r\nHost: " + o.sni + "\r\nUser-Agent: mtls_load\r\n" +
               (o.handshake ? "Connection: close\r\n" : "") + "\r\n";
    std::memset(&addr_, 0, sizeof addr_);
    addr_.sin_family = AF_INET;
    addr_.sin_port = htons(static_cast<uint16_t>(o.port));
    if (inet_pton(AF_INET, o.host.c_str(), &addr_.sin_addr) != 1) die("bad --host");
    ep_ = epoll_create1(0);
    conns_.resize(static_cast<size_t>(o.conns));
  }

  void run() {
    auto t0 = Clock::now();
    deadline_ = t0 + std::chrono::microseconds(static_cast<long>(o_.duration * 1e6));
    for (auto& c : conns_) open(c);
    std::vector<epoll_event> evs(256);
    while (Clock::now() < deadline_) {
      int n = epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), 50);
      for (int i = 0; i < n; ++i) step(*static_cast<Conn*>(evs[static_cast<size_t>(i)].data.ptr));
    }
    elapsed_ = std::chrono::duration<double>(Clock::now() - t0).count();
  }

  void report() {
    auto& l = st_.latency_us;
    std::sort(l.begin(), l.end());
    auto pct = [&](double p) -> unsigned {
      if (l.empty()) return 0;
      size_t i = static_cast<size_t>(p * static_cast<double>(l.size() - 1));
      return l[i];
    };
    std::printf("requests %ld seconds %.3f rps %.1f p50_us %u p99_us %u errors %ld non2xx %ld\n",
                st_.requests, elapsed_, static_cast<double>(st_.requests) / elapsed_, pct(0.5),
                pct(0.99), st_.errors, st_.non2xx);
  }

 private:
  void watch(Conn& c, uint32_t events, bool add) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = &c;
    epoll_ctl(ep_, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c.fd, &ev);
  }

  void open(Conn& c) {
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) die("socket");
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c.started = Clock::now();
    c.in.clear();
    int r = connect(c.fd, reinterpret_cast<sockaddr*>(&addr_), sizeof addr_);
    if (r != 0 && errno != EINPROGRESS) {
      fail(c);
      return;
    }
    c.state = State::kConnecting;
    watch(c, EPOLLOUT, true);
  }

  void close_conn(Conn& c) {
    if (c.ssl) SSL_free(c.ssl);
    c.ssl = nullptr;
    if (c.fd >= 0) ::close(c.fd);
    c.fd = -1;
  }

  void fail(Conn& c) {
    ++st_.errors;
    close_conn(c);
    if (Clock::now() < deadline_) open(c);
  }

  // Waits for what OpenSSL asked for; false when the connection failed.
  bool wait_for(Conn& c, int ret) {
    int e = SSL_get_error(c.ssl, ret);
    if (e == SSL_ERROR_WANT_READ) {
      watch(c, EPOLLIN, false);
      return true;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
      watch(c, EPOLLOUT, false);
      return true;
    }
    ERR_clear_error();
    return false;
  }

  void begin_request(Conn& c) {
    c.state = State::kWriting;
    c.out = request_;
    c.written = 0;
    c.in.clear();
    if (!o_.handshake) c.started = Clock::now();
  }

  void step(Conn& c) {
    for (;;) {
      switch (c.state) {
        case State::kConnecting: {
          int err = 0;
          socklen_t len = sizeof err;
          getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
          if (err != 0) return fail(c);
          c.ssl = SSL_new(ctx_);
          SSL_set_fd(c.ssl, c.fd);
          SSL_set_tlsext_host_name(c.ssl, o_.sni.c_str());
          c.state = State::kHandshaking;
          break;
        }
        case State::kHandshaking: {
          int r = SSL_connect(c.ssl);
          if (r != 1) {
            if (!wait_for(c, r)) return fail(c);
            return;
          }
          begin_request(c);
          break;
        }
        case State::kWriting: {
          int r = SSL_write(c.ssl, c.out.data() + c.written,
                            static_cast<int>(c.out.size() - c.written));
          if (r <= 0) {
            if (!wait_for(c, r)) return fail(c);
            return;
          }
          c.written += static_cast<size_t>(r);
          if (c.written == c.out.size()) {
            c.state = State::kReading;
            watch(c, EPOLLIN, false);
          }
          break;
        }
        case State::kReading: {
          char buf[16384];
          int r = SSL_read(c.ssl, buf, sizeof buf);
          if (r <= 0) {
            if (!wait_for(c, r)) return fail(c);
            return;
          }
          c.in.append(buf, static_cast<size_t>(r));
          int status = 0;
          if (!complete(c.in, &status)) break;
          auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - c.started)
                        .count();
          if (Clock::now() >= deadline_) return;  // finished after the end: not counted
          ++st_.requests;
          if (status < 200 || status >= 300) ++st_.non2xx;
          st_.latency_us.push_back(static_cast<uint32_t>(us));
          if (o_.handshake) {
            close_conn(c);
            open(c);
            return;
          }
          begin_request(c);
          break;
        }
      }
    }
  }

  Options o_;
  SSL_CTX* ctx_ = nullptr;
  std::string request_;
  sockaddr_in addr_{};
  int ep_ = -1;
  std::vector<Conn> conns_;
  Stats st_;
  Clock::time_point deadline_;
  double elapsed_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  Load load(o);
  load.run();
  load.report();
  return 0;
}
