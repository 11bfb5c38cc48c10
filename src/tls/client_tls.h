// Client-side TLS towards upstreams: verification on by default (system trust store plus
// SSL_CERT_FILE / SSL_CERT_DIR, host name checked), TLS 1.2+ unless the config says otherwise,
// renegotiation off. One SSL_CTX per distinct transport policy, cached.
#pragma once

#include <openssl/ssl.h>

#include <map>
#include <mutex>
#include <string>

#include "apidef/api_spec.h"
#include "config/gateway_config.h"
#include "tls/server_tls.h"

namespace gh::tls {

class ClientTls {
 public:
  explicit ClientTls(const config::GatewayConfig& cfg);

  // The context for an API's transport settings (thread-safe; contexts live as long as this).
  SSL_CTX* context_for(const apidef::Transport& t);
  // A client SSL for `host`: SNI (for names) and host-name (or IP) verification set.
  SSL* new_ssl(SSL_CTX* ctx, const std::string& host) const;

 private:
  const config::GatewayConfig& cfg_;
  std::mutex mu_;
  std::map<std::string, SslCtxPtr> cache_;
};

}  // namespace gh::tls
