#include "policy/policy.h"

#include <algorithm>
#include <boost/json.hpp>
#include <filesystem>

#include "core/util.h"
#include "policy/access.h"

namespace gh::policy {

namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

bool get_bool(const json::object& o, std::string_view f) {
  auto it = o.find(f);
  return it != o.end() && it->value().is_bool() && it->value().as_bool();
}

}  // namespace

bool valid_policy_id(std::string_view id) {
  if (id.empty() || id == "." || id == "..") return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '~';
    if (!ok) return false;
  }
  return true;
}

Result<Policy> parse_policy(const json::value& v) {
  if (!v.is_object()) return Error{"a policy must be a JSON object"};
  Policy p;
  p.raw = v.as_object();
  const auto& o = p.raw;
  auto bad = [](const char* f, const char* what) {
    return Error{std::string("field \"") + f + "\": expected " + what};
  };
  for (const char* f : {"rate", "per", "quota_max", "quota_renewal_rate", "throttle_interval",
                        "throttle_retry_limit", "key_expires_in", "max_query_depth"}) {
    auto it = o.find(f);
    if (it != o.end() && !it->value().is_number() && !it->value().is_null())
      return bad(f, "a number");
  }
  for (const char* f : {"id", "_id", "name", "org_id"}) {
    auto it = o.find(f);
    if (it != o.end() && !it->value().is_string() && !it->value().is_null())
      return bad(f, "a string");
  }
  for (const char* f : {"active", "is_inactive", "hmac_enabled"}) {
    auto it = o.find(f);
    if (it != o.end() && !it->value().is_bool() && !it->value().is_null())
      return bad(f, "a boolean");
  }
  for (const char* f : {"tags", "mtls_static_certificate_bindings"}) {
    auto it = o.find(f);
    if (it == o.end() || it->value().is_null()) continue;
    if (!it->value().is_array()) return bad(f, "an array of strings");
    for (const auto& t : it->value().as_array())
      if (!t.is_string()) return bad(f, "an array of strings");
  }
  if (auto it = o.find("meta_data");
      it != o.end() && !it->value().is_null() && !it->value().is_object())
    return bad("meta_data", "an object");
  if (auto it = o.find("access_rights"); it != o.end() && !it->value().is_null()) {
    if (!it->value().is_object()) return bad("access_rights", "an object");
    for (const auto& kv : it->value().as_object()) {
      if (!kv.value().is_object()) return bad("access_rights", "an object of objects");
      const auto& r = kv.value().as_object();
      if (auto u = r.find("allowed_urls"); u != r.end() && !u->value().is_null()) {
        if (!u->value().is_array()) return bad("allowed_urls", "an array");
        for (const auto& e : u->value().as_array()) {
          if (!e.is_object() || !e.as_object().contains("url") ||
              !e.as_object().at("url").is_string())
            return bad("allowed_urls", "objects with a string \"url\"");
          const auto& eo = e.as_object();
          if (auto m = eo.find("methods"); m != eo.end() && !m->value().is_null()) {
            if (!m->value().is_array()) return bad("allowed_urls.methods", "an array of strings");
            for (const auto& me : m->value().as_array())
              if (!me.is_string()) return bad("allowed_urls.methods", "an array of strings");
          }
        }
      }
      if (auto l = r.find("limit");
          l != r.end() && !l->value().is_null() && !l->value().is_object())
        return bad("limit", "an object");
    }
  }
  if (auto it = o.find("partitions"); it != o.end() && !it->value().is_null()) {
    if (!it->value().is_object()) return bad("partitions", "an object");
    const auto& po = it->value().as_object();
    p.partitions.quota = get_bool(po, "quota");
    p.partitions.rate_limit = get_bool(po, "rate_limit");
    p.partitions.acl = get_bool(po, "acl");
    p.partitions.complexity = get_bool(po, "complexity");
    p.partitions.per_api = get_bool(po, "per_api");
  }
  if (auto a = build_access(p.raw, false); !a) return Error{a.error()};
  if (auto it = o.find("id"); it != o.end() && it->value().is_string())
    p.id = std::string(it->value().as_string());
  if (p.id.empty()) {
    if (auto it = o.find("_id"); it != o.end() && it->value().is_string())
      p.id = std::string(it->value().as_string());
  }
  if (auto it = o.find("org_id"); it != o.end() && it->value().is_string())
    p.org_id = std::string(it->value().as_string());
  return p;
}

