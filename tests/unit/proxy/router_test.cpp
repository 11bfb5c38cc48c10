#include "proxy/router.h"

#include <gtest/gtest.h>

#include <memory>

using gh::apidef::ApiSpec;
using namespace gh::proxy;

namespace {
std::shared_ptr<const ApiSpec> api(std::string id, std::string lp, std::string domain = "") {
  auto a = std::make_shared<ApiSpec>();
  a->api_id = std::move(id);
  a->listen_path = std::move(lp);
  a->domain = std::move(domain);
  return a;
}
}  // namespace

TEST(Router, LongestListenPathWins) {
  Router r({api("root", ""), api("a", "/a"), api("ab", "/a/b")}, false, nullptr);
  EXPECT_EQ(r.match("h", "/a/b/c")->api_id, "ab");
  EXPECT_EQ(r.match("h", "/a/bc")->api_id, "a");
  EXPECT_EQ(r.match("h", "/a")->api_id, "a");
  EXPECT_EQ(r.match("h", "/ab")->api_id, "root");
  EXPECT_EQ(r.match("h", "/")->api_id, "root");
}

TEST(Router, SegmentBoundary) {
  Router r({api("echo", "/echo")}, false, nullptr);
  EXPECT_EQ(r.match("h", "/echoes"), nullptr);
  EXPECT_NE(r.match("h", "/echo/"), nullptr);
}

TEST(Router, CustomDomains) {
  Router r({api("generic", "/x"), api("dom", "/x", "api.test")}, true, nullptr);
  EXPECT_EQ(r.match("API.test:8443", "/x/1")->api_id, "dom");
  EXPECT_EQ(r.match("other.test", "/x/1")->api_id, "generic");
  std::vector<std::string> problems;
  Router off({api("generic", "/x"), api("dom", "/x", "api.test")}, false, &problems);
  EXPECT_EQ(off.match("api.test", "/x")->api_id, "generic");
  EXPECT_EQ(problems.size(), 1u);  // same listen path once domains are ignored
}

TEST(Router, NormalisePath) {
  std::string out;
  ASSERT_TRUE(normalise_path("/a/./b/../c", out));
  EXPECT_EQ(out, "/a/c");
  normalise_path("/a/%2e%2E/b", out);
  EXPECT_EQ(out, "/b");
  normalise_path("/../../x", out);
  EXPECT_EQ(out, "/x");
  normalise_path("/a/b/..", out);
  EXPECT_EQ(out, "/a/");
  normalise_path("/a//b/", out);
  EXPECT_EQ(out, "/a//b/");
  // Paths without '.' or '%' take a shortcut: the result must be the path itself.
  for (const char* p : {"/", "//", "/keyed/", "/a//b", "/x/y/z/"}) {
    ASSERT_TRUE(normalise_path(p, out));
    EXPECT_EQ(out, p);
  }
  normalise_path("/a/b/%2e", out);
  EXPECT_EQ(out, "/a/b/");
  EXPECT_FALSE(normalise_path("*", out));
}

TEST(Router, UpstreamTarget) {
  ApiSpec s;
  s.listen_path = "/echo";
  s.strip_listen_path = true;
  s.target.path = "/base";
  EXPECT_EQ(upstream_target(s, "/echo/x", "a=1", true), "/base/x?a=1");
  EXPECT_EQ(upstream_target(s, "/echo", "", false), "/base");
  s.target.path = "";
  EXPECT_EQ(upstream_target(s, "/echo", "", false), "/");
  s.strip_listen_path = false;
  EXPECT_EQ(upstream_target(s, "/echo/x", "", false), "/echo/x");
  s.target.query = "k=v";
  EXPECT_EQ(upstream_target(s, "/echo/x", "a=1", true), "/echo/x?k=v&a=1");
  EXPECT_EQ(upstream_target(s, "/echo/x", "", false), "/echo/x?k=v");
}

TEST(Router, HostOnly) {
  EXPECT_EQ(host_only("Example.COM:8080"), "example.com");
  EXPECT_EQ(host_only("[::1]:80"), "[::1]");
}
