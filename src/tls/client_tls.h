// Client-side TLS towards upstreams: verification on by default (system trust store plus
// SSL_CERT_FILE / SSL_CERT_DIR, host name checked), TLS 1.2+ unless the config says otherwise,
// renegotiation off. One SSL_CTX per distinct transport policy, cached.
#pragma once

#include <openssl/ssl.h>

#include <map>
#include <mutex>
#include <string>
#include <unordered_set>

#include "apidef/api_spec.h"
#include "config/gateway_config.h"
#include "tls/cert_store.h"
#include "tls/server_tls.h"

namespace gh::tls {

// Pinned public keys: hex SHA-256 of SubjectPublicKeyInfo DER.
using PinSet = std::unordered_set<std::string>;

class ClientTls {
 public:
  explicit ClientTls(const config::GatewayConfig& cfg);

  // The context for an API's transport settings and, for upstream mutual TLS, the client
  // certificate (chain + private key) it presents, named by `client_cert_id` (thread-safe;
  // contexts live as long as this, so a context pointer names one configuration for good).
  SSL_CTX* context_for(const apidef::Transport& t, const PemBundle* client_cert = nullptr,
                       const std::string& client_cert_id = {});
  // A client SSL for `host`: SNI (for names) and host-name (or IP) verification set. With `pins`
  // (alive until the handshake ends), a leaf whose own key is pinned is accepted even when its
  // chain does not verify: the handshake proves the upstream holds that key.
  SSL* new_ssl(SSL_CTX* ctx, const std::string& host, const PinSet* pins = nullptr) const;

  // After the handshake: whether a certificate the upstream sent has a pinned key.
  static bool chain_is_pinned(SSL* ssl, const PinSet& pins);
  // After the handshake: whether the leaf's subject CN is `host` (ssl_force_common_name_check).
  static bool common_name_is(SSL* ssl, const std::string& host);

 private:
  const config::GatewayConfig& cfg_;
  std::mutex mu_;
  std::map<std::string, SslCtxPtr> cache_;
};

}  // namespace gh::tls
