#include "auth/token.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <boost/json.hpp>
#include <random>

#include "auth/session.h"
#include "auth/token_source.h"
#include "http/http1_parser.h"

using namespace gh;
using namespace gh::auth;

TEST(Token, Base64RoundTrip) {
  for (std::string s : {"", "a", "ab", "abc", "abcd", "{\"org\":\"x\"}"}) {
    auto enc = base64_encode(s);
    if (s.empty()) continue;
    auto dec = base64_decode(enc);
    ASSERT_TRUE(dec) << s;
    EXPECT_EQ(*dec, s);
  }
  EXPECT_FALSE(base64_decode("abc"));
  EXPECT_FALSE(base64_decode("ab!d"));
}

namespace {
// base64_decode as it was written on top of EVP_DecodeBlock: the table decoder must match it.
std::optional<std::string> evp_base64_decode(std::string_view in) {
  if (in.empty() || in.size() % 4 != 0) return std::nullopt;
  for (char c : in) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/' || c == '=';
    if (!ok) return std::nullopt;
  }
  std::string out(3 * in.size() / 4, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0) return std::nullopt;
  size_t pad = 0;
  if (in.back() == '=') ++pad;
  if (in.size() > 1 && in[in.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}
}  // namespace

TEST(Token, Base64DecodeMatchesEvp) {
  std::vector<std::string> cases = {"",     "A",    "AB==",       "A===",        "====",  "AB=C",
                                    "=ABC", "QQ==", "QUI=",       "QUJD",        "QU\nJ", "QU JD",
                                    "QU-D", "QU_D", "\xff\xfe==", "QUJDRA==QUJD"};
  std::mt19937 rng(7);
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
  for (int i = 0; i < 2000; ++i) {
    std::string s(rng() % 24, 'A');
    for (auto& c : s) c = rng() % 50 == 0 ? static_cast<char>(rng()) : alphabet[rng() % 65];
    cases.push_back(s);
  }
  for (const auto& c : cases) EXPECT_EQ(base64_decode(c), evp_base64_decode(c)) << c;
}

TEST(Token, FirstLookupIdIsTheFirstOfLookupIds) {
  KeyHashing h;
  h.fallbacks = {KeyHash::kMurmur32};
  std::string long_id(2000, 'x');
  std::string out;
  for (const auto& t :
       {generate_token("o", "id", "sha256"), generate_token("o", "id", "murmur128"),
        generate_token("o", "id", "murmur32"), generate_token("o", "id", "murmur64"),
        generate_token("o", "id", "nonsense"), generate_token("o", "id", ""),
        generate_token("o", long_id, "sha256"), std::string("custom1"), std::string("eyJ9"),
        base64_encode(R"({"h":"sha256"})"), base64_encode(R"({"h":""})"),
        base64_encode(R"({"h":"sha\"256"})"), base64_encode(R"(["h":"sha256"])")}) {
    auto ids = lookup_ids(t, "org", "murmur64", h);
    first_lookup_id(t, h, out);
    EXPECT_EQ(out, ids.front()) << t;
    EXPECT_EQ(storage_id(t, h), ids.front()) << t;
  }
  EXPECT_EQ(parse_token(base64_encode(R"({"id":"h","xh":"a","h" :"b","h": "sha256"})")).algo,
            "sha256");
  EXPECT_EQ(lookup_ids(base64_encode(R"({"h":"sha256"})"), "o", "murmur64", h).size(), 2u);
  EXPECT_EQ(lookup_ids(base64_encode(R"(["h":"sha256"])"), "o", "murmur64", h).size(), 3u);
  h.enabled = false;
  first_lookup_id("plain", h, out);
  EXPECT_EQ(out, "plain");
}

TEST(Token, GeneratedTokensAsTyk) {
  auto t = generate_token("org1", "abc", "murmur64");
  EXPECT_EQ(*base64_decode(t), R"({"org":"org1","id":"abc","h":"murmur64"})");
  auto info = parse_token(t);
  EXPECT_TRUE(info.json);
  EXPECT_EQ(info.org, "org1");
  EXPECT_EQ(info.id, "abc");
  EXPECT_EQ(info.algo, "murmur64");
  EXPECT_EQ(generate_token("org1", "abc", ""), "org1abc");
  auto random = parse_token(generate_token("o", "", "sha256"));
  EXPECT_EQ(random.id.size(), 32u);
  EXPECT_FALSE(parse_token("plainkey").json);
}

TEST(Token, StorageIdUsesTheTokensAlgorithm) {
  KeyHashing h;  // murmur64 by default
  auto t = generate_token("o", "id", "sha256");
  EXPECT_EQ(storage_id(t, h), hash_key(t, KeyHash::kSha256));
  EXPECT_EQ(storage_id("plain", h), hash_key("plain", KeyHash::kMurmur64));
  h.enabled = false;
  EXPECT_EQ(storage_id("plain", h), "plain");
}

TEST(Token, LookupIdsForCustomKeysAndFallbacks) {
  KeyHashing h;
  h.fallbacks = {KeyHash::kMurmur32};
  auto ids = lookup_ids("custom1", "org", "murmur64", h);
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[0], hash_key("custom1", KeyHash::kMurmur64));
  EXPECT_EQ(ids[1], storage_id(generate_token("org", "custom1", "murmur64"), h));
  EXPECT_EQ(ids[2], hash_key("custom1", KeyHash::kMurmur32));
}

