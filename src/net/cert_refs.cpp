#include "net/cert_refs.h"

#include <boost/asio.hpp>

#include "admin/certs_api.h"
#include "core/util.h"
#include "store/keyspace.h"

namespace gh::net {

namespace asio = boost::asio;

std::vector<tls::PemBundle> resolve_cert_refs(const std::vector<std::string>& refs,
                                              const config::GatewayConfig& cfg, store::Store& store,
                                              const std::string& what,
                                              std::vector<std::string>* problems) {
  std::vector<tls::PemBundle> out;
  if (refs.empty()) return out;
  // Store ids first (as Tyk does), read on this thread with an event loop of its own.
  std::vector<std::optional<std::string>> stored(refs.size());
  asio::io_context ioc;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        for (size_t i = 0; i < refs.size(); ++i) {
          if (refs[i].find("-----BEGIN ") != std::string::npos) continue;
          stored[i] = co_await store.get(store::cert_key(refs[i]));
        }
        store.close_thread(/*keep_watch=*/true);
      },
      asio::detached);
  ioc.run();
  for (size_t i = 0; i < refs.size(); ++i) {
    const auto& ref = refs[i];
    Result<tls::PemBundle> b = Error{"not found"};
    if (stored[i]) {
      b = tls::unseal(*stored[i], admin::CertsApi::sealing_secret(cfg));
    } else if (ref.find("-----BEGIN ") != std::string::npos) {
      b = tls::parse_pem(ref);
    } else if (auto text = read_file(ref)) {
      b = tls::parse_pem(*text);
    }
    if (!b) {
      if (problems)
        problems->push_back(what + ": certificate \"" + ref.substr(0, 80) +
                            "\" is neither a stored certificate nor a readable PEM file (" +
                            b.error() + ")");
      continue;
    }
    out.push_back(std::move(b.value()));
  }
  return out;
}

}  // namespace gh::net
