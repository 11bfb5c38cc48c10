#include "core/hash.h"

#include <gtest/gtest.h>

using namespace gh;

// Reference vectors of MurmurHash3 (x86_32 and x64_128), as Tyk's murmur3 package tests them.
TEST(Hash, Murmur3Vectors) {
  struct V {
    uint32_t seed, h32;
    uint64_t h1, h2;
    const char* s;
  };
  const V vs[] = {
      {0x00, 0x00000000, 0x0000000000000000ULL, 0x0000000000000000ULL, ""},
      {0x00, 0x248bfa47, 0xcbd8a7b341bd9b02ULL, 0x5b1e906a48ae1d19ULL, "hello"},
      {0x00, 0x149bbb7f, 0x342fac623a5ebc8eULL, 0x4cdcbc079642414dULL, "hello, world"},
      {0x00, 0xe31e8a70, 0xb89e5988b737affcULL, 0x664fc2950231b2cbULL, "19 Jan 2038 at 3:14:07 AM"},
      {0x00, 0xd5c48bfc, 0xcd99481f9ee902c9ULL, 0x695da1a38987b6e7ULL,
       "The quick brown fox jumps over the lazy dog."},
      {0x01, 0x514e28b7, 0x4610abe56eff5cb5ULL, 0x51622daa78f83583ULL, ""},
      {0x2a, 0xc02d1434, 0x74f33c659cda5af7ULL, 0x4ec7a891caf316f0ULL,
       "The quick brown fox jumps over the lazy dog."},
  };
  for (const auto& v : vs) {
    EXPECT_EQ(murmur3_32(v.s, v.seed), v.h32) << v.s;
    auto h = murmur3_x64_128(v.s, v.seed);
    EXPECT_EQ(h.h1, v.h1) << v.s;
    EXPECT_EQ(h.h2, v.h2) << v.s;
  }
}

TEST(Hash, KeyHexFormats) {
  EXPECT_EQ(hash_key("hello", KeyHash::kMurmur64), "cbd8a7b341bd9b02");
  EXPECT_EQ(hash_key("hello", KeyHash::kMurmur128), "cbd8a7b341bd9b025b1e906a48ae1d19");
  EXPECT_EQ(hash_key("hello", KeyHash::kMurmur32), "248bfa47");
  EXPECT_EQ(hash_key("hello", KeyHash::kSha256),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  EXPECT_EQ(*parse_key_hash("murmur128"), KeyHash::kMurmur128);
  EXPECT_FALSE(parse_key_hash("md5"));
}
