// Store: the one interface everything that persists goes through (keys/sessions, quotas,
// certificates, OAuth clients). Coroutine-shaped so that a networked store (Redis) and the
// embedded one are interchangeable; the embedded store completes without suspending.
// Keys are laid out as Tyk lays them out (see keyspace.h), so stores are drop-ins.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace gh::store {

class Store {
 public:
  virtual ~Store() = default;

  // Value of `key`, or nullopt when absent or expired.
  virtual boost::asio::awaitable<std::optional<std::string>> get(std::string key) = 0;
  // Stores `value`; ttl_seconds <= 0 means no expiry. False when the store failed.
  virtual boost::asio::awaitable<bool> set(std::string key, std::string value,
                                           int64_t ttl_seconds) = 0;
  // True when a live key was removed.
  virtual boost::asio::awaitable<bool> del(std::string key) = 0;
  // Live keys starting with `prefix`, in key order.
  virtual boost::asio::awaitable<std::vector<std::string>> scan(std::string prefix) = 0;
  // Adds `by` to an integer counter (created at 0) and returns the new value; the expiry is
  // set when the counter is created. nullopt when the store failed.
  virtual boost::asio::awaitable<std::optional<int64_t>> incr(std::string key, int64_t by,
                                                              int64_t ttl_seconds) = 0;
  struct Entry {
    std::string value;
    int64_t expires_at = 0;  // unix seconds; 0 = never
  };
  // `key` with its expiry time, or nullopt when absent or expired.
  virtual boost::asio::awaitable<std::optional<Entry>> get_entry(std::string key) = 0;
  struct Write {
    std::string key;
    std::string value;
    int64_t ttl_seconds = 0;  // <= 0: no expiry
  };
  // Several writes at once (one transaction, or one pipeline); false when the store failed.
  virtual boost::asio::awaitable<bool> set_many(std::vector<Write> writes) = 0;
  // False while the store cannot answer (the gateway then fails closed).
  virtual bool healthy() = 0;
};

}  // namespace gh::store
