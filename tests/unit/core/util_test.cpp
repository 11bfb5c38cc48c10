#include "core/util.h"

#include <gtest/gtest.h>

using namespace gh;

TEST(Util, SecretEquals) {
  EXPECT_TRUE(secret_equals("abc", "abc"));
  EXPECT_FALSE(secret_equals("abc", "abd"));
  EXPECT_FALSE(secret_equals("abc", "abcd"));
  EXPECT_FALSE(secret_equals("", "a"));
}

TEST(Util, ParseU64) {
  EXPECT_EQ(*parse_u64("0"), 0u);
  EXPECT_EQ(*parse_u64("9223372036854775807"), 9223372036854775807ull);
  EXPECT_FALSE(parse_u64("9223372036854775808"));
  EXPECT_FALSE(parse_u64("-1"));
  EXPECT_FALSE(parse_u64("+1"));
  EXPECT_FALSE(parse_u64(""));
  EXPECT_FALSE(parse_u64("1 "));
}

TEST(Util, Hex) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(random_hex(16).size(), 32u);
  EXPECT_NE(random_hex(16), random_hex(16));
}

namespace {
bool iequals_bytewise(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
    if (x >= 'A' && x <= 'Z') x = static_cast<unsigned char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<unsigned char>(y + 32);
    if (x != y) return false;
  }
  return true;
}
}  // namespace

TEST(Util, IequalsMatchesTheBytewiseDefinition) {
  EXPECT_TRUE(iequals("Content-Length", "content-length"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_FALSE(iequals("te", "tE "));
  EXPECT_FALSE(iequals("x-a^b", "x-a~b"));  // '^' and '~' differ only in bit 0x20
  EXPECT_FALSE(iequals("@", "`"));
  // Every pair of bytes, at every position of strings of 1 to 17 bytes (the tail of a word,
  // a whole word, and a word plus a tail).
  for (size_t len = 1; len <= 17; ++len) {
    for (size_t pos = 0; pos < len; ++pos) {
      std::string a(len, 'k'), b(len, 'K');
      for (int x = 0; x < 256; ++x) {
        for (int y = 0; y < 256; ++y) {
          a[pos] = static_cast<char>(x);
          b[pos] = static_cast<char>(y);
          ASSERT_EQ(iequals(a, b), iequals_bytewise(a, b))
              << len << " " << pos << " " << x << " " << y;
        }
      }
    }
  }
}
