// The keys part of the control API (/tyk/keys...), on the Store. Coroutines, because the store
// may be remote; everything else about it is sans I/O like ControlApi.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>

#include "admin/control_api.h"
#include "auth/token.h"
#include "policy/limiter.h"
#include "proxy/snapshot.h"
#include "store/store.h"

namespace gh::admin {

// Bumped on every key change; per-worker session caches drop entries from older epochs, so a
// deleted or changed key stops working at once on every worker.
std::atomic<uint64_t>& key_epoch();

auth::KeyHashing key_hashing(const config::GatewayConfig& cfg);

class KeysApi {
 public:
  KeysApi(const config::GatewayConfig& cfg, store::Store& store,
          const proxy::SnapshotHolder& snapshots, policy::Limiter& limiter);

  static bool owns(std::string_view path) {
    return path == "/tyk/keys" || path.rfind("/tyk/keys/", 0) == 0;
  }
  // `req` must already have passed the control API's secret check.
  boost::asio::awaitable<AdminResult> handle(const AdminRequest& req);

 private:
  boost::asio::awaitable<AdminResult> create(const AdminRequest& req, std::string custom_id,
                                             bool require_rights);
  boost::asio::awaitable<AdminResult> get(const AdminRequest& req, const std::string& id);
  boost::asio::awaitable<AdminResult> update(const AdminRequest& req, const std::string& id);
  boost::asio::awaitable<AdminResult> remove(const AdminRequest& req, const std::string& id);
  boost::asio::awaitable<AdminResult> list(const AdminRequest& req);
  boost::asio::awaitable<AdminResult> preview(const AdminRequest& req);
  boost::asio::awaitable<AdminResult> set_policies(const AdminRequest& req,
                                                   const std::string& hash);
  // Starts every rate and quota counter of the key afresh (in memory and in the store).
  boost::asio::awaitable<void> reset_counters(const std::string& sid,
                                              const boost::json::object& session);
  // Tyk's checks of mtls_static_certificate_bindings: every id belongs to the key's org and
  // names a certificate in the store. The error message, or "" when they pass.
  boost::asio::awaitable<std::string> check_bindings(const std::vector<std::string>& ids,
                                                     const std::string& org);
  // Quota used so far under `name` (memory first, then the store).
  boost::asio::awaitable<int64_t> quota_used(const std::string& name);
  // The storage id under which `id` (a token, a custom id or, with hashed=true, a hash) is
  // stored, or "" when there is none.
  boost::asio::awaitable<std::string> find(const AdminRequest& req, const std::string& id,
                                           std::string* value);

  const config::GatewayConfig& cfg_;
  store::Store& store_;
  auth::KeyHashing hashing_;
  const proxy::SnapshotHolder& snapshots_;
  policy::Limiter& limiter_;
};

}  // namespace gh::admin
