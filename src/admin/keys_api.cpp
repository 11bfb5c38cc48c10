#include "admin/keys_api.h"

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>

#include "auth/session.h"
#include "core/log.h"
#include "core/util.h"
#include "policy/policy.h"
#include "store/keyspace.h"

namespace gh::admin {

namespace json = boost::json;
using boost::asio::awaitable;

std::atomic<uint64_t>& key_epoch() {
  static std::atomic<uint64_t> epoch{1};
  return epoch;
}

auth::KeyHashing key_hashing(const config::GatewayConfig& cfg) {
  auth::KeyHashing h;
  h.enabled = cfg.hash_keys;
  h.function = parse_key_hash(cfg.hash_key_function).value_or(KeyHash::kMurmur64);
  for (const auto& f : cfg.hash_key_function_fallback) {
    if (auto k = parse_key_hash(f)) h.fallbacks.push_back(*k);
  }
  return h;
}

namespace {

AdminResult reply(int status, const json::value& v) {
  http::Response r;
  r.status = status;
  r.body = json::serialize(v);
  return AdminResult{std::move(r), ReloadMode::kNone};
}
AdminResult err(int status, std::string_view msg) {
  return AdminResult{http::status_response(status, "error", msg), ReloadMode::kNone};
}

int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The key id from the path: percent-decoded (a base64 token may hold '/', '+' and '='), and
// refused when it holds controls or is absurdly long.
std::optional<std::string> decode_id(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size() || hex_value(s[i + 1]) < 0 || hex_value(s[i + 2]) < 0)
        return std::nullopt;
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  if (out.empty() || out.size() > 1024) return std::nullopt;
  for (unsigned char c : out) {
    if (c < 0x21 || c == 0x7f) return std::nullopt;
  }
  return out;
}

bool is_hex(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (hex_value(c) < 0) return false;
  }
  return true;
}

// The body as a session; nullopt after filling `failure`.
std::optional<auth::Session> parse_body(std::string_view body, AdminResult* failure) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object()) {
    *failure = err(400, "Request malformed");
    return std::nullopt;
  }
  auto s = auth::parse_session(v);
  if (!s) {
    *failure = err(400, "Request malformed");
    return std::nullopt;
  }
  return std::move(s.value());
}

}  // namespace

KeysApi::KeysApi(const config::GatewayConfig& cfg, store::Store& store,
                 const proxy::SnapshotHolder& snapshots, policy::Limiter& limiter)
    : cfg_(cfg),
      store_(store),
      hashing_(key_hashing(cfg)),
      snapshots_(snapshots),
      limiter_(limiter) {}

namespace {

// The quota counter names of a session: the key's own and one per scoped per-API limit.
std::vector<std::string> scopes_of(const json::object& session) {
  std::vector<std::string> scopes{""};
  auto ar = session.find("access_rights");
  if (ar == session.end() || !ar->value().is_object()) return scopes;
  for (const auto& kv : ar->value().as_object()) {
    if (!kv.value().is_object()) continue;
    auto s = kv.value().as_object().find("allowance_scope");
    if (s == kv.value().as_object().end() || !s->value().is_string() ||
        s->value().as_string().empty())
      continue;
    std::string scope(s->value().as_string());
    if (std::find(scopes.begin(), scopes.end(), scope) == scopes.end()) scopes.push_back(scope);
  }
  return scopes;
}

// The distinct `per` of a session's rate limits: its own and each per-API limit's.
std::vector<double> pers_of(const json::object& session) {
  std::vector<double> out;
  auto add = [&](const json::object& o) {
    auto it = o.find("per");
    if (it == o.end() || !it->value().is_number()) return;
    double per = it->value().to_number<double>();
    if (per > 0 && std::find(out.begin(), out.end(), per) == out.end()) out.push_back(per);
  };
  add(session);
  auto ar = session.find("access_rights");
  if (ar == session.end() || !ar->value().is_object()) return out;
  for (const auto& kv : ar->value().as_object()) {
    if (!kv.value().is_object()) continue;
    auto lim = kv.value().as_object().find("limit");
    if (lim != kv.value().as_object().end() && lim->value().is_object())
      add(lim->value().as_object());
  }
  return out;
}

}  // namespace