PolicySet load_policies(const std::string& dir, const std::string& record_file,
                        std::vector<std::string>* problems) {
  PolicySet set;
  std::error_code ec;
  std::vector<fs::path> files;
  if (!dir.empty()) {
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->path().extension() == ".json" && it->is_regular_file(ec)) files.push_back(it->path());
    }
    if (ec && problems) problems->push_back(dir + ": cannot read policy_path: " + ec.message());
  } else if (!record_file.empty()) {
    files.push_back(record_file);
  }
  std::sort(files.begin(), files.end());
  auto add = [&](const json::value& doc, const std::string& file, std::string_view key) {
    auto p = parse_policy(doc);
    if (!p) {
      if (problems) problems->push_back(file + ": policy skipped: " + p.error());
      return;
    }
    if (p->id.empty()) p->id = std::string(key);
    if (!valid_policy_id(p->id)) {
      if (problems) problems->push_back(file + ": policy skipped: invalid id");
      return;
    }
    p->source_file = key.empty() ? file : std::string();
    if (set.by_id.count(p->id)) {
      if (problems) problems->push_back(file + ": duplicate policy id " + p->id + ", skipped");
      return;
    }
    auto id = p->id;
    set.by_id.emplace(std::move(id), std::make_shared<const Policy>(std::move(p.value())));
  };
  for (const auto& f : files) {
    auto text = read_file(f.string());
    if (!text) {
      if (problems) problems->push_back(f.string() + ": cannot read");
      continue;
    }
    boost::system::error_code jec;
    auto doc = json::parse(*text, jec);
    if (jec || !doc.is_object()) {
      if (problems) problems->push_back(f.string() + ": not a JSON object");
      continue;
    }
    const auto& o = doc.as_object();
    // Tyk's single policies.json is an object of id -> policy; a policy file has policy fields.
    bool is_map = dir.empty() || (!o.empty() && !o.contains("access_rights") && !o.contains("id") &&
                                  !o.contains("rate") && !o.contains("name"));
    if (is_map) {
      for (const auto& kv : o) {
        if (kv.value().is_object()) add(kv.value(), f.string(), kv.key());
      }
    } else {
      add(doc, f.string(), "");
    }
  }
  return set;
}

std::vector<std::string> policy_ids(const json::object& session) {
  std::vector<std::string> ids;
  auto push = [&](std::string_view id) {
    if (id.empty()) return;
    for (const auto& e : ids)
      if (e == id) return;
    ids.emplace_back(id);
  };
  if (auto it = session.find("apply_policies"); it != session.end() && it->value().is_array()) {
    for (const auto& e : it->value().as_array())
      if (e.is_string()) push(e.as_string());
  }
  if (ids.empty()) {
    if (auto it = session.find("apply_policy_id"); it != session.end() && it->value().is_string())
      push(it->value().as_string());
  }
  return ids;
}

}  // namespace gh::policy

// ---------------------------------------------------------------------------------------------
// Applying policies: Tyk's rules (internal/policy/apply.go), on the session's JSON.
namespace gh::policy {

namespace {

double num(const json::object& o, std::string_view f) {
  auto it = o.find(f);
  return it != o.end() && it->value().is_number() ? it->value().to_number<double>() : 0;
}
int64_t inum(const json::object& o, std::string_view f) { return static_cast<int64_t>(num(o, f)); }

const json::object* obj(const json::object& o, std::string_view f) {
  auto it = o.find(f);
  return it != o.end() && it->value().is_object() ? &it->value().as_object() : nullptr;
}

// The rate/quota part of a policy or session: Tyk's APILimit.
struct Lim {
  double rate = 0, per = 0;
  double throttle_interval = 0;  // Tyk: float64 seconds
  int64_t throttle_retry_limit = 0, max_query_depth = 0;
  int64_t quota_max = 0, quota_renews = 0, quota_remaining = 0, quota_renewal_rate = 0;

