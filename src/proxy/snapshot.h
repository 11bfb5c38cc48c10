// Snapshot: everything a request reads about the configuration (API definitions, their
// router and the security policies), immutable once built. A reload builds a new one off the hot
// path and swaps it in; requests in flight keep the one they started with.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "apidef/api_spec.h"
#include "policy/policy.h"
#include "proxy/router.h"
#include "proxy/upstream_plan.h"
#include "tls/client_auth.h"

namespace gh::proxy {

struct Snapshot {
  uint64_t generation = 0;
  std::vector<std::shared_ptr<const apidef::ApiSpec>> apis;  // every loaded API, active or not
  Router router;
  policy::PolicySet policies;  // from policies.policy_path
  // Static mutual TLS allow lists of the APIs that use it, by API id (resolved certificates).
  std::map<std::string, std::shared_ptr<const tls::ClientCertAllow>, std::less<>> client_allow;
  // How each active API's upstream connections are made (by API definition).
  std::unordered_map<const apidef::ApiSpec*, UpstreamPlan> upstream;

  const apidef::ApiSpec* find(std::string_view api_id) const;
};

// Builds a snapshot from app_path. Problems (skipped files) are returned for the log.
std::shared_ptr<Snapshot> build_snapshot(const std::string& app_path, bool custom_domains,
                                         uint64_t generation, std::vector<std::string>* problems,
                                         const std::string& policy_path = {},
                                         const std::string& policy_record = {});

// Holds the current snapshot. Readers check the generation counter (one atomic load) and only
// take the lock when it moved, so the request path never contends.
class SnapshotHolder {
 public:
  void set(std::shared_ptr<const Snapshot> s);
  std::shared_ptr<const Snapshot> get() const;
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const Snapshot> current_;
  std::atomic<uint64_t> generation_{0};
};

// A per-worker cache of the holder's snapshot.
class SnapshotCache {
 public:
  explicit SnapshotCache(const SnapshotHolder& h) : holder_(h) {}
  const std::shared_ptr<const Snapshot>& current() {
    uint64_t g = holder_.generation();
    if (g != gen_) {
      snap_ = holder_.get();
      gen_ = g;
    }
    return snap_;
  }

 private:
  const SnapshotHolder& holder_;
  uint64_t gen_ = UINT64_MAX;
  std::shared_ptr<const Snapshot> snap_;
};

}  // namespace gh::proxy
