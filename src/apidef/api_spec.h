// ApiSpec: one API definition, normalised from Tyk Classic or Tyk OAS into the form the request
// path reads. Immutable once built; shared by every worker through the Snapshot.
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace gh::apidef {

struct TargetUrl {
  std::string scheme;  // "http", "https" or "h2c" (HTTP/2 without TLS)
  std::string host;    // without brackets for IPv6
  uint16_t port = 0;
  std::string authority;  // Host header value towards the upstream
  std::string path;       // base path, no trailing slash ("" for root)
  std::string query;      // without '?'
  bool tls() const { return scheme == "https"; }
  bool h2c() const { return scheme == "h2c"; }
};

enum class AuthKind {
  kKeyless,
  kAuthToken,
  kBasic,
  kJwt,
  kHmac,
  kOAuth2,
  kOpenId,
  kCertificate,
  kMulti,
};

struct TokenSource {
  std::string header_name = "Authorization";
  bool use_header = true;
  bool use_param = false;
  std::string param_name;
  bool use_cookie = false;
  std::string cookie_name;
};

struct Transport {
  bool ssl_insecure_skip_verify = false;
  std::vector<std::string> ssl_ciphers;
  int ssl_min_version = 0;
  int ssl_max_version = 0;
  bool ssl_force_common_name_check = false;
  std::string proxy_url;
};

struct ApiSpec {
  std::string api_id;
  std::string org_id;
  std::string name;
  bool active = true;
  bool is_oas = false;
  AuthKind auth = AuthKind::kAuthToken;
  TokenSource token;
  bool strip_auth_data = false;
  std::string listen_path;  // normalised: leading '/', no trailing '/', "" for the root
  bool strip_listen_path = false;
  TargetUrl target;
  bool preserve_host_header = false;
  std::string domain;  // lower-case, without port; empty = any host
  std::vector<std::string> certificates;
  // Static mutual TLS: the client's certificate must be one of these (store ids, files or inline
  // PEM), or be signed by a CA certificate among them.
  bool use_mutual_tls_auth = false;
  std::vector<std::string> client_certificates;
  Transport transport;
  // Upstream mutual TLS: host pattern ("*", "*.parent", "*.parent:port", "host", "host:port") ->
  // certificate (store id, file or inline PEM) presented to that upstream.
  std::map<std::string, std::string> upstream_certificates;
  // Certificate pinning: host pattern -> comma-separated public keys (store ids, files or inline
  // PEM); one of the upstream chain's keys must be listed.
  std::map<std::string, std::string> pinned_public_keys;
  int64_t global_rate = 0;  // global_rate_limit (Classic) / upstream.rateLimit (OAS)
  double global_per = 0;
  std::string global_limit_key;     // the API-wide limiter's counter name, made at load time
  bool disable_rate_limit = false;  // key rate limits and the API-wide one are not applied
  bool disable_quota = false;       // quotas are not applied
  boost::json::value definition;    // the document as loaded (Classic or OAS)
  std::string source_file;          // the file in app_path it came from
};

}  // namespace gh::apidef