awaitable<void> KeysApi::reset_counters(const std::string& sid, const json::object& session) {
  limiter_.reset_for(sid);
  const auto now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  for (const auto& scope : scopes_of(session)) {
    co_await store_.del(store::quota_key(sid, scope));
    const auto rate_key = store::rate_limit_key(sid, scope);
    co_await store_.del(rate_key);
    if (!cfg_.enable_fixed_window_rate_limiter) continue;
    // Fixed windows (Tyk's layout: <rate key>/<window start>): the current window of each
    // period the key's limits use.
    for (double per : pers_of(session)) {
      auto w = policy::Limiter::fixed_window(per, now_ns);
      co_await store_.del(store::fixed_window_key(rate_key, w.start_ns));
    }
  }
}

awaitable<int64_t> KeysApi::quota_used(const std::string& name) {
  if (auto st = limiter_.quota_peek(name, now_s())) co_return st->used;
  auto e = co_await store_.get_entry(name);
  if (!e) co_return 0;
  co_return std::strtoll(e->value.c_str(), nullptr, 10);
}

awaitable<AdminResult> KeysApi::handle(const AdminRequest& req) {
  std::string_view p = req.path;
  while (p.size() > 1 && p.back() == '/') p.remove_suffix(1);
  std::string_view rest = p.size() > 9 ? p.substr(10) : std::string_view();  // after /tyk/keys/
  if (rest.empty()) {
    if (req.method == "GET") {
      AdminResult r = co_await list(req);
      co_return r;
    }
    if (req.method == "POST") {
      AdminResult r = co_await create(req, "", false);
      co_return r;
    }
    co_return err(405, "Method not supported");
  }
  if (rest == "create") {
    if (req.method != "POST") co_return err(405, "Method not supported");
    {
      AdminResult r = co_await create(req, "", true);
      co_return r;
    }
  }
  if (rest == "preview") {
    if (req.method != "POST") co_return err(405, "Method not supported");
    AdminResult r = co_await preview(req);
    co_return r;
  }
  if (rest.rfind("policy/", 0) == 0) {
    if (req.method != "POST") co_return err(405, "Method not supported");
    auto hash = decode_id(rest.substr(7));
    if (!hash || hash->find('/') != std::string::npos) co_return err(404, "Key not found");
    AdminResult r = co_await set_policies(req, *hash);
    co_return r;
  }
  if (rest.find('/') != std::string_view::npos) co_return err(404, "Not found");
  auto id = decode_id(rest);
  if (!id) co_return err(400, "Invalid key ID");
  if (req.method == "GET") {
    AdminResult r = co_await get(req, *id);
    co_return r;
  }
  if (req.method == "POST") {
    // A custom id names a key, never a path: no separators, no dot segments.
    if (id->find('/') != std::string::npos || id->find('\\') != std::string::npos ||
        id->find("..") != std::string::npos)
      co_return err(400, "Invalid key ID");
    AdminResult r = co_await create(req, *id, false);
    co_return r;
  }
  if (req.method == "PUT") {
    AdminResult r = co_await update(req, *id);
    co_return r;
  }
  if (req.method == "DELETE") {
    AdminResult r = co_await remove(req, *id);
    co_return r;
  }
  co_return err(405, "Method not supported");
}

awaitable<std::string> KeysApi::find(const AdminRequest& req, const std::string& id,
                                     std::string* value) {
  bool hashed = !query_param(req.query, "hashed").empty();
  std::vector<std::string> ids;
  if (hashed) {
    if (!is_hex(id)) co_return std::string();
    ids.push_back(to_lower(id));
  } else {
    ids = auth::lookup_ids(id, query_param(req.query, "org_id"), cfg_.hash_key_function, hashing_);
  }
  for (const auto& sid : ids) {
    auto v = co_await store_.get(store::apikey_key(sid));
    if (v) {
      if (value) *value = std::move(*v);
      co_return sid;
    }
  }
  co_return std::string();
}

awaitable<std::string> KeysApi::check_bindings(const std::vector<std::string>& ids,
                                               const std::string& org) {
  for (const auto& id : ids) {
    if (!org.empty() && id.rfind(org, 0) != 0) co_return "invalid certificate ID: " + id;
  }
  for (const auto& id : ids) {
    if (!co_await store_.get(store::cert_key(id))) co_return "certificate not found: " + id;
  }
  co_return std::string();
}

