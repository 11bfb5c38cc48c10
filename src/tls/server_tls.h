// Server-side TLS: one SSL_CTX per configured certificate, all configured alike (versions,
// ciphers, renegotiation off, ALPN http/1.1, shared session-ticket keys rotated in memory);
// the SNI callback moves a handshake to the context whose certificate names the host.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/gateway_config.h"
#include "tls/client_auth.h"

namespace gh::tls {

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;

// One server certificate, resolved: its chain (leaf first) and private key, and the name it is
// chosen for ("" = by the names in the certificate).
struct ServerCert {
  std::string domain;  // lower-case; "*.x.com" allowed
  PemBundle bundle;
  std::string field;  // where it was configured, for errors ("http_server_options...")
};

class ServerTls {
 public:
  // Throws config::ConfigError naming the field and file when a certificate cannot be used or
  // there is none.
  ServerTls(const config::GatewayConfig& cfg, const std::vector<ServerCert>& certs);
  // The control API's own listener with security.control_api_use_mutual_tls: the same server
  // certificates, and a client certificate required and verified in the handshake against
  // `client_cas` (a missing, unknown-CA or expired certificate fails the handshake).
  ServerTls(const config::GatewayConfig& cfg, const std::vector<ServerCert>& certs,
            const std::vector<PemBundle>& client_cas);

  // Replaces the certificates (reload): handshakes from now on use the new ones; connections
  // already set up keep theirs. Throws config::ConfigError, leaving the current ones in place,
  // when one cannot be used.
  void set_certificates(const std::vector<ServerCert>& certs);

  // A new server-side SSL object for one connection (owned by the caller).
  SSL* new_ssl() const;

  // For tests and logs: which configured entry serves `sni` ("" = no SNI).
  std::string describe_choice(const std::string& sni) const;

  // Which server names ask the client for a certificate (from the current snapshot's mTLS
  // APIs). The handshake only asks; each request is judged against its API's allow list.
  void set_client_demand(std::shared_ptr<const ClientCertDemand> d);

 private:
  struct Entry {
    std::string domain;  // lower-case; "*.x.com" allowed; "" = by the certificate's names
    SslCtxPtr ctx;
    X509* leaf = nullptr;  // owned by ctx
  };
  struct CertSet {
    std::vector<Entry> by_domain;  // chosen by their domain
    std::vector<Entry> generic;    // chosen by the names in their certificate
    SSL_CTX* choose(const char* sni) const;
  };
  static int on_servername(SSL* ssl, int* alert, void* arg);
  void apply_demand(SSL* ssl, const char* sni) const;
  std::shared_ptr<const CertSet> certs() const;
  SslCtxPtr make_ctx() const;
  std::shared_ptr<const CertSet> build(const std::vector<ServerCert>& certs) const;

  const config::GatewayConfig& cfg_;
  const std::vector<PemBundle>* required_cas_ = nullptr;
  std::vector<PemBundle> owned_cas_;   // the control listener's CAs
  bool announce_cas_ = true;           // !skip_client_ca_announcement
  bool requires_client_cert_ = false;  // the control listener's own contexts decide alone
  mutable std::mutex mu_;
  std::shared_ptr<const CertSet> certs_;
  std::shared_ptr<const ClientCertDemand> demand_;
};

}  // namespace gh::tls
