// Storage key names, as Tyk lays them out (so that Tyk and Gatehouse can share a Redis).
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace gh::store {

inline std::string apikey_key(std::string_view key_hash) {
  return "apikey-" + std::string(key_hash);
}
inline std::string quota_key(std::string_view key_hash, std::string_view scope = {}) {
  return scope.empty() ? "quota-" + std::string(key_hash)
                       : "quota-" + std::string(scope) + "-" + std::string(key_hash);
}
// The same into `out` (its capacity reused), for the request path.
inline void quota_key(std::string& out, std::string_view key_hash, std::string_view scope) {
  out.assign("quota-");
  if (!scope.empty()) out.append(scope).append("-");
  out.append(key_hash);
}
inline void rate_limit_key(std::string& out, std::string_view key_hash, std::string_view scope) {
  out.assign("rate-limit-");
  if (!scope.empty()) out.append(scope).append("-");
  out.append(key_hash);
}
inline std::string rate_limit_key(std::string_view key_hash, std::string_view scope = {}) {
  return scope.empty() ? "rate-limit-" + std::string(key_hash)
                       : "rate-limit-" + std::string(scope) + "-" + std::string(key_hash);
}
// One fixed window's counter (enable_fixed_window_rate_limiter), as Tyk names it:
// <rate key>/<window start in unix ns>. Appended to `rate_key` in place (no allocation of its own
// on the request path).
inline std::string fixed_window_key(std::string rate_key, int64_t window_start_ns) {
  char num[24];
  auto end = std::to_chars(num, num + sizeof num, window_start_ns).ptr;
  rate_key.append("/").append(num, static_cast<size_t>(end - num));
  return rate_key;
}
inline std::string cert_key(std::string_view cert_id) { return "cert-raw-" + std::string(cert_id); }

}  // namespace gh::store