awaitable<AdminResult> KeysApi::create(const AdminRequest& req, std::string custom_id,
                                       bool require_rights) {
  AdminResult failure;
  auto session = parse_body(req.body, &failure);
  if (!session) co_return failure;
  if (!custom_id.empty() && custom_id.size() < static_cast<size_t>(cfg_.min_token_length)) {
    co_return err(400, "custom key ID length " + std::to_string(custom_id.size()) +
                           " is less than min_token_length (" +
                           std::to_string(cfg_.min_token_length) +
                           "); the key would be unreachable at auth time. Use an ID of at least "
                           "min_token_length characters, or lower min_token_length in the "
                           "gateway configuration.");
  }
  auto& raw = session->raw;
  auto now = now_s();
  std::string token;
  if (!session->certificate.empty()) {
    // Certificate auth: the key is found from the certificate a client presents, so its token
    // is made from the certificate's id (as Tyk does) unless a custom id was given.
    if (!co_await store_.get(store::cert_key(session->certificate)))
      co_return err(400, "Key must be used with an existent certificate");
    if (custom_id.empty()) {
      std::string_view cert(session->certificate);
      if (cert.rfind(session->org_id, 0) == 0) cert.remove_prefix(session->org_id.size());
      token = auth::generate_token(session->org_id, cert, cfg_.hash_key_function);
      if (co_await store_.get(store::apikey_key(auth::storage_id(token, hashing_))))
        co_return err(500,
                      "Failed to create key - Key with given certificate already found:" + token);
    }
  }
  if (auto bad = co_await check_bindings(session->mtls_bindings, session->org_id); !bad.empty())
    co_return err(400, bad);
  if (!policy::policy_ids(raw).empty()) {
    // As in Tyk: the key is stored with its policies applied, and they are applied again on
    // every request, so a policy changed later still governs the key.
    auto snap = snapshots_.get();
    policy::PolicySet none;
    auto applied = policy::apply_policies(raw, snap ? snap->policies : none);
    if (!applied) co_return err(500, "Failed to create key - " + applied.error());
    raw = std::move(applied.value());
    int64_t expires_in = 0;
    for (const auto& pid : policy::policy_ids(raw)) {
      const auto* pol = snap ? snap->policies.find(pid) : nullptr;
      if (!pol) continue;
      if (auto k = pol->raw.find("key_expires_in"); k != pol->raw.end() && k->value().is_number())
        expires_in = std::max(expires_in, static_cast<int64_t>(k->value().to_number<double>()));
    }
    if (expires_in > 0) raw["expires"] = now + expires_in;
    auto reparsed = auth::parse_session(raw);
    if (!reparsed) co_return err(500, "Failed to create key - " + reparsed.error());
    session->api_ids = reparsed->api_ids;
  }
  if (session->api_ids.empty() && !cfg_.allow_master_keys) {
    if (require_rights)
      co_return err(400,
                    "Failed to create key, keys must have at least one Access Rights record set.");
    co_return err(500, "Failed to create key, ensure security settings are correct.");
  }
  if (token.empty())
    token = auth::generate_token(session->org_id, custom_id, cfg_.hash_key_function);
  std::string sid = auth::storage_id(token, hashing_);
  raw["last_updated"] = std::to_string(now);
  raw["date_created"] = log::now_rfc3339();
  if (auto it = raw.find("quota_renewal_rate"); it != raw.end() && it->value().is_number())
    raw["quota_renews"] = now + static_cast<int64_t>(it->value().to_number<double>());
  if (!co_await store_.set(store::apikey_key(sid), json::serialize(raw), 0))
    co_return err(500, "Failed to create key, ensure security settings are correct.");
  co_await reset_counters(sid, raw);  // a (re)created key starts with a full quota
  key_epoch().fetch_add(1, std::memory_order_acq_rel);
  co_await store_.announce_key_change();  // other gateways drop their cached copies
  log::info("key added",
            {{"key_hash", cfg_.hash_keys ? sid : std::string("-")}, {"org_id", session->org_id}});
  json::object o;
  o["key"] = token;
  o["status"] = "ok";
  o["action"] = "added";
  if (cfg_.hash_keys) o["key_hash"] = sid;
  co_return reply(200, o);
}

