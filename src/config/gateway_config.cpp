#include "config/gateway_config.h"

#include <boost/json.hpp>
#include <thread>

#include "config/ciphers.h"
#include "core/util.h"

namespace gh::config {

namespace json = boost::json;

std::string resolve_secret(const std::string& value,
                           const std::map<std::string, std::string>& secrets,
                           const std::string& field, const std::string& file,
                           const EnvLookup& env) {
  auto fail = [&](const std::string& why) {
    throw ConfigError(file + ": field \"" + field + "\": " + why);
  };
  if (value.rfind("env://", 0) == 0) {
    auto name = value.substr(6);
    auto v = env ? env(name) : std::nullopt;
    if (!v) fail("environment variable " + name + " (from env://) is not set");
    return *v;
  }
  if (value.rfind("file://", 0) == 0) {
    auto path = value.substr(7);
    auto v = read_file(path);
    if (!v) fail("cannot read " + path + " (from file://)");
    std::string s = *v;
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    return s;
  }
  if (value.rfind("secrets://", 0) == 0) {
    auto name = value.substr(10);
    auto it = secrets.find(name);
    if (it == secrets.end())
      fail("secret \"" + name + "\" (from secrets://) is not in \"secrets\"");
    return it->second;
  }
  if (value.rfind("vault://", 0) == 0 || value.rfind("consul://", 0) == 0) {
    fail("vault:// and consul:// references are not supported by Gatehouse; use env:// or file://");
  }
  return value;
}

namespace {

int tls_version(const ConfigReader& r, std::string_view path, int def) {
  auto v = r.get_int(path);
  if (!v || *v == 0) return def;
  if (*v < 769 || *v > 772)
    r.fail(path, "must be 769 (TLS 1.0), 770 (TLS 1.1), 771 (TLS 1.2) or 772 (TLS 1.3), got " +
                     std::to_string(*v));
  return static_cast<int>(*v);
}

int positive_int(const ConfigReader& r, std::string_view path, int def, int min = 0,
                 int64_t max = INT32_MAX) {
  auto v = r.get_int(path);
  if (!v) return def;
  if (*v < min || *v > max)
    r.fail(path, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                     ", got " + std::to_string(*v));
  return static_cast<int>(*v);
}

void read_http_server_options(const ConfigReader& r, GatewayConfig& c) {
  auto& h = c.http_server_options;
  h.use_ssl = r.get_bool("http_server_options.use_ssl").value_or(false);
  h.enable_http2 = r.get_bool("http_server_options.enable_http2").value_or(false);
  h.server_name = r.get_string("http_server_options.server_name").value_or("");
  h.min_version = tls_version(r, "http_server_options.min_version", 771);
  h.max_version = tls_version(r, "http_server_options.max_version", 772);
  if (h.min_version > h.max_version)
    r.fail("http_server_options.min_version", "is greater than http_server_options.max_version");
  if (h.min_version < 771)
    c.warnings.push_back(
        "http_server_options.min_version allows TLS 1.0/1.1: deprecated and insecure protocol "
        "versions are enabled because the config asks for them");
  h.ssl_ciphers =
      r.get_string_list("http_server_options.ssl_ciphers").value_or(std::vector<std::string>{});
  if (!h.ssl_ciphers.empty()) {
    std::string unknown;
    auto m = map_ciphers(h.ssl_ciphers, &unknown);
    if (!m) r.fail("http_server_options.ssl_ciphers", "unknown cipher suite \"" + unknown + "\"");
    h.openssl_tls12_ciphers = m->tls12;
    h.openssl_tls13_suites = m->tls13;
  }
  h.skip_client_ca_announcement =
      r.get_bool("http_server_options.skip_client_ca_announcement").value_or(false);
  h.read_timeout = positive_int(r, "http_server_options.read_timeout", 120);
  if (h.read_timeout == 0) h.read_timeout = 120;
  h.write_timeout = positive_int(r, "http_server_options.write_timeout", 120);
  if (h.write_timeout == 0) h.write_timeout = 120;
  h.enable_path_prefix_matching =
      r.get_bool("http_server_options.enable_path_prefix_matching").value_or(false);
  h.enable_path_suffix_matching =
      r.get_bool("http_server_options.enable_path_suffix_matching").value_or(false);
  auto mbs = r.get_int("http_server_options.max_request_body_size");
  if (mbs) {
    if (*mbs < 0) r.fail("http_server_options.max_request_body_size", "must not be negative");
    h.max_request_body_size = *mbs;
  }
  h.ssl_certificates = r.get_string_list("http_server_options.ssl_certificates")
                           .value_or(std::vector<std::string>{});
  if (const auto* certs = r.get_raw("http_server_options.certificates")) {
    if (!certs->is_array()) r.fail("http_server_options.certificates", "expected an array");
    size_t i = 0;
    for (const auto& item : certs->as_array()) {
      std::string base = "http_server_options.certificates[" + std::to_string(i++) + "]";
      if (!item.is_object()) r.fail(base, "expected an object");
      CertificatePair p;
      auto str = [&](const char* k) -> std::string {
        auto it = item.as_object().find(k);
        if (it == item.as_object().end() || it->value().is_null()) return "";
        if (!it->value().is_string()) r.fail(base + "." + k, "expected a string");
        return std::string(it->value().as_string());
      };
      p.domain_name = to_lower(str("domain_name"));
      p.cert_file = str("cert_file");
      p.key_file = str("key_file");
      if (p.cert_file.empty()) r.fail(base + ".cert_file", "is required");
      if (p.key_file.empty()) r.fail(base + ".key_file", "is required");
      h.certificates.push_back(std::move(p));
    }
  }
  if (h.use_ssl && h.certificates.empty() && h.ssl_certificates.empty())
    r.fail("http_server_options.use_ssl",
           "is true but neither http_server_options.certificates nor ssl_certificates is set");
}

void read_security(const ConfigReader& r, GatewayConfig& c,
                   const std::map<std::string, std::string>& secrets, const EnvLookup& env) {
  auto& s = c.security;
  s.private_certificate_encoding_secret =
      resolve_secret(r.get_string("security.private_certificate_encoding_secret").value_or(""),
                     secrets, "security.private_certificate_encoding_secret", r.file(), env);
  s.control_api_use_mutual_tls = r.get_bool("security.control_api_use_mutual_tls").value_or(false);
  s.allow_unsafe_dynamic_mtls_token =
      r.get_bool("security.allow_unsafe_dynamic_mtls_token").value_or(false);
  if (s.allow_unsafe_dynamic_mtls_token)
    c.warnings.push_back(
        "security.allow_unsafe_dynamic_mtls_token is on: certificate-auth APIs accept the key's "
        "token without the certificate, and that token can be built by anyone who knows the "
        "certificate (no proof of its private key)");
  s.pinned_public_keys = r.get_string_map("security.pinned_public_keys")
                             .value_or(std::map<std::string, std::string>{});
  s.certificates_apis =
      r.get_string_list("security.certificates.apis").value_or(std::vector<std::string>{});
  s.certificates_upstream = r.get_string_map("security.certificates.upstream")
                                .value_or(std::map<std::string, std::string>{});
  s.certificates_control_api =
      r.get_string_list("security.certificates.control_api").value_or(std::vector<std::string>{});
}

void read_storage(const ConfigReader& r, GatewayConfig& c,
                  const std::map<std::string, std::string>& secrets, const EnvLookup& env) {
  auto& s = c.storage;
  s.type = r.get_string("storage.type").value_or("redis");
  s.host = r.get_string("storage.host").value_or("localhost");
  s.port = positive_int(r, "storage.port", 6379, 0, 65535);
  s.addrs = r.get_string_list("storage.addrs").value_or(std::vector<std::string>{});
  s.username = r.get_string("storage.username").value_or("");
  s.password = resolve_secret(r.get_string("storage.password").value_or(""), secrets,
                              "storage.password", r.file(), env);
  s.database = positive_int(r, "storage.database", 0, 0, 1 << 20);
  s.enable_cluster = r.get_bool("storage.enable_cluster").value_or(false);
  s.use_ssl = r.get_bool("storage.use_ssl").value_or(false);
  s.ssl_insecure_skip_verify = r.get_bool("storage.ssl_insecure_skip_verify").value_or(false);
  s.ca_file = r.get_string("storage.ca_file").value_or("");
  s.cert_file = r.get_string("storage.cert_file").value_or("");
  s.key_file = r.get_string("storage.key_file").value_or("");
  s.tls_min_version = r.get_string("storage.tls_min_version").value_or("");
  s.tls_max_version = r.get_string("storage.tls_max_version").value_or("");
}

void read_gatehouse(const ConfigReader& r, GatewayConfig& c) {
  auto& g = c.gatehouse;
  if (const auto* obj = r.get_raw("gatehouse"); obj && !obj->is_object())
    r.fail("gatehouse", "expected an object");
  g.store_type = r.get_string("gatehouse.store.type").value_or("embedded");
  if (g.store_type != "embedded" && g.store_type != "redis")
    r.fail("gatehouse.store.type",
           "must be \"embedded\" or \"redis\", got \"" + g.store_type + "\"");
  g.store_path = r.get_string("gatehouse.store.path").value_or("./gatehouse.db");
  if (g.store_path.empty()) r.fail("gatehouse.store.path", "must not be empty");
  g.workers = positive_int(r, "gatehouse.workers", 0, 0, 256);
  g.access_log = r.get_bool("gatehouse.access_log").value_or(true);
  g.forward_client_cert = r.get_bool("gatehouse.forward_client_cert").value_or(false);
  g.upstream_guard_deny_internal =
      r.get_bool("gatehouse.upstream_guard.deny_internal").value_or(false);
  g.upstream_guard_allow =
      r.get_string_list("gatehouse.upstream_guard.allow").value_or(std::vector<std::string>{});
  auto mb = r.get_int("gatehouse.max_body_bytes");
  if (mb) {
    if (*mb < 0) r.fail("gatehouse.max_body_bytes", "must not be negative");
    g.max_body_bytes = *mb;
  }
  g.max_request_line = positive_int(r, "gatehouse.max_request_line", 8192, 256, 1 << 20);
  g.max_header_bytes = positive_int(r, "gatehouse.max_header_bytes", 32768, 1024, 1 << 22);
  g.max_headers = positive_int(r, "gatehouse.max_headers", 100, 1, 10000);
  g.header_timeout = positive_int(r, "gatehouse.header_timeout", 10, 1, 3600);
  g.idle_timeout = positive_int(r, "gatehouse.idle_timeout", 60, 1, 86400);
  g.drain_timeout = positive_int(r, "gatehouse.drain_timeout", 15, 0, 3600);
  g.upstream_connect_timeout = positive_int(r, "gatehouse.upstream_connect_timeout", 5, 1, 600);
  g.upstream_idle_timeout = positive_int(r, "gatehouse.upstream_idle_timeout", 30, 1, 3600);
  g.ticket_key_rotation = positive_int(r, "gatehouse.ticket_key_rotation", 6 * 3600, 1, 7 * 86400);
  g.max_connections_per_worker =
      positive_int(r, "gatehouse.max_connections_per_worker", 10000, 1, 1000000);
  auto& h2 = g.http2;
  h2.max_concurrent_streams =
      positive_int(r, "gatehouse.http2.max_concurrent_streams", 100, 1, 10000);
  h2.initial_window = positive_int(r, "gatehouse.http2.initial_window", 65535, 1024, (1 << 30));
  h2.connection_window =
      positive_int(r, "gatehouse.http2.connection_window", 1 << 20, 65535, (1 << 30));
  h2.max_continuations = positive_int(r, "gatehouse.http2.max_continuations", 8, 1, 1000);
  h2.reset_burst = positive_int(r, "gatehouse.http2.reset_burst", 1000, 1, 1000000);
  h2.reset_rate = positive_int(r, "gatehouse.http2.reset_rate", 33, 1, 1000000);
  h2.max_outbound_ack = positive_int(r, "gatehouse.http2.max_outbound_ack", 1000, 1, 1000000);
  h2.control_frame_burst = positive_int(r, "gatehouse.http2.control_frame_burst", 1000, 1, 1000000);
  h2.control_frame_rate = positive_int(r, "gatehouse.http2.control_frame_rate", 100, 1, 1000000);
  h2.stream_buffer = positive_int(r, "gatehouse.http2.stream_buffer", 65536, 1024, 1 << 26);
}

}  // namespace

GatewayConfig parse_gateway_config(const std::string& text, const std::string& file,
                                   const EnvLookup& env) {
  json::value root;
  {
    boost::system::error_code ec;
    json::parse_options opts;
    opts.allow_comments = false;
    root = json::parse(text, ec, {}, opts);
    if (ec) throw ConfigError(file + ": not valid JSON: " + ec.message());
  }
  if (!root.is_object()) throw ConfigError(file + ": the top level must be a JSON object");
  ConfigReader r(root, file, env);
  GatewayConfig c;
  c.file = file;

  std::map<std::string, std::string> secrets;
  if (const auto* s = r.get_raw("secrets")) {
    if (!s->is_object()) r.fail("secrets", "expected an object");
    for (const auto& kv : s->as_object()) {
      if (!kv.value().is_string()) r.fail("secrets." + std::string(kv.key()), "expected a string");
      secrets.emplace(std::string(kv.key()), std::string(kv.value().as_string()));
    }
  }

  c.listen_address = r.get_string("listen_address").value_or("");
  c.listen_port = positive_int(r, "listen_port", 8080, 0, 65535);
  if (c.listen_port == 0) c.listen_port = 8080;
  c.hostname = to_lower(r.get_string("hostname").value_or(""));
  c.control_api_hostname = to_lower(r.get_string("control_api_hostname").value_or(""));
  c.control_api_port = positive_int(r, "control_api_port", 0, 0, 65535);
  c.secret = resolve_secret(r.get_string("secret").value_or(""), secrets, "secret", file, env);
  if (c.secret.empty())
    r.fail("secret",
           "is empty or absent: Gatehouse refuses to start with an unauthenticated control API");
  c.node_secret =
      resolve_secret(r.get_string("node_secret").value_or(""), secrets, "node_secret", file, env);
  c.hash_keys = r.get_bool("hash_keys").value_or(true);
  if (!c.hash_keys)
    c.warnings.push_back(
        "hash_keys is false: keys are stored in the store as they are, not hashed");
  c.hash_key_function = r.get_string("hash_key_function").value_or("murmur64");
  if (c.hash_key_function.empty()) c.hash_key_function = "murmur64";
  static const char* kHashes[] = {"murmur32", "murmur64", "murmur128", "sha256"};
  bool known = false;
  for (const char* h : kHashes) known = known || c.hash_key_function == h;
  if (!known)
    r.fail("hash_key_function", "must be one of murmur64, murmur128, sha256, murmur32; got \"" +
                                    c.hash_key_function + "\"");
  if (c.hash_key_function == "murmur32")
    r.fail("hash_key_function",
           "murmur32 is too short for new keys; list it in hash_key_function_fallback to read "
           "keys migrated from Tyk, and use murmur64, murmur128 or sha256 here");
  c.hash_key_function_fallback =
      r.get_string_list("hash_key_function_fallback").value_or(std::vector<std::string>{});
  for (const auto& f : c.hash_key_function_fallback) {
    bool ok = false;
    for (const char* h : kHashes) ok = ok || f == h;
    if (!ok) r.fail("hash_key_function_fallback", "unknown hash function \"" + f + "\"");
  }
  c.enable_hashed_keys_listing = r.get_bool("enable_hashed_keys_listing").value_or(false);
  c.min_token_length = positive_int(r, "min_token_length", 3, 0, 4096);
  if (c.min_token_length == 0) c.min_token_length = 3;
  c.allow_master_keys = r.get_bool("allow_master_keys").value_or(false);
  c.app_path = r.get_string("app_path").value_or("./apps");
  if (c.app_path.empty()) c.app_path = "./apps";
  c.policies.policy_source = r.get_string("policies.policy_source").value_or("");
  c.policies.policy_path = r.get_string("policies.policy_path").value_or("");
  c.policies.policy_record_name = r.get_string("policies.policy_record_name").value_or("");
  c.enable_custom_domains = r.get_bool("enable_custom_domains").value_or(false);

  read_http_server_options(r, c);
  read_security(r, c, secrets, env);

  c.proxy_ssl_insecure_skip_verify = r.get_bool("proxy_ssl_insecure_skip_verify").value_or(false);
  if (c.proxy_ssl_insecure_skip_verify)
    c.warnings.push_back(
        "proxy_ssl_insecure_skip_verify is true: upstream certificates are NOT verified");
  c.proxy_enable_http2 = r.get_bool("proxy_enable_http2").value_or(false);
  c.proxy_ssl_min_version = tls_version(r, "proxy_ssl_min_version", 771);
  c.proxy_ssl_max_version = tls_version(r, "proxy_ssl_max_version", 772);
  c.proxy_ssl_ciphers = r.get_string_list("proxy_ssl_ciphers").value_or(std::vector<std::string>{});
  if (!c.proxy_ssl_ciphers.empty()) {
    std::string unknown;
    if (!map_ciphers(c.proxy_ssl_ciphers, &unknown))
      r.fail("proxy_ssl_ciphers", "unknown cipher suite \"" + unknown + "\"");
  }
  c.proxy_ssl_disable_renegotiation = r.get_bool("proxy_ssl_disable_renegotiation").value_or(true);
  if (!c.proxy_ssl_disable_renegotiation)
    c.warnings.push_back(
        "proxy_ssl_disable_renegotiation is false: upstreams may renegotiate TLS 1.2 sessions "
        "(a source of CPU exhaustion and of mid-connection identity changes)");
  c.ssl_force_common_name_check = r.get_bool("ssl_force_common_name_check").value_or(false);
  c.proxy_default_timeout = positive_int(r, "proxy_default_timeout", 30, 0, 86400);
  if (c.proxy_default_timeout == 0) c.proxy_default_timeout = 30;

  read_storage(r, c, secrets, env);
  c.enable_redis_rolling_limiter = r.get_bool("enable_redis_rolling_limiter").value_or(false);
  c.enable_fixed_window_rate_limiter =
      r.get_bool("enable_fixed_window_rate_limiter").value_or(false);
  c.enable_sentinel_rate_limiter = r.get_bool("enable_sentinel_rate_limiter").value_or(false);
  c.drl_threshold = r.get_number("drl_threshold").value_or(0);
  c.rate_limit_response_headers = r.get_string("rate_limit_response_headers").value_or("");
  if (!c.rate_limit_response_headers.empty() && c.rate_limit_response_headers != "quotas" &&
      c.rate_limit_response_headers != "rate_limits")
    r.fail("rate_limit_response_headers", "must be \"quotas\" or \"rate_limits\"");
  c.health_check_endpoint_name = r.get_string("health_check_endpoint_name").value_or("hello");
  if (c.health_check_endpoint_name.empty()) c.health_check_endpoint_name = "hello";
  while (!c.health_check_endpoint_name.empty() && c.health_check_endpoint_name.front() == '/')
    c.health_check_endpoint_name.erase(0, 1);

  if (const auto* om = r.get_raw("override_messages")) {
    if (!om->is_object()) r.fail("override_messages", "expected an object");
    for (const auto& kv : om->as_object()) {
      std::string base = "override_messages." + std::string(kv.key());
      if (!kv.value().is_object()) r.fail(base, "expected an object with code and message");
      const auto& o = kv.value().as_object();
      int code = 0;
      std::string msg;
      if (auto it = o.find("code"); it != o.end()) {
        if (!it->value().is_int64() || it->value().as_int64() < 100 || it->value().as_int64() > 599)
          r.fail(base + ".code", "expected an HTTP status code");
        code = static_cast<int>(it->value().as_int64());
      }
      if (auto it = o.find("message"); it != o.end()) {
        if (!it->value().is_string()) r.fail(base + ".message", "expected a string");
        msg = std::string(it->value().as_string());
      }
      c.override_messages.emplace(std::string(kv.key()), std::make_pair(code, msg));
    }
  }

  read_gatehouse(r, c);
  if (c.gatehouse.workers == 0) {
    unsigned n = std::thread::hardware_concurrency();
    c.gatehouse.workers = n == 0 ? 1 : static_cast<int>(n);
  }
  if (c.control_api_port != 0 && c.control_api_port == c.listen_port)
    r.fail("control_api_port", "equals listen_port; use 0 to share the API listener");
  return c;
}

GatewayConfig load_gateway_config(const std::string& path, const EnvLookup& env) {
  auto text = read_file(path);
  if (!text) throw ConfigError(path + ": cannot read the config file");
  return parse_gateway_config(*text, path, env);
}

}  // namespace gh::config
