#include "tls/cert_store.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <ctime>

#include "core/util.h"

namespace gh::tls {

namespace {

constexpr const char* kSealedName = "GATEHOUSE SEALED PRIVATE KEY";
constexpr const char* kSealAad = "gatehouse-private-key-v1";

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

std::string bio_string(BIO* b) {
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

// One PEM block at a time, with the sealed private key handed to `sealed` (when not null).
Result<PemBundle> parse_blocks(std::string_view pem, std::vector<std::string>* sealed) {
  PemBundle out;
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  int blocks = 0;
  while (true) {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;
    if (PEM_read_bio(bio.get(), &name, &header, &data, &len) != 1) break;
    ++blocks;
    std::string n(name), h(header ? header : "");
    std::string der(reinterpret_cast<char*>(data), static_cast<size_t>(len));
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    if (!h.empty()) return Error{"encrypted PEM blocks are not accepted"};
    if (n == "CERTIFICATE") {
      X509* x = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
      if (!x) return Error{"a CERTIFICATE block is not a certificate"};
      out.certs.emplace_back(x);
    } else if (n == "PRIVATE KEY" || n == "RSA PRIVATE KEY" || n == "EC PRIVATE KEY") {
      EVP_PKEY* k = d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(der.size()));
      if (!k) return Error{"a private key block cannot be read"};
      out.private_keys.emplace_back(k);
    } else if (n == "ENCRYPTED PRIVATE KEY") {
      return Error{"encrypted private keys are not accepted"};
    } else if (n == "PUBLIC KEY") {
      if (out.public_key) return Error{"more than one public key"};
      EVP_PKEY* k = d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size()));
      if (!k) return Error{"a PUBLIC KEY block cannot be read"};
      out.public_key.reset(k);
    } else if (n == kSealedName && sealed) {
      sealed->push_back(std::move(der));
    } else if (n == "EC PARAMETERS") {
      continue;  // what `openssl ecparam -genkey` puts before the key
    } else {
      return Error{"unsupported PEM block \"" + n + "\""};
    }
  }
  ERR_clear_error();  // the read that ended the loop
  if (blocks == 0) return Error{"no PEM data"};
  return out;
}

// The AES-256 key for sealing: a key of its own for this purpose, whatever else the secret is
// used for.
void derive_key(std::string_view secret, unsigned char (&key)[32]) {
  std::string material = std::string("gatehouse certificate keys\n") + std::string(secret);
  SHA256(reinterpret_cast<const unsigned char*>(material.data()), material.size(), key);
  OPENSSL_cleanse(material.data(), material.size());
}

int64_t asn1_unix(const ASN1_TIME* t) {
  struct tm tm {};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

std::string name_text(X509_NAME* n) {
  BioPtr b(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(b.get(), n, 0, XN_FLAG_RFC2253);
  return bio_string(b.get());
}

}  // namespace

Result<PemBundle> parse_pem(std::string_view pem) { return parse_blocks(pem, nullptr); }

std::string cert_der_sha256(X509* cert) {
  int len = i2d_X509(cert, nullptr);
  std::string der(static_cast<size_t>(len > 0 ? len : 0), '\0');
  auto* p = reinterpret_cast<unsigned char*>(der.data());
  i2d_X509(cert, &p);
  return sha256_hex(der);
}

std::string spki_der_sha256(EVP_PKEY* key) {
  int len = i2d_PUBKEY(key, nullptr);
  std::string der(static_cast<size_t>(len > 0 ? len : 0), '\0');
  auto* p = reinterpret_cast<unsigned char*>(der.data());
  i2d_PUBKEY(key, &p);
  return sha256_hex(der);
}

std::string to_pem(X509* cert) {
  BioPtr b(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(b.get(), cert);
  return bio_string(b.get());
}

CertMeta describe(X509* cert, const std::string& org_id, bool has_private) {
  CertMeta m;
  m.fingerprint = cert_der_sha256(cert);
  m.id = org_id + m.fingerprint;
  m.has_private = has_private;
  m.issuer = name_text(X509_get_issuer_name(cert));
  m.subject = name_text(X509_get_subject_name(cert));
  m.not_before = asn1_unix(X509_get0_notBefore(cert));
  m.not_after = asn1_unix(X509_get0_notAfter(cert));
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
      if (g->type != GEN_DNS) continue;
      const auto* s = ASN1_STRING_get0_data(g->d.dNSName);
      m.dns_names.emplace_back(reinterpret_cast<const char*>(s),
                               static_cast<size_t>(ASN1_STRING_length(g->d.dNSName)));
    }
    GENERAL_NAMES_free(sans);
  }
  m.is_ca = X509_check_ca(cert) > 0;
  return m;
}

