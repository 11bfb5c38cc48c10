#include "admin/policies_api.h"

#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>

#include "core/log.h"
#include "core/util.h"
#include "policy/access.h"
#include "policy/policy.h"

namespace gh::admin {

namespace json = boost::json;

namespace {

AdminResult err(int status, std::string_view msg) { return error_reply(status, msg); }
AdminResult json_reply(int status, const json::value& v) { return json_value_reply(status, v); }
AdminResult done(std::string_view id, std::string_view action) { return action_reply(id, action); }

constexpr const char* kInvalidId =
    "Invalid Policy ID: Allowed characters: a-z, A-Z, 0-9, ., _, -, ~";

}  // namespace

AdminResult PoliciesApi::handle(const AdminRequest& req) const {
  std::string_view p = req.path;
  while (p.size() > 1 && p.back() == '/') p.remove_suffix(1);
  std::string_view id = p.size() > 13 ? p.substr(14) : std::string_view();  // after /tyk/policies/
  if (id.find('/') != std::string_view::npos) return err(404, "Not found");
  auto snap = snapshots_.get();
  if (req.method == "GET") {
    if (id.empty()) {
      json::array list;
      if (snap) {
        for (const auto& [k, pol] : snap->policies.by_id) list.push_back(pol->raw);
      }
      return json_reply(200, list);
    }
    const auto* pol = snap ? snap->policies.find(id) : nullptr;
    if (!pol) return err(404, "Policy not found");
    return json_reply(200, pol->raw);
  }
  if (req.method == "POST") return write(req, id, false);
  if (req.method == "PUT") {
    if (id.empty()) return err(400, "Must specify an apiID to update");
    return write(req, id, true);
  }
  if (req.method == "DELETE") {
    if (id.empty()) return err(400, "Must specify an apiID to delete");
    return remove(id);
  }
  return err(405, "Method not supported");
}

AdminResult PoliciesApi::write(const AdminRequest& req, std::string_view url_id,
                               bool update) const {
  if (cfg_.policies.policy_source == "service")
    return err(500, "Due to enabled service policy source, please use the Dashboard API");
  boost::system::error_code ec;
  auto doc = json::parse(req.body, ec);
  if (ec || !doc.is_object()) return err(400, "Request malformed");
  // A rule that cannot be compiled would refuse every request of every key under the policy:
  // say so now rather than at request time.
  if (auto a = policy::build_access(doc.as_object(), false); !a)
    return err(400, "Invalid policy: " + a.error());
  auto parsed = policy::parse_policy(doc);
  if (!parsed) return err(400, "Request malformed");
  auto& pol = parsed.value();
  if (!pol.id.empty() && !policy::valid_policy_id(pol.id)) return err(400, kInvalidId);
  if (update && pol.id != url_id)
    return err(400,
               "Request ID does not match that in policy! For Update operations these must match.");
  if (pol.id.empty()) return err(400, "Unable to create policy without id.");
  doc.as_object()["id"] = pol.id;
  if (cfg_.policies.policy_path.empty()) {
    log::error("cannot store a policy: policies.policy_path is not set", {{"policy_id", pol.id}});
    return err(500, "Unable to access policy storage.");
  }
  // An existing policy stays in the file it was loaded from.
  std::string target = cfg_.policies.policy_path + "/" + pol.id + ".json";
  auto snap = snapshots_.get();
  if (const auto* old = snap ? snap->policies.find(pol.id) : nullptr;
      old && !old->source_file.empty())
    target = old->source_file;
  std::string e;
  if (!write_file_atomic(target, json::serialize(doc) + "\n", &e)) {
    log::error("failed to write policy", {{"policy_id", pol.id}, {"error", e}});
    return err(500, "Failed to create file!");
  }
  log::info(update ? "policy updated" : "policy added", {{"policy_id", pol.id}});
  return done(pol.id, update ? "modified" : "added");
}

AdminResult PoliciesApi::remove(std::string_view id) const {
  if (!policy::valid_policy_id(id)) return err(400, kInvalidId);
  auto snap = snapshots_.get();
  const auto* pol = snap ? snap->policies.find(id) : nullptr;
  std::string file = pol && !pol->source_file.empty()
                         ? pol->source_file
                         : cfg_.policies.policy_path + "/" + std::string(id) + ".json";
  if (cfg_.policies.policy_path.empty() && !pol) return err(404, "Policy not found");
  if (!pol && ::access(file.c_str(), F_OK) != 0) return err(404, "Policy not found");
  if (pol && pol->source_file.empty()) {
    // Loaded from a shared policies.json (policy_record_name): not ours to rewrite.
    return err(500, "Delete failed");
  }
  if (::unlink(file.c_str()) != 0) {
    log::warn("delete of policy failed", {{"policy_id", id}});
    return err(500, "Delete failed");
  }
  log::info("policy deleted", {{"policy_id", id}});
  return done(id, "deleted");
}

}  // namespace gh::admin
