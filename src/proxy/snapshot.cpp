#include "proxy/snapshot.h"

#include <set>

#include "apidef/api_loader.h"

namespace gh::proxy {

const apidef::ApiSpec* Snapshot::find(std::string_view api_id) const {
  for (const auto& a : apis) {
    if (a->api_id == api_id) return a.get();
  }
  return nullptr;
}

std::shared_ptr<Snapshot> build_snapshot(const std::string& app_path, bool custom_domains,
                                         uint64_t generation, std::vector<std::string>* problems,
                                         const std::string& policy_path,
                                         const std::string& policy_record) {
  auto loaded = apidef::load_directory(app_path);
  if (problems) {
    for (auto& p : loaded.problems) problems->push_back(std::move(p));
  }
  auto snap = std::make_shared<Snapshot>();
  snap->generation = generation;
  std::set<std::string> ids;
  std::vector<std::shared_ptr<const apidef::ApiSpec>> active;
  for (auto& l : loaded.apis) {
    if (!ids.insert(l.spec.api_id).second) {
      if (problems)
        problems->push_back(l.file + ": duplicate api_id " + l.spec.api_id + ", skipped");
      continue;
    }
    l.spec.global_limit_key = "apilimiter-" + l.spec.org_id + l.spec.api_id;
    auto spec = std::make_shared<const apidef::ApiSpec>(std::move(l.spec));
    snap->apis.push_back(spec);
    if (spec->active) active.push_back(spec);
  }
  snap->router = Router(std::move(active), custom_domains, problems);
  snap->policies = policy::load_policies(policy_path, policy_record, problems);
  return snap;
}

void SnapshotHolder::set(std::shared_ptr<const Snapshot> s) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    current_ = std::move(s);
  }
  generation_.fetch_add(1, std::memory_order_acq_rel);
}

std::shared_ptr<const Snapshot> SnapshotHolder::get() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

}  // namespace gh::proxy