CertMeta describe_public_key(EVP_PKEY* key, const std::string& org_id) {
  CertMeta m;
  m.fingerprint = spki_der_sha256(key);
  m.id = org_id + m.fingerprint;
  return m;
}

std::string seal(const PemBundle& b, std::string_view secret) {
  BioPtr out(BIO_new(BIO_s_mem()));
  for (const auto& c : b.certs) PEM_write_bio_X509(out.get(), c.get());
  if (b.public_key) PEM_write_bio_PUBKEY(out.get(), b.public_key.get());
  std::string text = bio_string(out.get());
  if (b.private_keys.empty()) return text;
  // The key as PKCS#8 DER, sealed with AES-256-GCM: nonce (12) | ciphertext | tag (16).
  unsigned char* der = nullptr;
  int der_len = i2d_PrivateKey(b.private_keys.front().get(), &der);
  unsigned char key[32];
  derive_key(secret, key);
  unsigned char nonce[12];
  RAND_bytes(nonce, sizeof nonce);
  std::string sealed(reinterpret_cast<char*>(nonce), sizeof nonce);
  std::string ct(static_cast<size_t>(der_len > 0 ? der_len : 0) + 16, '\0');
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int n = 0, total = 0;
  EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key, nonce);
  EVP_EncryptUpdate(ctx, nullptr, &n, reinterpret_cast<const unsigned char*>(kSealAad),
                    static_cast<int>(std::strlen(kSealAad)));
  EVP_EncryptUpdate(ctx, reinterpret_cast<unsigned char*>(ct.data()), &n, der, der_len);
  total = n;
  EVP_EncryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(ct.data()) + total, &n);
  total += n;
  unsigned char tag[16];
  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag);
  EVP_CIPHER_CTX_free(ctx);
  OPENSSL_cleanse(der, static_cast<size_t>(der_len > 0 ? der_len : 0));
  OPENSSL_free(der);
  OPENSSL_cleanse(key, sizeof key);
  sealed.append(ct.data(), static_cast<size_t>(total));
  sealed.append(reinterpret_cast<char*>(tag), sizeof tag);
  BioPtr pem(BIO_new(BIO_s_mem()));
  PEM_write_bio(pem.get(), kSealedName, "", reinterpret_cast<const unsigned char*>(sealed.data()),
                static_cast<long>(sealed.size()));
  return text + bio_string(pem.get());
}

Result<PemBundle> unseal(std::string_view stored, std::string_view secret) {
  std::vector<std::string> sealed;
  auto r = parse_blocks(stored, &sealed);
  if (!r) return r;
  if (sealed.empty()) return r;
  const std::string& s = sealed.front();
  if (s.size() < 12 + 16 + 1) return Error{"sealed private key is truncated"};
  unsigned char key[32];
  derive_key(secret, key);
  const auto* nonce = reinterpret_cast<const unsigned char*>(s.data());
  const auto* ct = nonce + 12;
  int ct_len = static_cast<int>(s.size() - 12 - 16);
  std::string tag = s.substr(s.size() - 16);
  std::string der(static_cast<size_t>(ct_len) + 16, '\0');
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int n = 0, total = 0;
  EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key, nonce);
  EVP_DecryptUpdate(ctx, nullptr, &n, reinterpret_cast<const unsigned char*>(kSealAad),
                    static_cast<int>(std::strlen(kSealAad)));
  EVP_DecryptUpdate(ctx, reinterpret_cast<unsigned char*>(der.data()), &n, ct, ct_len);
  total = n;
  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag.data());
  bool ok = EVP_DecryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(der.data()) + total, &n) == 1;
  EVP_CIPHER_CTX_free(ctx);
  OPENSSL_cleanse(key, sizeof key);
  if (!ok) {
    OPENSSL_cleanse(der.data(), der.size());
    return Error{"the private key does not open with this secret"};
  }
  total += n;
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  EVP_PKEY* k = d2i_AutoPrivateKey(nullptr, &p, total);
  OPENSSL_cleanse(der.data(), der.size());
  if (!k) return Error{"the sealed private key cannot be read"};
  r->private_keys.emplace_back(k);
  return r;
}

}  // namespace gh::tls
