// Store: the one interface everything that persists goes through (keys/sessions, quotas,
// certificates, OAuth clients). Coroutine-shaped so that a networked store (Redis) and the
// embedded one are interchangeable; the embedded store completes without suspending.
// Keys are laid out as Tyk lays them out (see keyspace.h), so stores are drop-ins.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace gh::store {

// One request's rate limit and quota, for a store that counts them itself (shared by every
// gateway on it). An empty key or a zero limit skips that part.
struct LimitRequest {
  std::string rate_key;
  int64_t rate = 0;
  double per = 0;
  std::string quota_key;
  int64_t quota_max = 0;
  int64_t quota_renewal = 0;     // seconds; 0 = never renews
  bool want_rate_reset = false;  // the rate limit's reset time is needed (rate-limit headers)
  // A fixed window (enable_fixed_window_rate_limiter) instead of the sliding log: the window
  // this request falls in, unix nanoseconds (policy::Limiter::fixed_window). The counter is
  // `rate_key` + "/" + start, as Tyk names it; it expires when the window ends.
  bool fixed_window = false;
  int64_t window_start_ns = 0;
  int64_t window_end_ns = 0;
};
struct LimitResult {
  bool ok = false;  // false: the store did not answer (the caller fails closed)
  bool rate_allowed = true;
  int64_t rate_remaining = 0;
  int64_t rate_reset_s = 0;
  bool quota_allowed = true;
  int64_t quota_remaining = -1;
  int64_t quota_renews_at = 0;  // unix seconds; 0 = never
};

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

  // True when rate limits (the rolling limiter) and quotas are counted by the store itself, so
  // every gateway on it shares them; take_limits then does both in one round trip.
  virtual bool counts_limits() const { return false; }
  virtual boost::asio::awaitable<LimitResult> take_limits(LimitRequest r) = 0;
  // Tells the other gateways on this store that keys changed (their caches drop them).
  virtual boost::asio::awaitable<void> announce_key_change() = 0;
  // Runs `on_change` (on `ioc`'s thread) whenever another gateway announces a key change, and
  // whenever the notifications may have been missed (reconnection).
  virtual void watch_key_changes(boost::asio::io_context& ioc, std::function<void()> on_change) {
    (void)ioc;
    (void)on_change;
  }
  // Lets go of what the calling thread holds (connections, and the key-change watch unless
  // `keep_watch`), so that its event loop can end.
  virtual void close_thread(bool keep_watch = false) { (void)keep_watch; }
};

}  // namespace gh::store
