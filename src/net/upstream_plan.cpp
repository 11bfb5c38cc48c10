#include "net/upstream_plan.h"

#include <openssl/x509.h>

#include <algorithm>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include "auth/token.h"
#include "core/hash.h"
#include "core/util.h"
#include "net/cert_refs.h"

namespace gh::net {

std::string pick_for_host(const std::vector<const std::map<std::string, std::string>*>& maps,
                          const std::string& host, uint16_t port, bool with_ports) {
  std::string chosen;
  std::string port_s = port ? ":" + std::to_string(port) : std::string();
  auto dot = host.find('.');
  std::string parent = dot == std::string::npos ? std::string() : "*" + host.substr(dot);
  for (const auto* m : maps) {
    if (!m || m->empty()) continue;
    auto take = [&](const std::string& k) {
      if (k.empty()) return;
      if (auto it = m->find(k); it != m->end()) chosen = it->second;
    };
    take("*");
    take(parent);
    if (with_ports && !parent.empty() && port) take(parent + port_s);
    take(host);
    if (with_ports && port) take(host + port_s);
  }
  return chosen;
}

Result<proxy::ForwardProxy> parse_proxy_url(const std::string& url) {
  auto r = boost::urls::parse_uri(url);
  if (!r) return Error{"proxy_url \"" + url + "\" is not a URL"};
  auto u = *r;
  if (to_lower(std::string(u.scheme())) != "http")
    return Error{"proxy_url \"" + url + "\": only http:// forward proxies are served"};
  proxy::ForwardProxy p;
  p.host = std::string(u.host_address());
  if (p.host.empty()) return Error{"proxy_url \"" + url + "\" has no host"};
  p.port = 80;
  if (u.has_port()) {
    auto n = std::strtoul(std::string(u.port()).c_str(), nullptr, 10);
    if (n == 0 || n > 65535) return Error{"proxy_url \"" + url + "\" has a bad port"};
    p.port = static_cast<uint16_t>(n);
  }
  p.authority = std::string(u.encoded_host_and_port());
  if (u.has_userinfo()) {
    std::string user = percent_decode(std::string(u.encoded_user()), false);
    std::string pass = percent_decode(std::string(u.encoded_password()), false);
    p.authorization = "Basic " + auth::base64_encode(user + ":" + pass);
  }
  return p;
}

namespace {

// The SPKI SHA-256 of every key a comma-separated list of references names.
tls::PinSet resolve_pins(const std::string& list, const config::GatewayConfig& cfg,
                         store::Store& store, const std::string& what,
                         std::vector<std::string>* problems) {
  std::vector<std::string> refs;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    std::string ref(trim(std::string_view(list).substr(start, comma - start)));
    if (!ref.empty()) refs.push_back(std::move(ref));
    start = comma + 1;
  }
  tls::PinSet pins;
  for (auto& b : resolve_cert_refs(refs, cfg, store, what, problems)) {
    if (b.public_key) pins.insert(tls::spki_der_sha256(b.public_key.get()));
    for (const auto& c : b.certs) {
      if (EVP_PKEY* k = X509_get0_pubkey(c.get())) pins.insert(tls::spki_der_sha256(k));
    }
  }
  return pins;
}

}  // namespace

proxy::UpstreamPlan plan_upstream(const apidef::ApiSpec& spec, const config::GatewayConfig& cfg,
                                  store::Store& store, tls::ClientTls& client_tls,
                                  std::vector<std::string>* problems) {
  proxy::UpstreamPlan plan;
  const auto& t = spec.target;
  std::string what = "API " + spec.api_id;
  if (!spec.transport.proxy_url.empty()) {
    auto p = parse_proxy_url(spec.transport.proxy_url);
    if (p) {
      plan.proxy = std::move(p.value());
    } else {
      problems->push_back(what + ": " + p.error() + " (requests go to the upstream directly)");
    }
  }
  std::string pin_tag;
  if (t.tls()) {
    // Upstream mutual TLS: the gateway's map, then the API's (Tyk's precedence by host).
    std::string cert_ref = pick_for_host(
        {&cfg.security.certificates_upstream, &spec.upstream_certificates}, t.host, t.port, true);
    std::optional<tls::PemBundle> client_cert;
    if (!cert_ref.empty()) {
      auto got =
          resolve_cert_refs({cert_ref}, cfg, store, what + " upstream certificate", problems);
      if (!got.empty() && !got[0].certs.empty() && got[0].private_keys.size() == 1) {
        client_cert = std::move(got[0]);
        plan.client_cert_id = cert_ref.size() > 80 ? cert_ref.substr(0, 80) : cert_ref;
      } else if (!got.empty()) {
        problems->push_back(what + ": upstream certificate \"" + cert_ref.substr(0, 80) +
                            "\" has no private key (no certificate is sent)");
      }
    }
    std::string fp;
    if (client_cert) fp = tls::cert_der_sha256(client_cert->certs[0].get());
    plan.tls_ctx =
        client_tls.context_for(spec.transport, client_cert ? &*client_cert : nullptr, fp);
    // Pinning: the gateway's map, then the API's.
    std::string pin_list = pick_for_host(
        {&cfg.security.pinned_public_keys, &spec.pinned_public_keys}, t.host, 0, false);
    if (!pin_list.empty()) {
      auto pins = resolve_pins(pin_list, cfg, store, what + " pinned_public_keys", problems);
      if (pins.empty()) {
        // Pinning asked for but nothing usable: no connection can be trusted.
        problems->push_back(what + ": no usable pinned public key for " + t.host +
                            " (every connection to it is refused)");
        pins.insert("none");
      }
      std::vector<std::string> sorted(pins.begin(), pins.end());
      std::sort(sorted.begin(), sorted.end());
      for (const auto& p : sorted) pin_tag += p.substr(0, 16);
      plan.pins = std::make_shared<const tls::PinSet>(std::move(pins));
    }
    plan.force_common_name =
        spec.transport.ssl_force_common_name_check || cfg.ssl_force_common_name_check;
  }
  // Everything that shapes a connection, in one string (the TLS context pointer names the TLS
  // policy and the client certificate: contexts are never freed).
  std::string& tag = plan.pool_tag;
  tag = "|";
  tag += std::to_string(reinterpret_cast<uintptr_t>(plan.tls_ctx));
  tag += "|pins=" + (pin_tag.empty() ? std::string() : hash_key(pin_tag, KeyHash::kSha256));
  tag += plan.force_common_name ? "|cn" : "|";
  if (plan.proxy) {
    tag += "|via=" + plan.proxy->authority;
    if (!plan.proxy->authorization.empty())
      tag += "|" + hash_key(plan.proxy->authorization, KeyHash::kSha256).substr(0, 16);
  }
  return plan;
}

}  // namespace gh::net
