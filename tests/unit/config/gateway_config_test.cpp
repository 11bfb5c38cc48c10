#include "config/gateway_config.h"

#include <gtest/gtest.h>

#include <map>

using gh::config::ConfigError;
using gh::config::EnvLookup;
using gh::config::parse_gateway_config;

namespace {
EnvLookup env_of(std::map<std::string, std::string> m) {
  return [m](const std::string& k) -> std::optional<std::string> {
    auto it = m.find(k);
    if (it == m.end()) return std::nullopt;
    return it->second;
  };
}
std::string error_of(const std::string& text, EnvLookup env = env_of({})) {
  try {
    parse_gateway_config(text, "/etc/tyk.conf", env);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(GatewayConfig, Defaults) {
  auto c = parse_gateway_config(R"({"secret":"s"})", "f", env_of({}));
  EXPECT_EQ(c.listen_port, 8080);
  EXPECT_TRUE(c.hash_keys);
  EXPECT_EQ(c.hash_key_function, "murmur64");
  EXPECT_EQ(c.http_server_options.min_version, 771);
  EXPECT_EQ(c.http_server_options.max_version, 772);
  EXPECT_EQ(c.gatehouse.store_type, "embedded");
  EXPECT_EQ(c.gatehouse.store_path, "./gatehouse.db");
  EXPECT_GE(c.gatehouse.workers, 1);
  EXPECT_EQ(c.health_check_endpoint_name, "hello");
  EXPECT_TRUE(c.warnings.empty());
}

TEST(GatewayConfig, RefusesEmptyOrMissingSecret) {
  EXPECT_NE(error_of(R"({})").find("\"secret\""), std::string::npos);
  EXPECT_NE(error_of(R"({"secret":""})").find("/etc/tyk.conf"), std::string::npos);
}

TEST(GatewayConfig, WrongTypeNamesFieldAndFile) {
  auto e = error_of(R"({"secret":"s","listen_port":"80"})");
  EXPECT_NE(e.find("/etc/tyk.conf"), std::string::npos) << e;
  EXPECT_NE(e.find("listen_port"), std::string::npos) << e;
  e = error_of(R"({"secret":"s","http_server_options":{"use_ssl":"yes"}})");
  EXPECT_NE(e.find("http_server_options.use_ssl"), std::string::npos) << e;
  e = error_of(R"({"secret":"s","http_server_options":{"min_version":999}})");
  EXPECT_NE(e.find("http_server_options.min_version"), std::string::npos) << e;
  e = error_of(R"({"secret":"s","gatehouse":{"store":{"type":"mongo"}}})");
  EXPECT_NE(e.find("gatehouse.store.type"), std::string::npos) << e;
  e = error_of(R"({"secret":"s","gatehouse":{"workers":-1}})");
  EXPECT_NE(e.find("gatehouse.workers"), std::string::npos) << e;
  e = error_of(R"({"secret":"s","http_server_options":{"ssl_ciphers":["TLS_NOPE"]}})");
  EXPECT_NE(e.find("TLS_NOPE"), std::string::npos) << e;
  EXPECT_NE(error_of("{not json").find("not valid JSON"), std::string::npos);
}

TEST(GatewayConfig, UnknownFieldsIgnored) {
  auto c = parse_gateway_config(R"({"secret":"s","no_such_field":{"x":1},"enable_analytics":true})",
                                "f", env_of({}));
  EXPECT_EQ(c.secret, "s");
}

TEST(GatewayConfig, EnvironmentOverrides) {
  auto c = parse_gateway_config(
      R"({"secret":"s","listen_port":8080,"http_server_options":{"use_ssl":false}})", "f",
      env_of({{"TYK_GW_LISTENPORT", "9999"},
              {"TYK_GW_SECRET", "from-env"},
              {"TYK_GW_HTTPSERVEROPTIONS_MINVERSION", "772"},
              {"TYK_GW_HTTPSERVEROPTIONS_SSLCIPHERS",
               "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"},
              {"TYK_GW_SECURITY_CONTROLAPIUSEMUTUALTLS", "true"},
              {"TYK_GW_SECURITY_PINNEDPUBLICKEYS", "*:abc,foo.com:def"},
              {"TYK_GW_STORAGE_HOST", "redis.local"},
              {"TYK_GW_HASHKEYS", "false"}}));
  EXPECT_EQ(c.listen_port, 9999);
  EXPECT_EQ(c.secret, "from-env");
  EXPECT_EQ(c.http_server_options.min_version, 772);
  EXPECT_EQ(c.http_server_options.openssl_tls12_ciphers,
            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384");
  EXPECT_TRUE(c.security.control_api_use_mutual_tls);
  EXPECT_EQ(c.security.pinned_public_keys.at("foo.com"), "def");
  EXPECT_EQ(c.storage.host, "redis.local");
  EXPECT_FALSE(c.hash_keys);
}

TEST(GatewayConfig, BadEnvironmentValueNamesVariable) {
  auto e = error_of(R"({"secret":"s"})", env_of({{"TYK_GW_LISTENPORT", "eighty"}}));
  EXPECT_NE(e.find("TYK_GW_LISTENPORT"), std::string::npos) << e;
  EXPECT_NE(e.find("listen_port"), std::string::npos) << e;
}

TEST(GatewayConfig, SecretReferences) {
  auto c = parse_gateway_config(R"({"secret":"env://GH_SECRET","node_secret":"secrets://n",
                                    "secrets":{"n":"node"}})",
                                "f", env_of({{"GH_SECRET", "abc"}}));
  EXPECT_EQ(c.secret, "abc");
  EXPECT_EQ(c.node_secret, "node");
  auto e = error_of(R"({"secret":"env://MISSING_VAR"})");
  EXPECT_NE(e.find("MISSING_VAR"), std::string::npos) << e;
  e = error_of(R"({"secret":"vault://x"})");
  EXPECT_NE(e.find("vault://"), std::string::npos) << e;
}

TEST(GatewayConfig, LegacyTlsWarns) {
  auto c = parse_gateway_config(R"({"secret":"s","http_server_options":{"min_version":769}})", "f",
                                env_of({}));
  EXPECT_EQ(c.http_server_options.min_version, 769);
  ASSERT_FALSE(c.warnings.empty());
}

TEST(GatewayConfig, UseSslNeedsCertificates) {
  auto e = error_of(R"({"secret":"s","http_server_options":{"use_ssl":true}})");
  EXPECT_NE(e.find("use_ssl"), std::string::npos) << e;
}

TEST(GatewayConfig, CertificatesShape) {
  auto e = error_of(
      R"({"secret":"s","http_server_options":{"certificates":[{"domain_name":"a","cert_file":"x"}]}})");
  EXPECT_NE(e.find("http_server_options.certificates[0].key_file"), std::string::npos) << e;
  auto c = parse_gateway_config(
      R"({"secret":"s","http_server_options":{"certificates":[{"domain_name":"A.Test","cert_file":"c","key_file":"k"}]}})",
      "f", env_of({}));
  ASSERT_EQ(c.http_server_options.certificates.size(), 1u);
  EXPECT_EQ(c.http_server_options.certificates[0].domain_name, "a.test");
}

TEST(GatewayConfig, EnvNameRule) {
  EXPECT_EQ(gh::config::env_name_for("listen_port"), "TYK_GW_LISTENPORT");
  EXPECT_EQ(gh::config::env_name_for("http_server_options.use_ssl"),
            "TYK_GW_HTTPSERVEROPTIONS_USESSL");
  EXPECT_EQ(gh::config::env_name_for("security.control_api_use_mutual_tls"),
            "TYK_GW_SECURITY_CONTROLAPIUSEMUTUALTLS");
}
