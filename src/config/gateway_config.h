// GatewayConfig: the tyk.conf fields Gatehouse reads, plus its own `gatehouse` object.
// Loaded once at start (and again on reload for the parts a reload may change).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "config/config_reader.h"

namespace gh::config {

struct CertificatePair {
  std::string domain_name;
  std::string cert_file;
  std::string key_file;
};

struct HttpServerOptions {
  bool use_ssl = false;
  bool enable_http2 = false;
  std::vector<CertificatePair> certificates;
  std::vector<std::string> ssl_certificates;  // PEM files holding certificate chain and key
  std::string server_name;
  int min_version = 771;                 // TLS 1.2
  int max_version = 772;                 // TLS 1.3
  std::vector<std::string> ssl_ciphers;  // Go names, as given
  std::string openssl_tls12_ciphers;     // mapped
  std::string openssl_tls13_suites;      // mapped, empty = OpenSSL default
  bool skip_client_ca_announcement = false;
  int read_timeout = 120;   // seconds
  int write_timeout = 120;  // seconds
  bool enable_path_prefix_matching = false;
  bool enable_path_suffix_matching = false;
  int64_t max_request_body_size = 0;  // 0 = Gatehouse default (see gatehouse.max_body_bytes)
};

struct PoliciesConfig {
  std::string policy_source;
  std::string policy_path;
  std::string policy_record_name;
};

struct StorageConfig {
  std::string type = "redis";
  std::string host = "localhost";
  int port = 6379;
  std::vector<std::string> addrs;
  std::string username;
  std::string password;
  int database = 0;
  bool enable_cluster = false;
  bool use_ssl = false;
  bool ssl_insecure_skip_verify = false;
  std::string ca_file, cert_file, key_file;
  std::string tls_min_version, tls_max_version;
};

struct SecurityConfig {
  std::string private_certificate_encoding_secret;
  bool control_api_use_mutual_tls = false;
  bool allow_unsafe_dynamic_mtls_token = false;
  std::map<std::string, std::string> pinned_public_keys;
  std::vector<std::string> certificates_apis;
  std::map<std::string, std::string> certificates_upstream;
  std::vector<std::string> certificates_control_api;
};

struct GatehouseOptions {
  std::string store_type = "embedded";
  std::string store_path = "./gatehouse.db";
  int workers = 0;  // 0 = one per core
  bool access_log = true;
  // RFC 9440: the client certificate verified by an mTLS API goes to its upstream as
  // Client-Cert / Client-Cert-Chain (those headers from clients are always removed).
  bool forward_client_cert = false;
  int64_t max_body_bytes = 64LL << 20;  // default request body limit (413 above it)
  int max_request_line = 8192;          // 414 above it
  int max_header_bytes = 32768;         // 431 above it
  int max_headers = 100;                // 431 above it
  int header_timeout = 10;              // seconds for a whole request head
  int idle_timeout = 60;                // seconds a keep-alive connection may stay idle
  int drain_timeout = 15;               // seconds SIGTERM waits for in-flight requests
  int upstream_connect_timeout = 5;     // seconds
  int upstream_idle_timeout = 30;       // seconds a pooled upstream connection is kept
  int max_connections_per_worker = 10000;
  int ticket_key_rotation = 6 * 3600;  // seconds between session-ticket key rotations
  // SSRF guard rails: refuse internal upstream addresses (after DNS), except `allow` (CIDRs).
  bool upstream_guard_deny_internal = false;
  std::vector<std::string> upstream_guard_allow;
  // HTTP/2 towards clients (with http_server_options.enable_http2): gatehouse.http2.*
  struct Http2 {
    int max_concurrent_streams = 100;
    int initial_window = 65535;       // bytes, per stream (request bodies)
    int connection_window = 1 << 20;  // bytes, per connection
    int max_continuations = 8;        // CONTINUATION frames per header block
    int reset_burst = 1000;           // RST_STREAM frames received: burst
    int reset_rate = 33;              // and per second
    int max_outbound_ack = 1000;      // unanswered SETTINGS/PING acknowledgements
    int control_frame_burst = 1000;   // PING/SETTINGS/PRIORITY/WINDOW_UPDATE/empty DATA: burst
    int control_frame_rate = 100;     // and per second
    int stream_buffer = 65536;        // response bytes buffered per stream before waiting
  } http2;
};

struct GatewayConfig {
  std::string file;  // path it was loaded from
  std::string listen_address;
  int listen_port = 8080;
  std::string hostname;
  std::string control_api_hostname;
  int control_api_port = 0;
  std::string secret;
  std::string node_secret;
  bool hash_keys = true;
  std::string hash_key_function = "murmur64";
  std::vector<std::string> hash_key_function_fallback;
  bool enable_hashed_keys_listing = false;
  int min_token_length = 3;
  bool allow_master_keys = false;
  std::string app_path = "./apps";
  PoliciesConfig policies;
  bool enable_custom_domains = false;
  HttpServerOptions http_server_options;
  SecurityConfig security;
  bool proxy_ssl_insecure_skip_verify = false;
  bool proxy_enable_http2 = false;
  int proxy_ssl_min_version = 771;
  int proxy_ssl_max_version = 772;
  std::vector<std::string> proxy_ssl_ciphers;
  bool proxy_ssl_disable_renegotiation = true;
  bool ssl_force_common_name_check = false;
  int proxy_default_timeout = 30;  // seconds for an upstream response
  StorageConfig storage;
  bool enable_redis_rolling_limiter = false;
  bool enable_fixed_window_rate_limiter = false;
  bool enable_sentinel_rate_limiter = false;
  double drl_threshold = 0;
  std::string rate_limit_response_headers;
  std::string health_check_endpoint_name = "hello";
  std::map<std::string, std::pair<int, std::string>> override_messages;
  GatehouseOptions gatehouse;

  // Warnings to log at start (insecure opt-ins); never secrets.
  std::vector<std::string> warnings;
};

// Loads and validates `path`. Throws ConfigError naming the file and the field.
GatewayConfig load_gateway_config(const std::string& path, const EnvLookup& env = process_env());
// The same from a JSON text (for tests); `file` is used in messages only.
GatewayConfig parse_gateway_config(const std::string& text, const std::string& file,
                                   const EnvLookup& env);

// Resolves a secret reference: env://NAME, file://PATH, secrets://NAME (the top-level
// "secrets" map), or a literal. Throws ConfigError for vault:// and consul:// (no client).
std::string resolve_secret(const std::string& value,
                           const std::map<std::string, std::string>& secrets,
                           const std::string& field, const std::string& file, const EnvLookup& env);

}  // namespace gh::config
