#include "config/ciphers.h"

#include <gtest/gtest.h>

using namespace gh::config;

TEST(Ciphers, MapsGoNamesToOpenSsl) {
  EXPECT_EQ(*openssl_cipher_name("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
            "ECDHE-ECDSA-AES128-GCM-SHA256");
  EXPECT_EQ(*openssl_cipher_name("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305"),
            "ECDHE-RSA-CHACHA20-POLY1305");
  EXPECT_EQ(*openssl_cipher_name("TLS_RSA_WITH_AES_128_CBC_SHA"), "AES128-SHA");
  EXPECT_FALSE(openssl_cipher_name("ECDHE-RSA-AES128-GCM-SHA256").has_value());
}

TEST(Ciphers, SplitsTls13Suites) {
  std::string unknown;
  auto m =
      map_ciphers({"TLS_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}, &unknown);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->tls12, "ECDHE-RSA-AES128-GCM-SHA256");
  EXPECT_EQ(m->tls13, "TLS_AES_128_GCM_SHA256");
  EXPECT_FALSE(map_ciphers({"TLS_BOGUS"}, &unknown));
  EXPECT_EQ(unknown, "TLS_BOGUS");
}
