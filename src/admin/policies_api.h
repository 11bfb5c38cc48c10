// The policies part of the control API (/tyk/policies...), sans I/O like ControlApi. As in Tyk,
// it writes and removes files in policies.policy_path; the gateway serves the change after a
// reload (/tyk/reload), when every key's policies are applied afresh.
#pragma once

#include "admin/control_api.h"

namespace gh::admin {

class PoliciesApi {
 public:
  PoliciesApi(const config::GatewayConfig& cfg, const proxy::SnapshotHolder& snapshots)
      : cfg_(cfg), snapshots_(snapshots) {}

  static bool owns(std::string_view path) {
    return path == "/tyk/policies" || path.rfind("/tyk/policies/", 0) == 0;
  }
  // `req` must already have passed the control API's secret check.
  AdminResult handle(const AdminRequest& req) const;

 private:
  AdminResult write(const AdminRequest& req, std::string_view url_id, bool update) const;
  AdminResult remove(std::string_view id) const;

  const config::GatewayConfig& cfg_;
  const proxy::SnapshotHolder& snapshots_;
};

}  // namespace gh::admin
