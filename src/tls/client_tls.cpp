#include "tls/client_tls.h"

#include <openssl/x509v3.h>

#include "config/ciphers.h"
#include "core/log.h"
#include "tls/versions.h"

namespace gh::tls {

ClientTls::ClientTls(const config::GatewayConfig& cfg) : cfg_(cfg) {}

SSL_CTX* ClientTls::context_for(const apidef::Transport& t) {
  bool skip = cfg_.proxy_ssl_insecure_skip_verify || t.ssl_insecure_skip_verify;
  int minv = t.ssl_min_version ? t.ssl_min_version : cfg_.proxy_ssl_min_version;
  int maxv = t.ssl_max_version ? t.ssl_max_version : cfg_.proxy_ssl_max_version;
  const auto& ciphers = t.ssl_ciphers.empty() ? cfg_.proxy_ssl_ciphers : t.ssl_ciphers;
  std::string key =
      std::to_string(skip) + "|" + std::to_string(minv) + "|" + std::to_string(maxv) + "|";
  for (const auto& c : ciphers) key += c + ",";

  std::lock_guard<std::mutex> lock(mu_);
  auto it = cache_.find(key);
  if (it != cache_.end()) return it->second.get();

  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  SSL_CTX* c = ctx.get();
  SSL_CTX_set_min_proto_version(c, openssl_version(minv));
  SSL_CTX_set_max_proto_version(c, openssl_version(maxv));
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  if (!ciphers.empty()) {
    std::string unknown;
    auto m = config::map_ciphers(ciphers, &unknown);
    if (m && !m->tls12.empty()) SSL_CTX_set_cipher_list(c, m->tls12.c_str());
    if (m && !m->tls13.empty()) SSL_CTX_set_ciphersuites(c, m->tls13.c_str());
  }
  static const unsigned char kAlpn[] = "\x08http/1.1";
  SSL_CTX_set_alpn_protos(c, kAlpn, sizeof kAlpn - 1);
  // Honours SSL_CERT_FILE and SSL_CERT_DIR, as OpenSSL (and Go) do.
  SSL_CTX_set_default_verify_paths(c);
  if (skip) {
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
    log::warn("upstream TLS verification is disabled for a transport (ssl_insecure_skip_verify)");
  } else {
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
  }
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  auto* raw = ctx.get();
  cache_.emplace(key, std::move(ctx));
  return raw;
}

SSL* ClientTls::new_ssl(SSL_CTX* ctx, const std::string& host) const {
  SSL* ssl = SSL_new(ctx);
  if (!ssl) return nullptr;
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  bool is_ip = host.find(':') != std::string::npos ||
               host.find_first_not_of("0123456789.") == std::string::npos;
  if (is_ip) {
    X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl, host.c_str());
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
  }
  return ssl;
}

}  // namespace gh::tls
