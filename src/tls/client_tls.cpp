#include "tls/client_tls.h"

#include <openssl/x509v3.h>

#include "config/ciphers.h"
#include "core/log.h"
#include "core/util.h"
#include "tls/versions.h"

namespace gh::tls {

namespace {

int pins_index() {
  static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}

std::string spki_of(X509* cert) {
  EVP_PKEY* k = X509_get0_pubkey(cert);
  return k ? spki_der_sha256(k) : std::string();
}

// Chain verification failed at some depth: still accepted when the leaf's own key is pinned for
// this upstream.
int verify_with_pins(int ok, X509_STORE_CTX* sctx) {
  if (ok) return 1;
  auto* ssl =
      static_cast<SSL*>(X509_STORE_CTX_get_ex_data(sctx, SSL_get_ex_data_X509_STORE_CTX_idx()));
  const auto* pins = ssl ? static_cast<const PinSet*>(SSL_get_ex_data(ssl, pins_index())) : nullptr;
  X509* leaf = X509_STORE_CTX_get0_cert(sctx);
  return pins && leaf && pins->count(spki_of(leaf)) ? 1 : 0;
}

}  // namespace

ClientTls::ClientTls(const config::GatewayConfig& cfg) : cfg_(cfg) {}

bool ClientTls::chain_is_pinned(SSL* ssl, const PinSet& pins) {
  STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl);  // the leaf first, on a client
  for (int i = 0; chain && i < sk_X509_num(chain); ++i) {
    if (pins.count(spki_of(sk_X509_value(chain, i)))) return true;
  }
  return false;
}

bool ClientTls::common_name_is(SSL* ssl, const std::string& host) {
  X509* leaf = SSL_get0_peer_certificate(ssl);
  if (!leaf) return false;
  char cn[256] = {0};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof cn) <= 0)
    return false;
  return iequals(cn, host);
}

SSL_CTX* ClientTls::context_for(const apidef::Transport& t, const PemBundle* client_cert,
                                const std::string& client_cert_id) {
  bool skip = cfg_.proxy_ssl_insecure_skip_verify || t.ssl_insecure_skip_verify;
  int minv = t.ssl_min_version ? t.ssl_min_version : cfg_.proxy_ssl_min_version;
  int maxv = t.ssl_max_version ? t.ssl_max_version : cfg_.proxy_ssl_max_version;
  const auto& ciphers = t.ssl_ciphers.empty() ? cfg_.proxy_ssl_ciphers : t.ssl_ciphers;
  std::string key =
      std::to_string(skip) + "|" + std::to_string(minv) + "|" + std::to_string(maxv) + "|";
  for (const auto& c : ciphers) key += c + ",";
  if (client_cert) key += "|cert=" + client_cert_id;

  std::lock_guard<std::mutex> lock(mu_);
  auto it = cache_.find(key);
  if (it != cache_.end()) return it->second.get();

  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  SSL_CTX* c = ctx.get();
  SSL_CTX_set_min_proto_version(c, openssl_version(minv));
  SSL_CTX_set_max_proto_version(c, openssl_version(maxv));
  SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION);
  // Renegotiation stays off unless the config asks for it (warned at start).
  if (cfg_.proxy_ssl_disable_renegotiation) SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION);
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
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, verify_with_pins);
  }
  if (client_cert && !client_cert->certs.empty() && client_cert->private_keys.size() == 1) {
    // Upstream mutual TLS: sent when the upstream asks for a certificate.
    SSL_CTX_use_certificate(c, client_cert->certs[0].get());
    for (size_t i = 1; i < client_cert->certs.size(); ++i)
      SSL_CTX_add1_chain_cert(c, client_cert->certs[i].get());
    SSL_CTX_use_PrivateKey(c, client_cert->private_keys[0].get());
  }
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  auto* raw = ctx.get();
  cache_.emplace(key, std::move(ctx));
  return raw;
}

SSL* ClientTls::new_ssl(SSL_CTX* ctx, const std::string& host, const PinSet* pins) const {
  SSL* ssl = SSL_new(ctx);
  if (!ssl) return nullptr;
  if (pins) SSL_set_ex_data(ssl, pins_index(), const_cast<PinSet*>(pins));
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