  static Lim from(const json::object& o) {
    Lim l;
    l.rate = num(o, "rate");
    l.per = num(o, "per");
    l.throttle_interval = num(o, "throttle_interval");
    l.throttle_retry_limit = inum(o, "throttle_retry_limit");
    l.max_query_depth = inum(o, "max_query_depth");
    l.quota_max = inum(o, "quota_max");
    l.quota_renews = inum(o, "quota_renews");
    l.quota_remaining = inum(o, "quota_remaining");
    l.quota_renewal_rate = inum(o, "quota_renewal_rate");
    return l;
  }
  bool empty() const {
    return rate == 0 && per == 0 && throttle_interval == 0 && throttle_retry_limit == 0 &&
           max_query_depth == 0 && quota_max == 0 && quota_renews == 0 && quota_remaining == 0 &&
           quota_renewal_rate == 0;
  }
  // Seconds between two admitted requests; 0 = unlimited.
  double duration() const { return rate <= 0 || per <= 0 ? 0 : per / rate; }
  void write(json::object& o) const {
    o["rate"] = rate;
    o["per"] = per;
    o["throttle_interval"] = throttle_interval;
    o["throttle_retry_limit"] = throttle_retry_limit;
    o["max_query_depth"] = max_query_depth;
    o["quota_max"] = quota_max;
    o["quota_renews"] = quota_renews;
    o["quota_remaining"] = quota_remaining;
    o["quota_renewal_rate"] = quota_renewal_rate;
  }
  bool operator==(const Lim&) const = default;
};

// -1 (unlimited) beats everything; nothing beats -1.
bool greater(int64_t a, int64_t b) {
  if (a == -1) return a != b;
  if (b == -1) return false;
  return a > b;
}

// The policy's rate wins when it admits more requests per unit of time.
void apply_rate(Lim& cur, const Lim& pol) {
  if (pol.rate == 0 || pol.per == 0) return;
  if (cur.rate == 0 || cur.per == 0 || cur.duration() > pol.duration()) {
    cur.rate = pol.rate;
    cur.per = pol.per;
  }
}

struct Right {
  json::object def;  // the access definition being built (limit kept apart)
  Lim limit;
  bool acl = false, quota = false, rate = false, complexity = false;
  std::string set_by;
};

void union_strings(json::object& into, const json::object& from, std::string_view field) {
  auto src = from.find(field);
  if (src == from.end() || !src->value().is_array()) return;
  auto& dst = into[field];
  if (!dst.is_array()) dst = json::array();
  auto& arr = dst.as_array();
  for (const auto& v : src->value().as_array()) {
    bool have = false;
    for (const auto& e : arr) have = have || e == v;
    if (!have) arr.push_back(v);
  }
}

// allowed_urls merged by exact url, methods unioned, first-seen order kept.
void merge_urls(json::object& into, const json::object& from) {
  auto src = from.find("allowed_urls");
  if (src == from.end() || !src->value().is_array()) return;
  auto& dst = into["allowed_urls"];
  if (!dst.is_array()) dst = json::array();
  auto& arr = dst.as_array();
  for (const auto& v : src->value().as_array()) {
    if (!v.is_object()) continue;
    const auto& vo = v.as_object();
    auto url = vo.find("url");
    if (url == vo.end()) continue;
    json::object* found = nullptr;
    for (auto& e : arr) {
      if (e.is_object() && e.as_object().contains("url") && e.as_object().at("url") == url->value())
        found = &e.as_object();
    }
    if (!found) {
      json::object n;
      n["url"] = url->value();
      n["methods"] = json::array();
      arr.push_back(std::move(n));
      found = &arr.back().as_object();
    }
    union_strings(*found, vo, "methods");
  }
}

}  // namespace

Result<json::object> apply_policies(const json::object& session, const PolicySet& policies,
                                    std::string_view api_org) {
  json::object out = session;
  auto ids = policy_ids(session);
  const json::object* own_rights = obj(session, "access_rights");
  if (ids.empty()) {
    // No policies: a per-API limit of the key's own counts on its own.
    if (auto it = out.find("access_rights"); it != out.end() && it->value().is_object()) {
      for (auto& kv : it->value().as_object()) {
        if (!kv.value().is_object()) continue;
        auto& r = kv.value().as_object();
        if (const auto* l = obj(r, "limit"); l && !Lim::from(*l).empty())
          r["allowance_scope"] = kv.key();
      }
    }
    return out;
  }
  Lim root = Lim::from(session);
  // Tyk clears what each policy will set before applying any (up to a missing policy).
  for (const auto& id : ids) {
    const Policy* p = policies.find(id);
    if (!p) break;
    bool all = !p->partitions.any() && !p->partitions.per_api;
    if (all || p->partitions.quota) root.quota_max = root.quota_remaining = 0;
    if (all || p->partitions.rate_limit) {
      root.rate = root.per = 0;
      root.throttle_interval = root.throttle_retry_limit = 0;
    }
    if (all || p->partitions.complexity) root.max_query_depth = 0;
  }

  std::vector<std::pair<std::string, Right>> rights;  // in first-granted order
  auto right = [&](const std::string& api) -> Right* {
    for (auto& [k, r] : rights)
      if (k == api) return &r;
    return nullptr;
  };
  // Strings united in first-seen order (tags, certificate bindings).
  auto unite = [](std::vector<std::string>& into) {
    return [&into](const json::value& t) {
      if (!t.is_string()) return;
      if (std::find(into.begin(), into.end(), t.as_string()) == into.end())
        into.emplace_back(t.as_string());
    };
  };
  std::vector<std::string> tags, bindings;
  auto add_tag = unite(tags);
  auto add_binding = unite(bindings);
  if (auto it = session.find("mtls_static_certificate_bindings");
      it != session.end() && it->value().is_array()) {
    for (const auto& v : it->value().as_array()) add_binding(v);
  }
  json::object meta = obj(session, "meta_data") ? *obj(session, "meta_data") : json::object();
  bool inactive = false;
  if (auto it = session.find("is_inactive"); it != session.end() && it->value().is_bool())
    inactive = it->value().as_bool();
  bool hmac = false;
  if (auto it = session.find("hmac_enabled"); it != session.end() && it->value().is_bool())
    hmac = it->value().as_bool();
  std::string last_updated;
  if (auto it = session.find("last_updated"); it != session.end() && it->value().is_string())
    last_updated = std::string(it->value().as_string());
  std::string expected_org(api_org);
  if (auto it = session.find("org_id");
      it != session.end() && it->value().is_string() && !it->value().as_string().empty())
    expected_org = std::string(it->value().as_string());
  bool did_partition = false, did_per_api = false;

  for (const auto& id : ids) {
    const Policy* p = policies.find(id);
    if (!p) {
      if (ids.size() > 1) continue;
      return Error{"policy not found: \"" + id + "\""};
    }
    if ((!expected_org.empty() && p->org_id != expected_org) ||
        (!api_org.empty() && p->org_id != api_org))
      return Error{"attempting to apply policy from different organisation to key, skipping"};
    if (p->partitions.per_api && p->partitions.any())
      return Error{"cannot apply policy " + p->id + " which has per_api and any of partitions set"};
    const json::object* pa = obj(p->raw, "access_rights");
    Lim pl = Lim::from(p->raw);
    if (p->partitions.per_api) {
      if (did_partition)
        return Error{
            "cannot apply multiple policies when some have per_api set and some are partitioned"};
      did_per_api = true;
      for (const auto& kv : pa ? *pa : json::object()) {
        if (!kv.value().is_object()) continue;
        std::string api(kv.key());
        Right n;
        n.def = kv.value().as_object();
        n.def.erase("limit");
        const auto* l = obj(kv.value().as_object(), "limit");
        std::string scope = api;
        if (l && !Lim::from(*l).empty()) {
          n.limit = Lim::from(*l);
        } else {
          n.limit = pl;
          scope = p->id;
        }
        n.def["allowance_scope"] = scope;
        n.set_by = scope;
        if (own_rights) {
          if (const auto* o = obj(*own_rights, api)) {
            if (const auto* ol = obj(*o, "limit"); ol && !Lim::from(*ol).empty())
              n.limit.quota_renews = Lim::from(*ol).quota_renews;
          }
        }
        n.acl = n.quota = n.rate = n.complexity = true;
        if (Right* old = right(api)) {
          // Two per-API policies on one API: the more generous limits win.
          Lim merged = n.limit;
          if (old->limit.rate != 0 && old->limit.per != 0 &&
              (merged.rate == 0 || merged.per == 0 || old->limit.duration() < merged.duration())) {
            merged.rate = old->limit.rate;
            merged.per = old->limit.per;
          }
          if (greater(old->limit.quota_max, merged.quota_max))
            merged.quota_max = old->limit.quota_max;
          merged.quota_renewal_rate =
              std::max(merged.quota_renewal_rate, old->limit.quota_renewal_rate);
          if (merged.quota_max == -1) merged.quota_renewal_rate = 0;
          if (merged == old->limit) {
            n.set_by = old->set_by;
            if (auto s = old->def.find("allowance_scope"); s != old->def.end())
              n.def["allowance_scope"] = s->value();
          }
          n.limit = merged;
          *old = std::move(n);
        } else {
          rights.emplace_back(api, std::move(n));
        }
      }
    } else {
      bool use = p->partitions.any();
      if (use && did_per_api)
        return Error{
            "cannot apply multiple policies when some have per_api set and some are partitioned"};
      did_partition = use;
      const auto& parts = p->partitions;
      for (const auto& kv : pa ? *pa : json::object()) {
        if (!kv.value().is_object()) continue;
        const auto& def = kv.value().as_object();
        std::string api(kv.key());
        Right* ar = right(api);
        if (!ar) {
          rights.emplace_back(api, Right{});
          ar = &rights.back().second;
          ar->def["api_id"] = api;
          if (auto n = def.find("api_name"); n != def.end()) ar->def["api_name"] = n->value();
        }
        if (!use || parts.acl) {
          ar->acl = true;
          union_strings(ar->def, def, "versions");
          merge_urls(ar->def, def);
          ar->set_by = p->id;
        }
        if (!use || parts.quota) {
          ar->quota = true;
          if (greater(pl.quota_max, ar->limit.quota_max)) {
            ar->limit.quota_max = pl.quota_max;
            if (greater(pl.quota_max, root.quota_max)) root.quota_max = pl.quota_max;
          }
          if (pl.quota_renewal_rate > ar->limit.quota_renewal_rate) {
            ar->limit.quota_renewal_rate = pl.quota_renewal_rate;
            root.quota_renewal_rate = std::max(root.quota_renewal_rate, pl.quota_renewal_rate);
          }
        }
        if (!use || parts.rate_limit) {
          ar->rate = true;
          apply_rate(ar->limit, pl);
          apply_rate(root, pl);
          ar->limit.throttle_retry_limit =
              std::max(ar->limit.throttle_retry_limit, pl.throttle_retry_limit);
          ar->limit.throttle_interval = std::max(ar->limit.throttle_interval, pl.throttle_interval);
          root.throttle_retry_limit = std::max(root.throttle_retry_limit, pl.throttle_retry_limit);
          root.throttle_interval = std::max(root.throttle_interval, pl.throttle_interval);
        }
        if (!use || parts.complexity) {
          ar->complexity = true;
          if (greater(pl.max_query_depth, ar->limit.max_query_depth))
            ar->limit.max_query_depth = pl.max_query_depth;
        }
        if (own_rights) {
          if (const auto* o = obj(*own_rights, api)) {
            if (const auto* ol = obj(*o, "limit"); ol && !Lim::from(*ol).empty())
              ar->limit.quota_renews = Lim::from(*ol).quota_renews;
          }
        }
      }
      if (!pa || pa->empty()) {  // a "master" policy sets the session's own limits
        if (!use || parts.rate_limit) {
          root.rate = pl.rate;
          root.per = pl.per;
          root.throttle_interval = pl.throttle_interval;
          root.throttle_retry_limit = pl.throttle_retry_limit;
        }
        if (!use || parts.complexity) root.max_query_depth = pl.max_query_depth;
        if (!use || parts.quota) {
          root.quota_max = pl.quota_max;
          root.quota_renewal_rate = pl.quota_renewal_rate;
        }
      }
      if (auto h = p->raw.find("hmac_enabled");
          h != p->raw.end() && h->value().is_bool() && h->value().as_bool())
        hmac = true;
    }
    if (auto t = p->raw.find("tags"); t != p->raw.end() && t->value().is_array()) {
      for (const auto& v : t->value().as_array()) add_tag(v);
    }
    // Gatehouse goes beyond Tyk here: a policy may bind certificates to the keys it governs.
    if (auto b = p->raw.find("mtls_static_certificate_bindings");
        b != p->raw.end() && b->value().is_array()) {
      for (const auto& v : b->value().as_array()) add_binding(v);
    }
    if (const auto* m = obj(p->raw, "meta_data")) {
      for (const auto& kv : *m) meta[kv.key()] = kv.value();
    }
    if (auto lu = p->raw.find("last_updated"); lu != p->raw.end() && lu->value().is_string() &&
                                               std::string(lu->value().as_string()) > last_updated)
      last_updated = std::string(lu->value().as_string());
    // A key switched off by hand stays off whatever its policies say (Tyk 5.12+ would let a
    // policy's is_inactive=false override it).
    if (auto in = p->raw.find("is_inactive");
        in != p->raw.end() && in->value().is_bool() && in->value().as_bool())
      inactive = true;
  }

  // Inherit what no policy set from the session, scope counters, drop what grants nothing.
  std::vector<std::string> distinct;
  for (const auto& [k, r] : rights) {
    if (r.set_by.empty()) continue;
    if (std::find(distinct.begin(), distinct.end(), r.set_by) == distinct.end())
      distinct.push_back(r.set_by);
  }
  bool any_acl = false;
  json::object merged;
  int touched_all = 0;
  const Right* only = nullptr;
  for (auto& [api, r] : rights) {
    if (!r.acl) continue;
    any_acl = true;
    if (!r.rate) {
      r.limit.rate = root.rate;
      r.limit.per = root.per;
      r.limit.throttle_interval = root.throttle_interval;
      r.limit.throttle_retry_limit = root.throttle_retry_limit;
    }
    if (!r.complexity) r.limit.max_query_depth = root.max_query_depth;
    if (!r.quota) {
      r.limit.quota_max = root.quota_max;
      r.limit.quota_renewal_rate = root.quota_renewal_rate;
      r.limit.quota_renews = root.quota_renews;
    }
    auto scope = r.def.find("allowance_scope");
    bool no_scope =
        scope == r.def.end() || !scope->value().is_string() || scope->value().as_string().empty();
    if (distinct.size() > 1 && no_scope && !r.set_by.empty()) r.def["allowance_scope"] = r.set_by;
    if (r.quota && r.rate && r.complexity) {
      ++touched_all;
      only = &r;
    }
    json::object def = r.def;
    json::object lim;
    r.limit.write(lim);
    def["limit"] = std::move(lim);
    merged[api] = std::move(def);
  }
  if (touched_all == 1 && only) {  // one API: the session's own fields follow its limit
    root.rate = only->limit.rate;
    root.per = only->limit.per;
    root.quota_max = only->limit.quota_max;
    root.quota_renews = only->limit.quota_renews;
    root.quota_renewal_rate = only->limit.quota_renewal_rate;
    root.max_query_depth = only->limit.max_query_depth;
  }
  if (merged.empty()) return Error{"key has no valid policies to be applied"};
  if (any_acl) out["access_rights"] = std::move(merged);
  out["rate"] = root.rate;
  out["per"] = root.per;
  out["throttle_interval"] = root.throttle_interval;
  out["throttle_retry_limit"] = root.throttle_retry_limit;
  out["max_query_depth"] = root.max_query_depth;
  out["quota_max"] = root.quota_max;
  out["quota_renewal_rate"] = root.quota_renewal_rate;
  out["quota_renews"] = root.quota_renews;
  if (auto it = session.find("tags"); it != session.end() && it->value().is_array()) {
    for (const auto& v : it->value().as_array()) add_tag(v);
  }
  json::array tag_arr;
  for (const auto& t : tags) tag_arr.emplace_back(t);
  out["tags"] = std::move(tag_arr);
  if (!bindings.empty()) {
    json::array arr;
    for (const auto& b : bindings) arr.emplace_back(b);
    out["mtls_static_certificate_bindings"] = std::move(arr);
  }
  out["meta_data"] = std::move(meta);
  out["is_inactive"] = inactive;
  out["hmac_enabled"] = hmac;
  if (!last_updated.empty()) out["last_updated"] = last_updated;
  return out;
}

}  // namespace gh::policy