awaitable<AdminResult> KeysApi::get(const AdminRequest& req, const std::string& id) {
  if (!query_param(req.query, "hashed").empty() && !cfg_.hash_keys)
    co_return err(400, "Key requested by hash but key hashing is not enabled");
  std::string value;
  auto sid = co_await find(req, id, &value);
  if (sid.empty()) co_return err(404, "Key not found");
  boost::system::error_code ec;
  auto v = json::parse(value, ec);
  if (ec || !v.is_object()) co_return err(500, "Stored session is not valid JSON");
  auto& o = v.as_object();
  // A basic-auth password never leaves the gateway, hashed or not.
  if (auto it = o.find("basic_auth_data"); it != o.end() && it->value().is_object())
    it->value().as_object()["password"] = "";
  // quota_remaining is live: the key's own counter and each scoped per-API counter.
  if (auto it = o.find("quota_max"); it != o.end() && it->value().is_number()) {
    auto max = static_cast<int64_t>(it->value().to_number<double>());
    if (max > 0) {
      auto used = co_await quota_used(store::quota_key(sid));
      o["quota_remaining"] = std::max<int64_t>(0, max - used);
    }
  }
  if (auto ar = o.find("access_rights"); ar != o.end() && ar->value().is_object()) {
    for (auto& kv : ar->value().as_object()) {
      if (!kv.value().is_object()) continue;
      auto& r = kv.value().as_object();
      auto sc = r.find("allowance_scope");
      auto lim = r.find("limit");
      if (sc == r.end() || !sc->value().is_string() || sc->value().as_string().empty() ||
          lim == r.end() || !lim->value().is_object())
        continue;
      auto& lo = lim->value().as_object();
      auto qm = lo.find("quota_max");
      if (qm == lo.end() || !qm->value().is_number()) continue;
      auto max = static_cast<int64_t>(qm->value().to_number<double>());
      if (max <= 0) continue;
      auto used = co_await quota_used(store::quota_key(sid, std::string(sc->value().as_string())));
      lo["quota_remaining"] = std::max<int64_t>(0, max - used);
    }
  }
  co_return reply(200, v);
}

awaitable<AdminResult> KeysApi::update(const AdminRequest& req, const std::string& id) {
  // As in Tyk: the body is read before the key is looked up.
  AdminResult failure;
  auto session = parse_body(req.body, &failure);
  if (!session) co_return failure;
  std::string old_value;
  auto sid = co_await find(req, id, &old_value);
  if (sid.empty()) co_return err(404, "Key is not found");
  auto& raw = session->raw;
  boost::system::error_code ec;
  auto old = json::parse(old_value, ec);
  const bool have_old = !ec && old.is_object();
  std::optional<auth::Session> before;
  if (have_old) {
    if (auto parsed = auth::parse_session(old)) before = std::move(parsed.value());
  }
  if (before && session->certificate != before->certificate) {
    // As in Tyk: a certificate-auth key keeps a certificate, and only one in the store.
    if (session->certificate.empty())
      co_return err(400, "Key cannot be used without a certificate");
    if (!co_await store_.get(store::cert_key(session->certificate)))
      co_return err(400, "Key must be used with an existent certificate");
  }
  {
    // Only the bindings this update adds are checked (as in Tyk).
    std::vector<std::string> added;
    for (const auto& b : session->mtls_bindings) {
      if (!before || std::find(before->mtls_bindings.begin(), before->mtls_bindings.end(), b) ==
                         before->mtls_bindings.end())
        added.push_back(b);
    }
    if (auto bad = co_await check_bindings(added, session->org_id); !bad.empty())
      co_return err(400, bad);
  }
  if (!policy::policy_ids(raw).empty()) {
    auto snap = snapshots_.get();
    policy::PolicySet none;
    auto applied = policy::apply_policies(raw, snap ? snap->policies : none);
    if (!applied) co_return err(500, "Failed to create key, ensure security settings are correct.");
    raw = std::move(applied.value());
    if (auto reparsed = auth::parse_session(raw)) session->api_ids = reparsed->api_ids;
  }
  if (session->api_ids.empty() && !cfg_.allow_master_keys)
    co_return err(500, "Failed to create key, ensure security settings are correct.");
  bool suppress = query_param(req.query, "suppress_reset") == "1";
  if (have_old) {
    const auto& oo = old.as_object();
    if (auto it = oo.find("date_created"); it != oo.end()) raw["date_created"] = it->value();
    if (suppress) {
      for (const char* f : {"quota_renews", "last_updated"}) {
        if (auto it = oo.find(f); it != oo.end()) raw[f] = it->value();
      }
    }
  }
  if (!suppress) raw["last_updated"] = std::to_string(now_s());
  if (!co_await store_.set(store::apikey_key(sid), json::serialize(raw), 0))
    co_return err(500, "Failed to create key, ensure security settings are correct.");
  if (!suppress) {
    co_await reset_counters(sid, raw);
    if (have_old) co_await reset_counters(sid, old.as_object());
  }
  key_epoch().fetch_add(1, std::memory_order_acq_rel);
  co_await store_.announce_key_change();  // other gateways drop their cached copies
  json::object o;
  o["key"] = id;
  o["status"] = "ok";
  o["action"] = "modified";
  co_return reply(200, o);
}

