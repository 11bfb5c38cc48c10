#include "apidef/api_loader.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

using namespace gh::apidef;
namespace json = boost::json;

TEST(ApiLoader, ClassicKeyless) {
  auto doc = json::parse(R"({"name":"Echo","api_id":"echo","org_id":"o","active":true,
    "use_keyless":true,"proxy":{"listen_path":"/echo/","target_url":"https://Up.Test:8443/base/?k=v",
    "strip_listen_path":true},"domain":"Api.Test:443"})");
  auto s = load_classic(doc);
  ASSERT_TRUE(s.ok()) << s.error();
  EXPECT_EQ(s->listen_path, "/echo");
  EXPECT_EQ(s->auth, AuthKind::kKeyless);
  EXPECT_EQ(s->target.scheme, "https");
  EXPECT_EQ(s->target.host, "up.test");
  EXPECT_EQ(s->target.port, 8443);
  EXPECT_EQ(s->target.path, "/base");
  EXPECT_EQ(s->target.query, "k=v");
  EXPECT_EQ(s->domain, "api.test");
}

TEST(ApiLoader, ClassicAuthDefaults) {
  auto s = load_classic(json::parse(
      R"({"api_id":"a","active":true,"proxy":{"listen_path":"/a","target_url":"http://h"}})"));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->auth, AuthKind::kAuthToken);
  EXPECT_EQ(s->token.header_name, "Authorization");
  EXPECT_EQ(s->target.port, 80);
  s = load_classic(json::parse(R"({"api_id":"a","use_basic_auth":true,"enable_jwt":true,
    "proxy":{"listen_path":"/a","target_url":"http://h"}})"));
  EXPECT_EQ(s->auth, AuthKind::kMulti);
}

TEST(ApiLoader, ClassicValidation) {
  auto s = load_classic(json::parse(R"({"api_id":"a","auth_configs":{"authToken":
    {"disable_header":true}},"proxy":{"listen_path":"/a","target_url":"http://h"}})"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(validation_message(s.error()),
            "Validation of API Definition failed. Reason: all auth sources are disabled for "
            "authToken, at least one of header/cookie/query must be enabled.");
  s = load_classic(
      json::parse(R"({"api_id":"a","active":"yes","proxy":{"target_url":"http://h"}})"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().rfind("malformed: ", 0), 0u);
  s = load_classic(json::parse(R"({"api_id":"a","proxy":{"target_url":"ftp://h"}})"));
  EXPECT_FALSE(s.ok());
  s = load_classic(json::parse(R"({"api_id":"a","proxy":{"target_url":"http://u:p@h"}})"));
  EXPECT_FALSE(s.ok());
}

TEST(ApiLoader, Oas) {
  auto doc = json::parse(R"({"openapi":"3.0.3","info":{"title":"t","version":"1"},"paths":{},
    "components":{"securitySchemes":{"k":{"type":"apiKey","in":"header","name":"X-Key"}}},
    "x-tyk-api-gateway":{"info":{"id":"oas1","name":"t","state":{"active":true}},
      "upstream":{"url":"http://127.0.0.1:9/"},
      "server":{"listenPath":{"value":"/oas/","strip":true},
        "authentication":{"enabled":true,"securitySchemes":{"k":{"enabled":true}}},
        "customDomain":{"enabled":true,"name":"o.test"}}}})");
  ASSERT_TRUE(is_oas_document(doc));
  auto s = load_any(doc);
  ASSERT_TRUE(s.ok()) << s.error();
  EXPECT_TRUE(s->is_oas);
  EXPECT_EQ(s->api_id, "oas1");
  EXPECT_EQ(s->listen_path, "/oas");
  EXPECT_TRUE(s->strip_listen_path);
  EXPECT_EQ(s->auth, AuthKind::kAuthToken);
  EXPECT_EQ(s->token.header_name, "X-Key");
  EXPECT_EQ(s->domain, "o.test");
}

TEST(ApiLoader, OasKeylessWhenAuthDisabled) {
  auto s = load_any(json::parse(R"({"openapi":"3.0.3","info":{},"paths":{},
    "x-tyk-api-gateway":{"info":{"id":"x","state":{"active":true}},"upstream":{"url":"http://h"},
    "server":{"listenPath":{"value":"/"}}}})"));
  ASSERT_TRUE(s.ok()) << s.error();
  EXPECT_EQ(s->auth, AuthKind::kKeyless);
  EXPECT_EQ(s->listen_path, "");
}

TEST(ApiLoader, ApiIds) {
  EXPECT_TRUE(valid_api_id("abc-DEF_1.2~"));
  EXPECT_FALSE(valid_api_id(""));
  EXPECT_FALSE(valid_api_id(".."));
  EXPECT_FALSE(valid_api_id("a/b"));
  EXPECT_FALSE(valid_api_id("a%2Fb"));
}

TEST(ApiLoader, CertificateAuthInEverySpelling) {
  // Classic: use_certificate on the token method.
  auto s = load_classic(json::parse(R"({"api_id":"a","use_standard_auth":true,
    "auth_configs":{"authToken":{"use_certificate":true}},
    "proxy":{"listen_path":"/a","target_url":"http://h"}})"));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->auth, AuthKind::kCertificate);
  // OAS: certificateAuth, and the token scheme's legacy enableClientCertificate.
  const char* oas = R"({"openapi":"3.0.3","info":{"title":"t","version":"1"},"paths":{},
    "components":{"securitySchemes":{"k":{"type":"apiKey","in":"header","name":"X-Key"}}},
    "x-tyk-api-gateway":{"info":{"id":"o","name":"o","state":{"active":true}},
      "upstream":{"url":"http://h"},"server":{"listenPath":{"value":"/o"},
        "authentication":{"enabled":true,"securitySchemes":{"k":{"enabled":true%s}}%s}}}})";
  char buf[1024];
  std::snprintf(buf, sizeof buf, oas, "", R"(,"certificateAuth":{"enabled":true})");
  auto o = load_oas(json::parse(buf));
  ASSERT_TRUE(o.ok()) << o.error();
  EXPECT_EQ(o->auth, AuthKind::kCertificate);
  std::snprintf(buf, sizeof buf, oas, R"(,"enableClientCertificate":true)", "");
  o = load_oas(json::parse(buf));
  ASSERT_TRUE(o.ok()) << o.error();
  EXPECT_EQ(o->auth, AuthKind::kCertificate);
  EXPECT_EQ(o->token.header_name, "X-Key");
  std::snprintf(buf, sizeof buf, oas, "", R"(,"certificateAuth":{"enabled":false})");
  o = load_oas(json::parse(buf));
  ASSERT_TRUE(o.ok()) << o.error();
  EXPECT_EQ(o->auth, AuthKind::kAuthToken);
}
