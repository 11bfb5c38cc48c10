#include "admin/control_api.h"

#include <unistd.h>

#include <boost/json.hpp>

#include "admin/policies_api.h"
#include "apidef/api_loader.h"
#include "core/log.h"
#include "core/util.h"

namespace gh::admin {

namespace json = boost::json;
using http::Response;
using http::status_response;

namespace {

AdminResult reply(Response r) { return AdminResult{std::move(r), ReloadMode::kNone}; }
AdminResult err(int status, std::string_view msg) {
  return reply(status_response(status, "error", msg));
}
AdminResult json_reply(int status, const json::value& v) {
  Response r;
  r.status = status;
  r.body = json::serialize(v);
  return reply(std::move(r));
}
AdminResult modified(std::string_view key, std::string_view action) {
  json::object o;
  o["key"] = key;
  o["status"] = "ok";
  o["action"] = action;
  return json_reply(200, o);
}

// A Tyk Classic-shaped view of an OAS API, for GET /tyk/apis.
json::value classic_view(const apidef::ApiSpec& s) {
  if (!s.is_oas) return s.definition;
  json::object o;
  o["api_id"] = s.api_id;
  o["org_id"] = s.org_id;
  o["name"] = s.name;
  o["active"] = s.active;
  o["is_oas"] = true;
  o["use_keyless"] = s.auth == apidef::AuthKind::kKeyless;
  o["domain"] = s.domain;
  json::object proxy;
  proxy["listen_path"] = s.listen_path.empty() ? "/" : s.listen_path + "/";
  proxy["strip_listen_path"] = s.strip_listen_path;
  std::string target = s.target.scheme + "://" + s.target.authority + s.target.path;
  proxy["target_url"] = target;
  o["proxy"] = std::move(proxy);
  return o;
}

std::string app_file(const config::GatewayConfig& cfg, std::string_view id, bool oas) {
  return cfg.app_path + "/" + std::string(id) + (oas ? "-oas.json" : ".json");
}

}  // namespace

AdminResult error_reply(int status, std::string_view message) { return err(status, message); }
AdminResult json_value_reply(int status, const json::value& v) { return json_reply(status, v); }
AdminResult action_reply(std::string_view key, std::string_view action) {
  return modified(key, action);
}

std::string redact_path(std::string_view p) {
  if (p.rfind("/tyk/keys/", 0) == 0 && p != "/tyk/keys/create" && p != "/tyk/keys/create/")
    return "/tyk/keys/{redacted}";
  return std::string(p);
}

std::string query_param(std::string_view query, std::string_view name, bool* present) {
  if (present) *present = false;
  for (auto part : split(query, '&')) {
    auto eq = part.find('=');
    auto k = part.substr(0, eq);
    if (k == name) {
      if (present) *present = true;
      return eq == std::string_view::npos ? std::string()
                                          : percent_decode(part.substr(eq + 1), true);
    }
  }
  return {};
}

ControlApi::ControlApi(const config::GatewayConfig& cfg, const proxy::SnapshotHolder& snapshots,
                       GatewayState state)
    : cfg_(cfg), snapshots_(snapshots), state_(std::move(state)) {}

bool ControlApi::owns(std::string_view path) const {
  if (path == "/tyk" || path.rfind("/tyk/", 0) == 0) return true;
  if (path == "/ready") return true;
  return path.size() == cfg_.health_check_endpoint_name.size() + 1 &&
         path.substr(1) == cfg_.health_check_endpoint_name;
}

bool ControlApi::authorized(const AdminRequest& req) const {
  return req.has_authorization && secret_equals(req.authorization, cfg_.secret);
}

AdminResult ControlApi::forbidden(const AdminRequest& req) {
  log::warn("attempted administrative access with invalid or missing key",
            {{"path", redact_path(req.path)}});
  return err(403, "Attempted administrative access with invalid or missing key!");
}

AdminResult ControlApi::health(const AdminRequest& req, bool ready) const {
  if (req.method != "GET") return err(405, "Method Not Allowed");
  if (ready) {
    if (state_.shutting_down && state_.shutting_down())
      return reply(http::error_response(503, "Gateway is shutting down"));
    if (!state_.loaded || !state_.loaded())
      return reply(http::error_response(503, "A successful API reload did not happen"));
    if (state_.store_ok && !state_.store_ok())
      return reply(http::error_response(503, "Store not available"));
  }
  auto snap = snapshots_.get();
  bool o_status_fail = false;
  json::object details;
  json::object apis;
  apis["status"] = "pass";
  apis["componentType"] = "system";
  apis["observedValue"] = snap ? static_cast<int64_t>(snap->router.size()) : 0;
  apis["time"] = log::now_rfc3339();
  details["apis"] = std::move(apis);
  if (state_.store_ok) {
    bool ok = state_.store_ok();
    json::object st;
    st["status"] = ok ? "pass" : "fail";
    st["componentType"] = "datastore";
    st["observedValue"] = state_.store_type;
    st["time"] = log::now_rfc3339();
    details["store"] = std::move(st);
    if (!ok) o_status_fail = true;
  }
  json::object o;
  o["status"] = o_status_fail ? "warn" : "pass";
  o["version"] = "v" GATEHOUSE_VERSION;
  o["description"] = ready ? "Gatehouse Ready" : "Gatehouse";
  o["details"] = std::move(details);
  return json_reply(200, o);
}

AdminResult ControlApi::handle(const AdminRequest& req) const {
  if (req.path == "/ready") return health(req, true);
  if (req.path.size() > 1 && req.path.substr(1) == cfg_.health_check_endpoint_name)
    return health(req, false);

  if (!authorized(req)) return forbidden(req);

  std::string_view p = req.path;
  while (p.size() > 1 && p.back() == '/') p.remove_suffix(1);
  if (p == "/tyk/reload" || p == "/tyk/reload/group") {
    if (req.method != "GET") return err(405, "Method not supported");
    AdminResult r = reply(status_response(200, "ok", ""));
    r.reload = query_param(req.query, "block") == "true" ? ReloadMode::kBlock : ReloadMode::kQueue;
    return r;
  }
  if (PoliciesApi::owns(p)) return PoliciesApi(cfg_, snapshots_).handle(req);
  if (p == "/tyk/apis/oas/import") {
    if (req.method != "POST") return err(405, "Method not supported");
    return import_oas(req);
  }
  if (p == "/tyk/apis/oas" || p.rfind("/tyk/apis/oas/", 0) == 0)
    return apis(req, p.substr(std::string_view("/tyk/apis/oas").size()), true);
  if (p == "/tyk/apis" || p.rfind("/tyk/apis/", 0) == 0)
    return apis(req, p.substr(std::string_view("/tyk/apis").size()), false);
  return err(404, "Not found");
}

AdminResult ControlApi::apis(const AdminRequest& req, std::string_view rest, bool oas) const {
  if (!rest.empty() && rest[0] == '/') rest.remove_prefix(1);
  auto snap = snapshots_.get();
  if (rest.empty()) {
    if (req.method == "GET") {
      json::array list;
      if (snap) {
        for (const auto& a : snap->apis) {
          if (oas && !a->is_oas) continue;
          list.push_back(oas ? a->definition : classic_view(*a));
        }
      }
      return json_reply(200, list);
    }
    if (req.method == "POST") return add_api(req, oas);
    return err(405, "Method not supported");
  }
  std::string_view id = rest;
  bool export_doc = false;
  if (oas && rest.size() > 7 && rest.substr(rest.size() - 7) == "/export") {
    id = rest.substr(0, rest.size() - 7);
    export_doc = true;
  }
  if (id.find('/') != std::string_view::npos) return err(404, "Not found");
  if (!apidef::valid_api_id(id)) return err(400, "Invalid API ID");
  if (export_doc && req.method != "GET") return err(405, "Method not supported");
  if (req.method == "GET") {
    const auto* a = snap ? snap->find(id) : nullptr;
    if (!a) return err(404, "API not found");
    if (oas && !a->is_oas)
      return err(400,
                 "the requested API definition is in Tyk classic format, please use old "
                 "api endpoint");
    return json_reply(200, oas ? a->definition : classic_view(*a));
  }
  if (req.method == "PUT") return update_api(req, id, oas, false);
  if (req.method == "PATCH" && oas) return update_api(req, id, oas, true);
  if (req.method == "DELETE") return delete_api(id);
  return err(405, "Method not supported");
}

namespace {
struct Parsed {
  json::value doc;
  std::optional<apidef::ApiSpec> spec;
  std::optional<AdminResult> failure;
};

Parsed parse_definition(std::string_view body, bool oas, const json::value* patch_base) {
  Parsed out;
  boost::system::error_code ec;
  out.doc = json::parse(body, ec);
  if (ec || !out.doc.is_object()) {
    out.failure = err(400, "Request malformed");
    return out;
  }
  if (patch_base && !out.doc.as_object().contains("x-tyk-api-gateway") && patch_base->is_object()) {
    if (auto it = patch_base->as_object().find("x-tyk-api-gateway");
        it != patch_base->as_object().end())
      out.doc.as_object()["x-tyk-api-gateway"] = it->value();
  }
  auto r = oas ? apidef::load_oas(out.doc) : apidef::load_classic(out.doc);
  if (!r) {
    if (r.error().rfind("malformed: ", 0) == 0) {
      out.failure = err(400, "Request malformed");
    } else {
      out.failure = err(400, apidef::validation_message(r.error()));
    }
    return out;
  }
  out.spec = std::move(r.value());
  return out;
}

void set_id(json::value& doc, bool oas, const std::string& id) {
  if (oas) {
    doc.as_object()["x-tyk-api-gateway"].as_object()["info"].as_object()["id"] = id;
  } else {
    doc.as_object()["api_id"] = id;
  }
}

std::string pretty(const json::value& v) { return json::serialize(v) + "\n"; }
}  // namespace

AdminResult ControlApi::add_api(const AdminRequest& req, bool oas) const {
  auto p = parse_definition(req.body, oas, nullptr);
  if (p.failure) return *p.failure;
  std::string id = p.spec->api_id;
  if (id.empty()) {
    id = random_hex(16);
    set_id(p.doc, oas, id);
  }
  if (!apidef::valid_api_id(id)) return err(400, "Invalid API ID");
  std::string e;
  if (!write_file_atomic(app_file(cfg_, id, oas), pretty(p.doc), &e)) {
    log::error("failed to write API definition", {{"api_id", id}, {"error", e}});
    return err(500, "file object creation failed, write error");
  }
  // An API re-added (in either format, or over a file named otherwise) must not leave its old
  // file behind for the next reload to find.
  ::unlink(app_file(cfg_, id, !oas).c_str());
  auto snap = snapshots_.get();
  if (const auto* existing = snap ? snap->find(id) : nullptr;
      existing && !existing->source_file.empty() &&
      existing->source_file != app_file(cfg_, id, oas))
    ::unlink(existing->source_file.c_str());
  log::info("API definition added", {{"api_id", id}, {"oas", oas}});
  return modified(id, "added");
}

AdminResult ControlApi::update_api(const AdminRequest& req, std::string_view id, bool oas,
                                   bool patch) const {
  auto snap = snapshots_.get();
  const auto* existing = snap ? snap->find(id) : nullptr;
  if (!existing) return err(404, "API not found");
  auto p = parse_definition(req.body, oas, patch ? &existing->definition : nullptr);
  if (p.failure) return *p.failure;
  if (patch && p.spec->api_id.empty()) {
    set_id(p.doc, oas, std::string(id));
    p.spec->api_id = std::string(id);
  }
  if (p.spec->api_id != id)
    return err(400,
               "Request APIID does not match that in Definition! For Update operations these "
               "must match.");
  // The definition stays in the file it was loaded from (which may be named otherwise than
  // <id>.json), so that a reload cannot pick up a stale copy beside it.
  std::string target = existing->is_oas == oas && !existing->source_file.empty()
                           ? existing->source_file
                           : app_file(cfg_, id, oas);
  std::string e;
  if (!write_file_atomic(target, pretty(p.doc), &e)) {
    log::error("failed to write API definition", {{"api_id", id}, {"error", e}});
    return err(500, "file object creation failed, write error");
  }
  if (target != existing->source_file && !existing->source_file.empty())
    ::unlink(existing->source_file.c_str());
  log::info("API definition updated", {{"api_id", id}});
  return modified(id, "modified");
}

AdminResult ControlApi::delete_api(std::string_view id) const {
  auto snap = snapshots_.get();
  const auto* existing = snap ? snap->find(id) : nullptr;
  if (!existing) return err(404, "API not found");
  if (::unlink(existing->source_file.c_str()) != 0) {
    log::warn("delete of API definition failed", {{"api_id", id}});
    return err(500, "Delete failed");
  }
  log::info("API definition deleted", {{"api_id", id}});
  return modified(id, "deleted");
}

AdminResult ControlApi::import_oas(const AdminRequest& req) const {
  boost::system::error_code ec;
  json::value doc = json::parse(req.body, ec);
  if (ec || !doc.is_object()) return err(400, "Request malformed");
  auto& o = doc.as_object();
  if (o.contains("x-tyk-api-gateway"))
    return err(400, "the import payload should not contain x-tyk-api-gateway");
  std::string upstream = query_param(req.query, "upstreamURL");
  if (upstream.empty()) {
    if (auto it = o.find("servers");
        it != o.end() && it->value().is_array() && !it->value().as_array().empty()) {
      const auto& s0 = it->value().as_array()[0];
      if (s0.is_object() && s0.as_object().contains("url") && s0.as_object().at("url").is_string())
        upstream = std::string(s0.as_object().at("url").as_string());
    }
  }
  std::string listen = query_param(req.query, "listenPath");
  if (listen.empty()) listen = "/";
  std::string name;
  if (auto it = o.find("info"); it != o.end() && it->value().is_object()) {
    if (auto t = it->value().as_object().find("title");
        t != it->value().as_object().end() && t->value().is_string())
      name = std::string(t->value().as_string());
  }
  json::object ext;
  ext["info"] = json::object{{"name", name}, {"state", json::object{{"active", true}}}};
  ext["upstream"] = json::object{{"url", upstream}};
  json::object server;
  server["listenPath"] = json::object{{"value", listen}, {"strip", true}};
  std::string domain = query_param(req.query, "customDomain");
  if (!domain.empty()) server["customDomain"] = json::object{{"enabled", true}, {"name", domain}};
  ext["server"] = std::move(server);
  o["x-tyk-api-gateway"] = std::move(ext);
  AdminRequest copy = req;
  std::string body = json::serialize(doc);
  copy.body = body;
  return add_api(copy, true);
}

}  // namespace gh::admin