awaitable<AdminResult> KeysApi::remove(const AdminRequest& req, const std::string& id) {
  std::string value;
  auto sid = co_await find(req, id, &value);
  if (sid.empty()) co_return err(404, "There is no such key found");
  if (!co_await store_.del(store::apikey_key(sid))) co_return err(400, "Failed to remove the key");
  boost::system::error_code ec;
  auto old = json::parse(value, ec);
  json::object old_session;
  if (!ec && old.is_object()) old_session = std::move(old.as_object());
  co_await reset_counters(sid, old_session);
  key_epoch().fetch_add(1, std::memory_order_acq_rel);
  co_await store_.announce_key_change();  // other gateways drop their cached copies
  json::object o;
  o["key"] = id;
  o["status"] = "ok";
  o["action"] = "deleted";
  co_return reply(200, o);
}

awaitable<AdminResult> KeysApi::list(const AdminRequest& req) {
  if (cfg_.hash_keys && !cfg_.enable_hashed_keys_listing)
    co_return err(404, "Hashed key listing is disabled in config (enable_hashed_keys_listing)");
  auto keys = co_await store_.scan("apikey-");
  json::array out;
  for (auto& k : keys) out.emplace_back(k.substr(7));
  json::object o;
  o["keys"] = std::move(out);
  co_return reply(200, o);
}

awaitable<AdminResult> KeysApi::preview(const AdminRequest& req) {
  boost::system::error_code ec;
  auto v = json::parse(req.body, ec);
  if (ec || !v.is_object() || !auth::parse_session(v)) co_return err(500, "Unmarshalling failed");
  auto& raw = v.as_object();
  raw["last_updated"] = std::to_string(now_s());
  raw["date_created"] = log::now_rfc3339();
  auto snap = snapshots_.get();
  policy::PolicySet none;
  // As in Tyk, a preview shows what it can: a policy that does not apply is left out.
  auto applied = policy::apply_policies(raw, snap ? snap->policies : none);
  co_return reply(200, applied ? json::value(std::move(applied.value())) : v);
}

awaitable<AdminResult> KeysApi::set_policies(const AdminRequest& req, const std::string& hash) {
  boost::system::error_code ec;
  auto body = json::parse(req.body, ec);
  if (ec || !body.is_object()) co_return err(400, "Couldn't decode instruction");
  json::array ids;
  const auto& bo = body.as_object();
  if (auto it = bo.find("apply_policies"); it != bo.end() && !it->value().is_null()) {
    if (!it->value().is_array()) co_return err(400, "Couldn't decode instruction");
    for (const auto& e : it->value().as_array()) {
      if (!e.is_string()) co_return err(400, "Couldn't decode instruction");
      ids.push_back(e);
    }
  }
  if (auto it = bo.find("policy"); it != bo.end() && !it->value().is_null()) {
    if (!it->value().is_string()) co_return err(400, "Couldn't decode instruction");
    if (!it->value().as_string().empty()) ids.push_back(it->value());
  }
  // The id in the path is the key's hash (as Tyk's handler reads it); without hashing it is the
  // key itself.
  std::string value, sid;
  if (cfg_.hash_keys) {
    if (is_hex(hash)) {
      sid = to_lower(hash);
      auto v = co_await store_.get(store::apikey_key(sid));
      if (v) value = std::move(*v);
    }
  } else {
    AdminRequest plain = req;
    plain.query = "";
    sid = co_await find(plain, hash, &value);
  }
  if (sid.empty() || value.empty()) co_return err(404, "Key not found");
  auto sv = json::parse(value, ec);
  if (ec || !sv.is_object()) co_return err(500, "Could not write key data");
  auto& so = sv.as_object();
  so["apply_policies"] = std::move(ids);
  so.erase("apply_policy_id");
  so["last_updated"] = std::to_string(now_s());
  if (!co_await store_.set(store::apikey_key(sid), json::serialize(sv), 0))
    co_return err(500, "Could not write key data");
  key_epoch().fetch_add(1, std::memory_order_acq_rel);
  co_await store_.announce_key_change();  // other gateways drop their cached copies
  log::info("key policies set", {{"key_hash", cfg_.hash_keys ? sid : std::string("-")}});
  json::object o;
  o["key"] = hash;
  o["status"] = "ok";
  o["action"] = "updated";
  co_return reply(200, o);
}

}  // namespace gh::admin
