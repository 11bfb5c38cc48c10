// Security policies (Tyk's Policy objects): loading from policies.policy_path, and applying them
// to a session (Tyk's apply rules: partitions, ACL union, larger quota, more generous rate,
// per-API limits with allowance scopes).
//
// A key's policies are applied when the key is read on the request path, from the policies of
// the current snapshot, so a changed policy takes effect for every key after a reload without
// saving the keys again.
#pragma once

#include <boost/json/object.hpp>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace gh::policy {

struct Partitions {
  bool quota = false, rate_limit = false, acl = false, complexity = false, per_api = false;
  bool any() const { return quota || rate_limit || acl || complexity; }
};

struct Policy {
  std::string id;
  std::string org_id;
  Partitions partitions;
  boost::json::object raw;  // the document as given (unknown fields kept)
  std::string source_file;  // the file in policy_path it came from ("" when none)
};

// Validates the types of the fields Gatehouse reads. The error is Tyk's reason text.
Result<Policy> parse_policy(const boost::json::value& v);

// A policy id names a file: Tyk's allowed characters a-z, A-Z, 0-9, '.', '_', '-', '~' and not
// a dot segment.
bool valid_policy_id(std::string_view id);

struct PolicySet {
  std::map<std::string, std::shared_ptr<const Policy>, std::less<>> by_id;
  const Policy* find(std::string_view id) const {
    auto it = by_id.find(id);
    return it == by_id.end() ? nullptr : it->second.get();
  }
};

// Reads every *.json file of `dir` (policies.policy_path): one policy per file, or an object of
// id -> policy. Without a dir, reads `record_file` (policies.policy_record_name), Tyk's single
// policies.json of id -> policy. Broken files and policies are reported and skipped.
PolicySet load_policies(const std::string& dir, const std::string& record_file,
                        std::vector<std::string>* problems);

// Applies the session's `apply_policies` (and legacy `apply_policy_id`) to a copy of its JSON.
// Errors carry Tyk's text ("policy not found", org mismatch, per_api mixed with partitions, ...).
// A policy must belong to the key's org (or, for a key without one, to `api_org`), and to
// `api_org` when it is given (the API being called).
Result<boost::json::object> apply_policies(const boost::json::object& session,
                                           const PolicySet& policies,
                                           std::string_view api_org = {});

// The ids named by `apply_policies` / `apply_policy_id`, in order, without duplicates.
std::vector<std::string> policy_ids(const boost::json::object& session);

}  // namespace gh::policy
