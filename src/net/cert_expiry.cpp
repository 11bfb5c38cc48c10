#include "net/cert_expiry.h"

#include <algorithm>
#include <boost/asio.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "admin/certs_api.h"
#include "core/util.h"
#include "net/server.h"
#include "store/keyspace.h"
#include "store/open_store.h"
#include "tls/cert_store.h"

namespace gh::net {

namespace asio = boost::asio;

namespace {

void consider(const tls::PemBundle& b, const std::string& source, int64_t limit,
              std::vector<ExpiringCert>& out) {
  if (b.certs.empty()) return;
  auto m = tls::describe(b.certs.front().get(), "", false);
  if (m.not_after < limit) out.push_back(ExpiringCert{source, m.subject, m.not_after});
}

void consider_file(const std::string& path, const std::string& field, int64_t limit,
                   std::vector<ExpiringCert>& out) {
  auto text = read_file(path);
  if (!text) return;
  auto b = tls::parse_pem(*text);
  if (b) consider(*b, "file:" + path + " (" + field + ")", limit, out);
}

}  // namespace

std::vector<ExpiringCert> find_expiring(const config::GatewayConfig& cfg, store::Store& store,
                                        int64_t within_seconds) {
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  int64_t limit = now + within_seconds;
  std::vector<ExpiringCert> out;
  for (const auto& c : cfg.http_server_options.certificates)
    consider_file(c.cert_file, "http_server_options.certificates", limit, out);
  for (const auto& f : cfg.http_server_options.ssl_certificates)
    consider_file(f, "http_server_options.ssl_certificates", limit, out);
  // The store, driven on this thread for the duration of the scan.
  asio::io_context ioc;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        auto names = co_await store.scan("cert-raw-");
        for (const auto& n : names) {
          auto v = co_await store.get(n);
          if (!v) continue;
          auto b = tls::unseal(*v, admin::CertsApi::sealing_secret(cfg));
          if (b) consider(*b, "store:" + n.substr(9), limit, out);
        }
        store.close_thread(/*keep_watch=*/true);
      },
      asio::detached);
  ioc.run();
  std::sort(out.begin(), out.end(),
            [](const ExpiringCert& a, const ExpiringCert& b) { return a.not_after < b.not_after; });
  return out;
}

int print_expiring(const config::GatewayConfig& cfg, int days) {
  auto store = store::open_store(cfg);
  auto list = find_expiring(cfg, *store, static_cast<int64_t>(days) * 86400);
  for (const auto& e : list) {
    std::time_t t = static_cast<std::time_t>(e.not_after);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    std::printf("%s\t%s\t%s\n", when, e.source.c_str(), e.subject.c_str());
  }
  std::fprintf(stderr, "%zu certificate(s) expire within %d days\n", list.size(), days);
  return 0;
}

}  // namespace gh::net
