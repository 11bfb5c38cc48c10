// Limiter: the rate-limit and quota counters of one gateway, shared by every worker and exact
// under any number of workers and connections (no per-worker share of a limit, so nothing is
// admitted twice). Sharded by key name so workers rarely meet on the same lock.
//
// Rate limits are a sliding log (at most `rate` admitted requests in any `per` seconds, as Tyk's
// Redis rolling limiter); quotas are a counter with a renewal time (`quota_max` requests until
// `quota_renewal_rate` seconds after the first one). Quota counters are written back to the store
// by the owner (see dirty_quotas) so they survive a restart.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace gh::policy {

class Limiter {
 public:
  using Clock = std::chrono::steady_clock;

  struct RateResult {
    bool allowed = true;
    int64_t remaining = 0;  // admissions left in the current window after this one
    int64_t reset_s = 0;    // seconds until one more request would be admitted
  };
  // One request against `rate` per `per` seconds under `name`; rate <= 0 or per <= 0 = no limit.
  RateResult rate_take(std::string_view name, int64_t rate, double per, Clock::time_point now);

  struct QuotaState {
    int64_t used = 0;
    int64_t renews_at = 0;  // unix seconds; 0 = no period started
  };
  struct QuotaResult {
    bool allowed = true;
    int64_t remaining = 0;
    int64_t renews_at = 0;
  };
  // One request against `max` per `renewal_s` seconds (max <= 0 = unlimited, as in Tyk; renewal_s
  // <= 0 = never renews). `load` gives the persisted state the first time a name is seen.
  QuotaResult quota_take(std::string_view name, int64_t max, int64_t renewal_s, int64_t now_unix,
                         const std::optional<QuotaState>& persisted);
  // Whether the quota `name` is known in memory (else the caller loads it from the store first).
  bool quota_known(std::string_view name);
  std::optional<QuotaState> quota_peek(std::string_view name, int64_t now_unix);
  // Forgets every quota and rate counter whose name ends with `suffix` (a key's storage id):
  // a created or updated key starts afresh.
  void reset_for(std::string_view suffix);
  // Quota counters changed since the last call (name, state), for writing back to the store.
  std::vector<std::pair<std::string, QuotaState>> dirty_quotas();
  // Drops rate logs idle for longer than their window (memory bound).
  void sweep(Clock::time_point now);

  // Tyk's enable_fixed_window_rate_limiter: windows of `per` seconds aligned as Go's
  // time.Truncate aligns them (multiples of `per` counted from 0001-01-01 UTC), so that Tyk and
  // Gatehouse gateways sharing a Redis count in the same windows. Times in unix nanoseconds;
  // `per` is cut to whole nanoseconds as Tyk does. A `per` under 1 ns gives an empty window.
  struct Window {
    int64_t start_ns = 0;
    int64_t end_ns = 0;
  };
  static Window fixed_window(double per, int64_t unix_ns);
  // One request against `rate` in the fixed window of `unix_ns`, counted by this gateway.
  RateResult fixed_take(std::string_view name, int64_t rate, double per, int64_t unix_ns,
                        Clock::time_point now);
  // A store that counts fixed windows refused `name` at `rate` in window `w`: until `w` ends,
  // or until the key epoch moves on from `epoch` (a key changed anywhere), the store need not
  // be asked again about that window at that rate.
  void fixed_mark_spent(std::string_view name, const Window& w, int64_t rate, uint64_t epoch,
                        Clock::time_point now);
  // Whether `name` is marked spent in window `w` (the one `unix_ns` falls in) at `rate` under
  // `epoch`; sets the seconds left in the window then.
  bool fixed_spent(std::string_view name, const Window& w, int64_t rate, uint64_t epoch,
                   int64_t unix_ns, int64_t& reset_s);

  // Above this rate a log would cost too much memory per key: such limits count in fixed
  // windows of `per` seconds instead (still exact per window).
  static constexpr int64_t kMaxLoggedRate = 100000;

 private:
  struct RateEntry {
    std::deque<Clock::time_point> log;  // admitted requests, oldest first
    Clock::time_point window_start{};   // fixed-window mode
    int64_t window_count = 0;
    Clock::duration window{};
    // Fixed windows (fixed_take, fixed_mark_spent): one entry per window, see window_name.
    int64_t fw_count = 0;
    int64_t fw_rate = 0;
    uint64_t fw_epoch = 0;
    bool fw_spent = false;
  };
  struct QuotaEntry {
    QuotaState state;
    bool dirty = false;
  };
  // Looked up by string_view: no allocation per request.
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  template <typename V>
  using Map = std::unordered_map<std::string, V, NameHash, std::equal_to<>>;
  struct Shard {
    std::mutex mu;
    Map<RateEntry> rates;
    Map<QuotaEntry> quotas;
  };
  Shard& shard(std::string_view name);
  // The entry of one fixed window, made when missing (the shard's lock held).
  RateEntry& window_entry(Shard& s, std::string_view key, const Window& w, Clock::time_point now);
  std::array<Shard, 64> shards_;
};

}  // namespace gh::policy
