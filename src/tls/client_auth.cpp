#include "tls/client_auth.h"

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include <ctime>

#include "core/util.h"

namespace gh::tls {

ClientCertAllow::ClientCertAllow(const std::vector<PemBundle>& bundles) {
  for (const auto& b : bundles) {
    for (const auto& c : b.certs) {
      leaf_sha256_.insert(cert_der_sha256(c.get()));
      X509_up_ref(c.get());
      certs_.emplace_back(c.get());
      if (X509_check_ca(c.get()) > 0) {
        if (!cas_) {
          cas_ = X509_STORE_new();
          // A listed intermediate is a trust anchor of its own: no root needed above it.
          X509_STORE_set_flags(cas_, X509_V_FLAG_PARTIAL_CHAIN);
        }
        X509_STORE_add_cert(cas_, c.get());
      }
    }
  }
}

ClientCertAllow::~ClientCertAllow() {
  if (cas_) X509_STORE_free(cas_);
}

bool within_validity(X509* cert) {
  return X509_cmp_current_time(X509_get0_notAfter(cert)) >= 0 &&
         X509_cmp_current_time(X509_get0_notBefore(cert)) <= 0;
}

bool validity_period(X509* cert, int64_t* not_before, int64_t* not_after) {
  auto unix_of = [](const ASN1_TIME* t, int64_t* out) {
    struct tm tm {};
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return false;
    *out = static_cast<int64_t>(timegm(&tm));
    return true;
  };
  return unix_of(X509_get0_notBefore(cert), not_before) &&
         unix_of(X509_get0_notAfter(cert), not_after);
}

ClientCertAllow::Verdict ClientCertAllow::check(SSL* ssl, std::string* leaf_hex) const {
  X509* peer = ssl ? SSL_get0_peer_certificate(ssl) : nullptr;
  if (!peer) return Verdict::kMissing;
  if (!within_validity(peer)) return Verdict::kExpired;
  std::string hex = cert_der_sha256(peer);
  bool ok = admits(ssl, peer, hex);
  if (leaf_hex) *leaf_hex = std::move(hex);
  return ok ? Verdict::kAllowed : Verdict::kNotAllowed;
}

bool ClientCertAllow::admits(SSL* ssl, X509* peer, const std::string& leaf_hex) const {
  if (leaf_sha256_.count(leaf_hex)) return true;
  if (!cas_) return false;
  // Signed (through the chain the client sent) by a listed CA: admitted.
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  bool ok = ctx && X509_STORE_CTX_init(ctx, cas_, peer, SSL_get_peer_cert_chain(ssl)) == 1 &&
            X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) == 1 &&
            X509_verify_cert(ctx) == 1;
  X509_STORE_CTX_free(ctx);
  return ok;
}

namespace {
std::string sf_binary(X509* c) {
  int len = i2d_X509(c, nullptr);
  if (len <= 0) return {};
  std::string der(static_cast<size_t>(len), '\0');
  auto* p = reinterpret_cast<unsigned char*>(der.data());
  i2d_X509(c, &p);
  std::string b64(4 * ((der.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()),
                          reinterpret_cast<const unsigned char*>(der.data()),
                          static_cast<int>(der.size()));
  b64.resize(static_cast<size_t>(n));
  return ":" + b64 + ":";
}
}  // namespace

std::string rfc9440_cert(SSL* ssl) {
  X509* peer = ssl ? SSL_get0_peer_certificate(ssl) : nullptr;
  return peer ? sf_binary(peer) : std::string();
}

std::string rfc9440_chain(SSL* ssl) {
  STACK_OF(X509)* chain = ssl ? SSL_get_peer_cert_chain(ssl) : nullptr;
  std::string out;
  for (int i = 0; chain && i < sk_X509_num(chain); ++i) {
    if (!out.empty()) out += ", ";
    out += sf_binary(sk_X509_value(chain, i));
  }
  return out;
}

bool ClientCertDemand::wants(const char* sni) const {
  if (any_host) return true;
  if (!sni || !*sni) return false;
  std::string host = to_lower(sni);
  for (const auto& h : hosts)
    if (h == host) return true;
  return false;
}

}  // namespace gh::tls
