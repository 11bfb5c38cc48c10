// RedisStore: the store for a fleet of gateways (`gatehouse.store.type: "redis"`, Tyk's `storage`
// block). Redis 7 over our own Asio connection, plain or TLS (mutual TLS with cert_file/key_file),
// hiredis' redisReader as the RESP parser, commands pipelined on one connection per thread,
// reconnection with backoff. Keys are laid out as Tyk lays them out (apikey-, quota-,
// rate-limit-), so Tyk and Gatehouse gateways can share one Redis.
//
// While Redis cannot be reached every call fails at once (no waiting on a dead server):
// lookups find nothing, writes report failure, healthy() is false; the gateway fails closed.
#pragma once

#include <memory>

#include "config/gateway_config.h"
#include "store/store.h"

namespace gh::store {

class RedisStore final : public Store {
 public:
  // Reads the storage settings and TLS files; throws config::ConfigError naming the field.
  // Connects lazily, per thread.
  explicit RedisStore(const config::GatewayConfig& cfg);
  ~RedisStore() override;

  boost::asio::awaitable<std::optional<std::string>> get(std::string key) override;
  boost::asio::awaitable<std::optional<Entry>> get_entry(std::string key) override;
  boost::asio::awaitable<bool> set(std::string key, std::string value,
                                   int64_t ttl_seconds) override;
  boost::asio::awaitable<bool> set_many(std::vector<Write> writes) override;
  boost::asio::awaitable<bool> del(std::string key) override;
  boost::asio::awaitable<std::vector<std::string>> scan(std::string prefix) override;
  boost::asio::awaitable<std::optional<int64_t>> incr(std::string key, int64_t by,
                                                      int64_t ttl_seconds) override;
  bool healthy() override;

  bool counts_limits() const override { return true; }
  boost::asio::awaitable<LimitResult> take_limits(LimitRequest r) override;
  boost::asio::awaitable<void> announce_key_change() override;
  void watch_key_changes(boost::asio::io_context& ioc, std::function<void()> on_change) override;
  void close_thread(bool keep_watch = false) override;

  // The channel gateways announce key changes on.
  static constexpr const char* kKeyEventsChannel = "gatehouse.key-events";

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace gh::store
