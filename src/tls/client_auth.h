// Static mutual TLS: which client certificates an API admits (its allow list: certificates
// named directly, or signed by a CA certificate in the list), and which server names ask a
// client for a certificate during the handshake. Built when a snapshot is made; read per request.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "tls/cert_store.h"

namespace gh::tls {

class ClientCertAllow {
 public:
  explicit ClientCertAllow(const std::vector<PemBundle>& bundles);
  ~ClientCertAllow();
  ClientCertAllow(const ClientCertAllow&) = delete;
  ClientCertAllow& operator=(const ClientCertAllow&) = delete;

  enum class Verdict { kAllowed, kMissing, kExpired, kNotAllowed };
  // The certificate the client presented on `ssl` (null: none). `leaf_hex` gets the
  // SHA-256 of its DER (for the refusal message).
  Verdict check(SSL* ssl, std::string* leaf_hex) const;
  // Whether `peer` (the leaf on `ssl`, whose SHA-256 is `leaf_hex`) is listed or signed by a
  // listed CA. Its validity period is the caller's to check.
  bool admits(SSL* ssl, X509* peer, const std::string& leaf_hex) const;

  // Names to announce in the CertificateRequest: the listed CAs and the issuers of the listed
  // certificates.
  const std::vector<X509Ptr>& certs() const { return certs_; }

 private:
  std::unordered_set<std::string> leaf_sha256_;
  std::vector<X509Ptr> certs_;
  X509_STORE* cas_ = nullptr;  // owned; null when the list holds no CA certificate
};

// RFC 9440 header values of the client certificate on `ssl`: Client-Cert (the leaf, as a
// structured-field byte sequence) and Client-Cert-Chain (the other certificates the client sent);
// empty when there is none.
std::string rfc9440_cert(SSL* ssl);
std::string rfc9440_chain(SSL* ssl);

// Which TLS server names ask for a client certificate (any name when an mTLS API has no
// custom domain), and the CA names to announce.
// Whether the certificate is within its validity period now.
bool within_validity(X509* cert);
// Its validity period as unix seconds (false when a time cannot be read).
bool validity_period(X509* cert, int64_t* not_before, int64_t* not_after);

struct ClientCertDemand {
  bool any_host = false;
  std::vector<std::string> hosts;      // lower-case
  std::vector<X509Ptr> ca_names_from;  // certificates whose subject/issuer names are announced
  bool wants(const char* sni) const;
};

}  // namespace gh::tls
