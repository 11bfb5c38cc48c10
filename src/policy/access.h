// Access: what a session (with its policies applied) allows, in the form the request path reads:
// per API the method/path allow list (compiled once) and the rate and quota that apply, with the
// counter scope. Built when a session enters a worker's cache, never per request.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.h"
#include "policy/url_match.h"

namespace gh::policy {

struct Limit {
  int64_t rate = 0;
  double per = 0;
  int64_t quota_max = -1;  // -1 = unlimited
  int64_t quota_renewal_rate = 0;
  double throttle_interval = 0;      // seconds between two checks of a rate-limited request
  int64_t throttle_retry_limit = 0;  // checks after the first (0: refused at once)
};

struct ApiAccess {
  std::vector<UrlRule> allowed_urls;  // empty = every path and method
  Limit limit;
  std::string scope;  // allowance_scope: counters are "<kind>-<scope>-<key>" when set
};

struct Access {
  Limit session_limit;  // the session's top-level fields
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, ApiAccess, NameHash, std::equal_to<>> apis;
  // The limit and counter scope for `api_id`: the API's own limit when the session holds one
  // (per-API limits or several ACL policies), else the session's.
  const ApiAccess* api(std::string_view api_id) const {
    auto it = apis.find(api_id);
    return it == apis.end() ? nullptr : &it->second;
  }
};

// Reads an (applied) session. `anchor_end` anchors every allowed_urls rule at the end as well
// (http_server_options.enable_path_suffix_matching).
Result<Access> build_access(const boost::json::object& session, bool anchor_end);

}  // namespace gh::policy
