#include "policy/access.h"

#include <boost/json.hpp>

namespace gh::policy {

namespace json = boost::json;

namespace {

int64_t num_i(const json::object& o, std::string_view f, int64_t dflt) {
  auto it = o.find(f);
  if (it == o.end() || !it->value().is_number()) return dflt;
  return static_cast<int64_t>(it->value().to_number<double>());
}
double num_d(const json::object& o, std::string_view f, double dflt) {
  auto it = o.find(f);
  if (it == o.end() || !it->value().is_number()) return dflt;
  return it->value().to_number<double>();
}

Limit read_limit(const json::object& o) {
  Limit l;
  l.rate = num_i(o, "rate", 0);
  l.per = num_d(o, "per", 0);
  l.quota_max = num_i(o, "quota_max", -1);
  l.quota_renewal_rate = num_i(o, "quota_renewal_rate", 0);
  l.throttle_interval = num_d(o, "throttle_interval", 0);
  l.throttle_retry_limit = num_i(o, "throttle_retry_limit", 0);
  return l;
}

// Tyk's APILimit.IsEmpty: a limit object with nothing set means "use the session's".
bool limit_empty(const json::object& o) {
  for (const char* f :
       {"rate", "per", "quota_max", "quota_renewal_rate", "quota_renews", "quota_remaining",
        "throttle_interval", "throttle_retry_limit", "max_query_depth"}) {
    auto it = o.find(f);
    if (it != o.end() && it->value().is_number() && it->value().to_number<double>() != 0)
      return false;
  }
  return true;
}

}  // namespace

Result<Access> build_access(const json::object& session, bool anchor_end) {
  Access a;
  a.session_limit = read_limit(session);
  auto ar = session.find("access_rights");
  if (ar == session.end() || !ar->value().is_object()) return a;
  for (const auto& kv : ar->value().as_object()) {
    if (!kv.value().is_object()) return Error{"access_rights: expected an object of objects"};
    const auto& right = kv.value().as_object();
    ApiAccess api;
    api.limit = a.session_limit;
    if (auto l = right.find("limit");
        l != right.end() && l->value().is_object() && !limit_empty(l->value().as_object())) {
      api.limit = read_limit(l->value().as_object());
      if (auto s = right.find("allowance_scope"); s != right.end() && s->value().is_string())
        api.scope = std::string(s->value().as_string());
    }
    if (auto u = right.find("allowed_urls"); u != right.end() && u->value().is_array()) {
      for (const auto& e : u->value().as_array()) {
        if (!e.is_object()) return Error{"allowed_urls: expected objects"};
        const auto& eo = e.as_object();
        auto url = eo.find("url");
        if (url == eo.end() || !url->value().is_string())
          return Error{"allowed_urls: \"url\" must be a string"};
        std::vector<std::string> methods;
        if (auto m = eo.find("methods"); m != eo.end() && m->value().is_array()) {
          for (const auto& me : m->value().as_array()) {
            if (!me.is_string()) return Error{"allowed_urls: \"methods\" must be strings"};
            methods.emplace_back(me.as_string());
          }
        }
        auto rule = UrlRule::compile(url->value().as_string(), std::move(methods), anchor_end);
        if (!rule) return Error{rule.error()};
        api.allowed_urls.push_back(std::move(rule.value()));
      }
    }
    a.apis.emplace(std::string(kv.key()), std::move(api));
  }
  return a;
}

}  // namespace gh::policy
