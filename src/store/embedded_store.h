// EmbeddedStore: the default store, SQLite in WAL mode in one file (gatehouse.store.path).
// No server to run. Each thread gets its own connection, so workers read concurrently while
// one writes; every write is a committed transaction with synchronous=FULL before it is
// acknowledged, so a process killed at any moment loses nothing it acknowledged.
#pragma once

#include <memory>
#include <string>

#include "store/store.h"

namespace gh::store {

class EmbeddedStore final : public Store {
 public:
  // Opens (creating when needed) the database. Throws std::runtime_error naming the file.
  explicit EmbeddedStore(std::string path);
  ~EmbeddedStore() override;

  boost::asio::awaitable<std::optional<std::string>> get(std::string key) override;
  boost::asio::awaitable<bool> set(std::string key, std::string value,
                                   int64_t ttl_seconds) override;
  boost::asio::awaitable<bool> del(std::string key) override;
  boost::asio::awaitable<std::vector<std::string>> scan(std::string prefix) override;
  boost::asio::awaitable<std::optional<int64_t>> incr(std::string key, int64_t by,
                                                      int64_t ttl_seconds) override;
  boost::asio::awaitable<std::optional<Entry>> get_entry(std::string key) override;
  boost::asio::awaitable<bool> set_many(std::vector<Write> writes) override;
  bool healthy() override;
  // Counters are the gateway's own (policy::Limiter); nothing to share with other gateways.
  boost::asio::awaitable<LimitResult> take_limits(LimitRequest r) override;
  boost::asio::awaitable<void> announce_key_change() override;

  // The same operations without coroutines (used by the coroutine versions and by tools).
  std::optional<std::string> get_sync(const std::string& key);
  bool set_sync(const std::string& key, const std::string& value, int64_t ttl_seconds);
  bool del_sync(const std::string& key);
  std::vector<std::string> scan_sync(const std::string& prefix);
  std::optional<Entry> get_entry_sync(const std::string& key);
  bool set_many_sync(const std::vector<Write>& writes);
  std::optional<int64_t> incr_sync(const std::string& key, int64_t by, int64_t ttl_seconds);

  const std::string& path() const { return path_; }

  struct Conn;  // one SQLite connection with its prepared statements (one per thread)

 private:
  Conn& conn();

  std::string path_;
  uint64_t id_;
};

}  // namespace gh::store
