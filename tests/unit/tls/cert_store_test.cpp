#include "tls/cert_store.h"

#include <gtest/gtest.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "core/util.h"

using namespace gh::tls;

namespace {

struct Made {
  PkeyPtr key;
  X509Ptr cert;
  std::string pem;  // certificate then key
};

Made make_cert(const char* cn, long days, bool ca = false) {
  Made m;
  m.key.reset(EVP_EC_gen("P-256"));
  m.cert.reset(X509_new());
  X509_set_version(m.cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(m.cert.get()), 7);
  X509_gmtime_adj(X509_getm_notBefore(m.cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(m.cert.get()), days * 86400);
  X509_NAME* name = X509_get_subject_name(m.cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                             -1, -1, 0);
  X509_set_issuer_name(m.cert.get(), name);
  X509_set_pubkey(m.cert.get(), m.key.get());
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, m.cert.get(), m.cert.get(), nullptr, nullptr, 0);
  std::string san = std::string("DNS:") + cn + ",DNS:www." + cn;
  X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, san.c_str());
  X509_add_ext(m.cert.get(), e, -1);
  X509_EXTENSION_free(e);
  e = X509V3_EXT_conf_nid(nullptr, &v3, NID_basic_constraints,
                          ca ? "critical,CA:TRUE" : "CA:FALSE");
  X509_add_ext(m.cert.get(), e, -1);
  X509_EXTENSION_free(e);
  X509_sign(m.cert.get(), m.key.get(), EVP_sha256());
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, m.cert.get());
  PEM_write_bio_PrivateKey(b, m.key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  m.pem.assign(data, static_cast<size_t>(n));
  BIO_free(b);
  return m;
}

std::string key_pem(EVP_PKEY* k) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  std::string s(data, static_cast<size_t>(n));
  BIO_free(b);
  return s;
}

}  // namespace

TEST(CertStore, IdIsOrgPlusSha256OfTheDer) {
  auto m = make_cert("api.example.com", 30);
  auto b = parse_pem(m.pem);
  ASSERT_TRUE(b) << b.error();
  ASSERT_EQ(b->certs.size(), 1u);
  ASSERT_EQ(b->private_keys.size(), 1u);
  int len = i2d_X509(m.cert.get(), nullptr);
  std::string der(static_cast<size_t>(len), '\0');
  auto* p = reinterpret_cast<unsigned char*>(der.data());
  i2d_X509(m.cert.get(), &p);
  auto meta = describe(b->certs[0].get(), "org1", true);
  EXPECT_EQ(meta.fingerprint, gh::sha256_hex(der));
  EXPECT_EQ(meta.id, "org1" + gh::sha256_hex(der));
  EXPECT_EQ(meta.subject, "CN=api.example.com");
  EXPECT_EQ(meta.dns_names, (std::vector<std::string>{"api.example.com", "www.api.example.com"}));
  EXPECT_FALSE(meta.is_ca);
  EXPECT_TRUE(meta.has_private);
  EXPECT_GT(meta.not_after, meta.not_before);
  EXPECT_TRUE(describe(make_cert("ca", 30, true).cert.get(), "", false).is_ca);
}

TEST(CertStore, SealedKeyIsNotStoredInClearAndOpensOnlyWithTheSecret) {
  auto m = make_cert("api.example.com", 30);
  auto b = parse_pem(m.pem);
  ASSERT_TRUE(b);
  auto stored = seal(*b, "encoding-secret");
  EXPECT_EQ(stored.find("PRIVATE KEY-----\n"), stored.find("GATEHOUSE SEALED PRIVATE KEY-----\n") +
                                                   std::string("GATEHOUSE SEALED ").size());
  EXPECT_EQ(stored.find("BEGIN PRIVATE KEY"), std::string::npos);
  // No run of the clear key's base64 body appears in the stored form.
  auto clear = key_pem(m.key.get());
  auto body = clear.substr(clear.find('\n') + 1, 40);
  EXPECT_EQ(stored.find(body), std::string::npos);
  auto back = unseal(stored, "encoding-secret");
  ASSERT_TRUE(back) << back.error();
  ASSERT_EQ(back->private_keys.size(), 1u);
  EXPECT_EQ(EVP_PKEY_eq(back->private_keys[0].get(), m.key.get()), 1);
  EXPECT_EQ(back->certs.size(), 1u);
  EXPECT_FALSE(unseal(stored, "another-secret"));
  // Tampering is detected.
  auto tampered = stored;
  auto pos = tampered.find("SEALED PRIVATE KEY-----\n") + 30;
  tampered[pos] = tampered[pos] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(unseal(tampered, "encoding-secret"));
}

TEST(CertStore, BarePublicKeyAndBadInput) {
  auto m = make_cert("pin.example.com", 30);
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(b, m.key.get());
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  std::string pub(data, static_cast<size_t>(n));
  BIO_free(b);
  auto pb = parse_pem(pub);
  ASSERT_TRUE(pb) << pb.error();
  ASSERT_TRUE(pb->public_key);
  EXPECT_EQ(describe_public_key(pb->public_key.get(), "o").id, "o" + spki_der_sha256(m.key.get()));
  EXPECT_FALSE(parse_pem("hello"));
  EXPECT_FALSE(parse_pem(""));
  EXPECT_FALSE(parse_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"));
  EXPECT_FALSE(parse_pem(
      "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"));
  auto two = parse_pem(m.pem + key_pem(make_cert("x", 1).key.get()));
  ASSERT_TRUE(two);
  EXPECT_EQ(two->private_keys.size(), 2u);
}