TEST(Session, ParsesAndKeepsUnknownFields) {
  auto v = boost::json::parse(R"({"org_id":"o","expires":100,"is_inactive":true,
    "access_rights":{"a":{"api_id":"a"},"b":{}},"custom_field":{"x":1}})");
  auto s = parse_session(v);
  ASSERT_TRUE(s.ok()) << s.error();
  EXPECT_EQ(s->org_id, "o");
  EXPECT_TRUE(s->expired(101));
  EXPECT_FALSE(s->expired(99));
  EXPECT_TRUE(s->is_inactive);
  EXPECT_TRUE(s->grants("a", false));
  EXPECT_FALSE(s->grants("c", false));
  EXPECT_TRUE(s->raw.contains("custom_field"));
  EXPECT_EQ(boost::json::serialize(s->raw), boost::json::serialize(v));
}

TEST(Session, NeverExpiresAndMasterKeys) {
  auto s = parse_session(boost::json::parse(R"({"expires":-1})"));
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->expired(1 << 30));
  EXPECT_FALSE(s->grants("x", false));
  EXPECT_TRUE(s->grants("x", true));
}

TEST(Session, RefusesWrongTypes) {
  for (const char* bad :
       {R"({"expires":"soon"})", R"({"is_inactive":"yes"})", R"({"access_rights":[]})",
        R"({"tags":"a"})", R"({"org_id":5})", R"([])"}) {
    auto s = parse_session(boost::json::parse(bad));
    EXPECT_FALSE(s.ok()) << bad;
  }
}

namespace {
http::RequestHead head(const std::string& raw) {
  http::RequestHead h;
  auto r = http::parse_request_head(raw, {}, h);
  EXPECT_EQ(r.status, http::ParseStatus::kDone);
  return h;
}
}  // namespace

TEST(TokenSource, HeaderQueryCookieInOrder) {
  apidef::TokenSource src;
  src.use_param = true;
  src.param_name = "key";
  src.use_cookie = true;
  src.cookie_name = "k";
  auto f = find_token(head("GET /?key=q HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer hdr\r\n"
                           "Cookie: k=c\r\n\r\n"),
                      src);
  EXPECT_EQ(f.token, "hdr");
  EXPECT_EQ(f.place, TokenPlace::kHeader);
  f = find_token(head("GET /?a=1&key=q%2B1 HTTP/1.1\r\nHost: a\r\nCookie: k=c\r\n\r\n"), src);
  EXPECT_EQ(f.token, "q+1");
  EXPECT_EQ(f.place, TokenPlace::kQuery);
  f = find_token(head("GET / HTTP/1.1\r\nHost: a\r\nCookie: x=1; k=c\r\n\r\n"), src);
  EXPECT_EQ(f.token, "c");
  EXPECT_EQ(f.place, TokenPlace::kCookie);
  f = find_token(head("GET / HTTP/1.1\r\nHost: a\r\nAuthorization: \r\n\r\n"), src);
  EXPECT_EQ(f.place, TokenPlace::kNone);
  std::string_view token;
  std::string decoded;
  auto q = head("GET /?key=q%2B1 HTTP/1.1\r\nHost: a\r\nCookie: k=c\r\n\r\n");
  EXPECT_EQ(find_token(q, src, token, decoded), TokenPlace::kQuery);
  EXPECT_EQ(token, "q+1");
  auto hd = head("GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer  hdr \r\n\r\n");
  EXPECT_EQ(find_token(hd, src, token, decoded), TokenPlace::kHeader);
  EXPECT_EQ(token, "hdr");
  src.use_header = false;
  f = find_token(head("GET / HTTP/1.1\r\nHost: a\r\nAuthorization: hdr\r\n\r\n"), src);
  EXPECT_EQ(f.place, TokenPlace::kNone);
}

TEST(TokenSource, Strip) {
  EXPECT_EQ(strip_query_param("a=1&key=x&b=2&key=y", "key"), "a=1&b=2");
  EXPECT_EQ(strip_query_param("key=x", "key"), "");
  EXPECT_EQ(strip_cookie("a=1; k=secret; b=2", "k"), "a=1; b=2");
  EXPECT_EQ(strip_cookie("k=secret", "k"), "");
}
