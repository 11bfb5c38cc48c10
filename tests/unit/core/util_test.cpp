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
