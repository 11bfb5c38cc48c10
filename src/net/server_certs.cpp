#include "net/server_certs.h"

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/util.h"
#include "net/cert_refs.h"

namespace gh::net {

namespace {

bool looks_like_store_id(const std::string& ref) {
  return ref.find('/') == std::string::npos && ref.find("-----BEGIN ") == std::string::npos &&
         !read_file(ref);
}

}  // namespace

std::vector<tls::ServerCert> server_certificates(const config::GatewayConfig& cfg,
                                                 store::Store* store, const proxy::Snapshot* snap,
                                                 std::vector<std::string>* config_problems,
                                                 std::vector<std::string>* api_problems) {
  std::vector<tls::ServerCert> out;
  const auto& h = cfg.http_server_options;
  for (size_t i = 0; i < h.certificates.size(); ++i) {
    const auto& p = h.certificates[i];
    std::string field = "http_server_options.certificates[" + std::to_string(i) + "]";
    std::string named = "field \"" + field + "\"";
    auto cert = read_file(p.cert_file);
    auto key = read_file(p.key_file);
    if (!cert || !key) {
      config_problems->push_back(named + ": cannot read " + (!cert ? p.cert_file : p.key_file));
      continue;
    }
    auto b = tls::parse_pem(*cert + "\n" + *key);
    if (!b) {
      config_problems->push_back(named + ": " + p.cert_file + ": " + b.error());
      continue;
    }
    out.push_back(tls::ServerCert{p.domain_name, std::move(b.value()), field});
  }
  for (size_t i = 0; i < h.ssl_certificates.size(); ++i) {
    const auto& ref = h.ssl_certificates[i];
    std::string field = "http_server_options.ssl_certificates[" + std::to_string(i) + "]";
    std::string named = "field \"" + field + "\"";
    if (!store && looks_like_store_id(ref)) continue;  // validation without the store
    std::vector<std::string> problems;
    store::Store* s = store;
    std::vector<tls::PemBundle> got;
    if (s) {
      got = resolve_cert_refs({ref}, cfg, *s, named, &problems);
    } else if (auto text = read_file(ref)) {
      auto b = tls::parse_pem(*text);
      if (b) {
        got.push_back(std::move(b.value()));
      } else {
        problems.push_back(named + ": " + ref + ": " + b.error());
      }
    } else {
      problems.push_back(named + ": cannot read " + ref);
    }
    for (auto& p : problems) config_problems->push_back(std::move(p));
    for (auto& b : got) out.push_back(tls::ServerCert{"", std::move(b), field});
  }
  if (!snap || !cfg.enable_custom_domains || !store) return out;
  for (const auto& api : snap->apis) {
    if (!api->active || api->domain.empty() || api->certificates.empty()) continue;
    std::string field = "API " + api->api_id + " certificates";
    std::vector<std::string> problems;
    auto got = resolve_cert_refs(api->certificates, cfg, *store, field, &problems);
    for (auto& b : got) {
      if (b.certs.empty() || b.private_keys.size() != 1 ||
          X509_check_private_key(b.certs[0].get(), b.private_keys[0].get()) != 1) {
        problems.push_back(field + ": a server certificate needs its own private key");
        continue;
      }
      // Chosen for the API's domain; say so when the certificate does not name it (clients that
      // check names will refuse it).
      const std::string& d = api->domain;
      if (X509_check_host(b.certs[0].get(), d.data(), d.size(), 0, nullptr) != 1)
        problems.push_back(field + ": the certificate does not name " + d +
                           " (served for it anyway)");
      out.push_back(tls::ServerCert{d, std::move(b), field});
    }
    for (auto& p : problems) api_problems->push_back(std::move(p));
  }
  return out;
}

}  // namespace gh::net
