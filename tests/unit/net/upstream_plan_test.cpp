#include "net/upstream_plan.h"

#include <gtest/gtest.h>

#include <boost/asio/ip/address.hpp>

#include "net/upstream_guard.h"

using gh::net::parse_proxy_url;
using gh::net::pick_for_host;
using gh::net::UpstreamGuard;
namespace ip = boost::asio::ip;

TEST(UpstreamPlan, TyksHostPrecedence) {
  std::map<std::string, std::string> gw{{"*", "star"},
                                        {"*.example.com", "parent"},
                                        {"*.example.com:8443", "parent-port"},
                                        {"api.example.com", "host"},
                                        {"api.example.com:8443", "host-port"}};
  EXPECT_EQ(pick_for_host({&gw}, "api.example.com", 8443, true), "host-port");
  EXPECT_EQ(pick_for_host({&gw}, "api.example.com", 443, true), "host");
  EXPECT_EQ(pick_for_host({&gw}, "www.example.com", 8443, true), "parent-port");
  EXPECT_EQ(pick_for_host({&gw}, "www.example.com", 443, true), "parent");
  EXPECT_EQ(pick_for_host({&gw}, "other.test", 443, true), "star");
  // Without ports (pinning), port patterns never match.
  EXPECT_EQ(pick_for_host({&gw}, "www.example.com", 0, false), "parent");
  // A later map (the API's) overrides an earlier one (the gateway's) wherever it matches.
  std::map<std::string, std::string> api{{"*", "api-star"}};
  EXPECT_EQ(pick_for_host({&gw, &api}, "api.example.com", 8443, true), "api-star");
  std::map<std::string, std::string> none;
  EXPECT_EQ(pick_for_host({&none}, "api.example.com", 443, true), "");
}

TEST(UpstreamPlan, ProxyUrls) {
  auto p = parse_proxy_url("http://user:p%40ss@proxy.internal:3128");
  ASSERT_TRUE(p) << p.error();
  EXPECT_EQ(p->host, "proxy.internal");
  EXPECT_EQ(p->port, 3128);
  EXPECT_EQ(p->authority, "proxy.internal:3128");
  EXPECT_EQ(p->authorization, "Basic dXNlcjpwQHNz");  // user:p@ss
  p = parse_proxy_url("http://10.0.0.1");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->port, 80);
  EXPECT_EQ(p->authorization, "");
  EXPECT_FALSE(parse_proxy_url("https://proxy:443"));
  EXPECT_FALSE(parse_proxy_url("not a url"));
  EXPECT_FALSE(parse_proxy_url("http://proxy:99999"));
}

TEST(UpstreamGuard, InternalRanges) {
  for (const char* a :
       {"127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
        "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1",
        "fd00:ec2::254", "fc00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a9fe:a9fe"})
    EXPECT_TRUE(UpstreamGuard::internal(ip::make_address(a))) << a;
  for (const char* a : {"8.8.8.8", "1.1.1.1", "172.32.0.1", "2001:4860:4860::8888",
                        "::ffff:8.8.8.8", "64:ff9b::808:808"})
    EXPECT_FALSE(UpstreamGuard::internal(ip::make_address(a))) << a;
}
