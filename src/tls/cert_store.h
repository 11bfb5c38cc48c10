// The certificate store's pure part (no I/O): parsing what /tyk/certs is given, certificate ids
// as Tyk computes them (org id + hex SHA-256 of the first certificate's DER, or of a bare public
// key's SubjectPublicKeyInfo DER), the metadata the API shows, and private keys sealed at rest
// with AES-256-GCM under a key derived from security.private_certificate_encoding_secret.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace gh::tls {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// What a PEM text holds.
struct PemBundle {
  std::vector<X509Ptr> certs;  // in the order given (leaf first)
  std::vector<PkeyPtr> private_keys;
  PkeyPtr public_key;  // a bare PUBLIC KEY block (certificate pinning)
};
// Error when the text holds no PEM block Gatehouse can read.
Result<PemBundle> parse_pem(std::string_view pem);

std::string cert_der_sha256(X509* cert);     // hex SHA-256 of the DER
std::string spki_der_sha256(EVP_PKEY* key);  // hex SHA-256 of the SubjectPublicKeyInfo DER

struct CertMeta {
  std::string id;
  std::string fingerprint;  // hex SHA-256 of the DER (of the SPKI for a bare public key)
  bool has_private = false;
  std::string issuer, subject;            // RFC 2253 form
  int64_t not_before = 0, not_after = 0;  // unix seconds
  std::vector<std::string> dns_names;
  bool is_ca = false;
};
CertMeta describe(X509* cert, const std::string& org_id, bool has_private);
CertMeta describe_public_key(EVP_PKEY* key, const std::string& org_id);

// The stored form of a bundle: the certificate chain (or public key) in PEM, and the private
// key, if any, sealed with `secret` (never in clear).
std::string seal(const PemBundle& b, std::string_view secret);
// Reads a stored form back; the private key is opened with `secret` (error when it does not
// open: wrong secret or tampered data).
Result<PemBundle> unseal(std::string_view stored, std::string_view secret);

// PEM text of certificates / keys (for handing to OpenSSL contexts).
std::string to_pem(X509* cert);

}  // namespace gh::tls
