#include "policy/url_match.h"

#include <gtest/gtest.h>

using gh::policy::canonical_path;
using gh::policy::tyk_path_regex;
using gh::policy::UrlRule;

namespace {
std::string canon(std::string_view p) {
  std::string out;
  if (!canonical_path(p, out)) return "<refused>";
  return out;
}
}  // namespace

TEST(CanonicalPath, EverySpellingOfOnePathIsTheSame) {
  for (const char* p : {"/admin", "//admin", "/./admin", "/public/../admin", "/public/%2e%2e/admin",
                        "/public/%2E%2E/admin", "/public%2f..%2fadmin", "/%61dmin",
                        "/public/..;/admin", "/public\\..\\admin", "/public/%5c../admin",
                        "/admin;jsessionid=1", "/a/b/../../admin", "///admin", "/./././admin"}) {
    EXPECT_EQ(canon(p), "/admin") << p;
  }
  EXPECT_EQ(canon("/admin/"), "/admin/");
  EXPECT_EQ(canon("/"), "/");
  EXPECT_EQ(canon("/../../.."), "/");
  EXPECT_EQ(canon("/100%"), "/100%");
}

TEST(CanonicalPath, NoSafeFormIsRefused) {
  EXPECT_EQ(canon("/admin%00"), "<refused>");
  EXPECT_EQ(canon("/a%0d%0ab"), "<refused>");
  EXPECT_EQ(canon("/public/%252e%252e/admin"), "<refused>");
  EXPECT_EQ(canon("/%2561dmin"), "<refused>");
}

TEST(UrlRule, TykSyntax) {
  EXPECT_EQ(tyk_path_regex("/users/{id}"), "/users/([^/]+)");
  EXPECT_EQ(tyk_path_regex("/files/*"), "/files/.*");
  EXPECT_EQ(tyk_path_regex("/x/[0-9]{2,3}"), "/x/[0-9]{2,3}");
}

TEST(UrlRule, MethodAndAnchoredPath) {
  auto r = UrlRule::compile("/users/{id}", {"GET"}, false);
  ASSERT_TRUE(r) << r.error();
  EXPECT_TRUE(r->matches("/users/12", "GET"));
  EXPECT_TRUE(r->matches("/users/12/orders", "GET"));  // prefix, as Tyk users expect
  EXPECT_FALSE(r->matches("/users/12", "POST"));
  EXPECT_FALSE(r->matches("/users/12", "get"));
  EXPECT_FALSE(r->matches("/admin/users/12", "GET"));  // Tyk would admit this one
  auto end = UrlRule::compile("/users/{id}", {"GET"}, true);
  ASSERT_TRUE(end);
  EXPECT_TRUE(end->matches("/users/12", "GET"));
  EXPECT_FALSE(end->matches("/users/12/orders", "GET"));
  auto caret = UrlRule::compile("^/status$", {"GET"}, false);
  ASSERT_TRUE(caret);
  EXPECT_TRUE(caret->matches("/status", "GET"));
  EXPECT_FALSE(caret->matches("/status/x", "GET"));
}

TEST(UrlRule, InvalidRegexIsAnError) {
  auto r = UrlRule::compile("/a/(unclosed", {"GET"}, false);
  EXPECT_FALSE(r);
}

TEST(UrlRule, PathologicalRegexRefusesInsteadOfHanging) {
  auto r = UrlRule::compile("/(a+)+$", {"GET"}, false);
  ASSERT_TRUE(r);
  std::string p = "/" + std::string(5000, 'a') + "!";
  EXPECT_FALSE(r->matches(p, "GET"));
}
