#include "auth/session.h"

#include <boost/json.hpp>

namespace gh::auth {

namespace json = boost::json;

bool Session::grants(std::string_view api_id, bool allow_master_keys) const {
  if (api_ids.empty()) return allow_master_keys;
  for (const auto& a : api_ids) {
    if (a == api_id) return true;
  }
  return false;
}

Result<Session> parse_session(const json::value& v) {
  if (!v.is_object()) return Error{"malformed: a session must be a JSON object"};
  Session s;
  s.raw = v.as_object();
  auto bad = [](const char* f, const char* what) {
    return Error{std::string("malformed: ") + f + ": expected " + what};
  };
  for (const char* f :
       {"rate", "per", "allowance", "quota_max", "quota_remaining", "quota_renewal_rate",
        "quota_renews", "expires", "throttle_interval", "throttle_retry_limit"}) {
    auto it = s.raw.find(f);
    if (it != s.raw.end() && !it->value().is_number() && !it->value().is_null())
      return bad(f, "a number");
  }
  for (const char* f : {"is_inactive", "hmac_enabled"}) {
    auto it = s.raw.find(f);
    if (it != s.raw.end() && !it->value().is_bool() && !it->value().is_null())
      return bad(f, "a boolean");
  }
  for (const char* f : {"org_id", "alias", "certificate", "hmac_string"}) {
    auto it = s.raw.find(f);
    if (it != s.raw.end() && !it->value().is_string() && !it->value().is_null())
      return bad(f, "a string");
  }
  for (const char* f : {"tags", "apply_policies", "mtls_static_certificate_bindings"}) {
    auto it = s.raw.find(f);
    if (it == s.raw.end() || it->value().is_null()) continue;
    if (!it->value().is_array()) return bad(f, "an array of strings");
    for (const auto& e : it->value().as_array())
      if (!e.is_string()) return bad(f, "an array of strings");
  }
  if (auto it = s.raw.find("meta_data");
      it != s.raw.end() && !it->value().is_null() && !it->value().is_object())
    return bad("meta_data", "an object");
  if (auto it = s.raw.find("org_id"); it != s.raw.end() && it->value().is_string())
    s.org_id = std::string(it->value().as_string());
  if (auto it = s.raw.find("certificate"); it != s.raw.end() && it->value().is_string())
    s.certificate = std::string(it->value().as_string());
  if (auto it = s.raw.find("mtls_static_certificate_bindings");
      it != s.raw.end() && it->value().is_array()) {
    for (const auto& e : it->value().as_array()) s.mtls_bindings.emplace_back(e.as_string());
  }
  if (auto it = s.raw.find("expires"); it != s.raw.end() && it->value().is_number())
    s.expires = static_cast<int64_t>(it->value().to_number<double>());
  if (auto it = s.raw.find("is_inactive"); it != s.raw.end() && it->value().is_bool())
    s.is_inactive = it->value().as_bool();
  if (auto it = s.raw.find("access_rights"); it != s.raw.end() && !it->value().is_null()) {
    if (!it->value().is_object()) return bad("access_rights", "an object");
    for (const auto& kv : it->value().as_object()) {
      if (!kv.value().is_object()) return bad("access_rights", "an object of objects");
      s.api_ids.emplace_back(kv.key());
    }
  }
  return s;
}

}  // namespace gh::auth
