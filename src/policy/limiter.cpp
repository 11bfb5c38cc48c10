#include "policy/limiter.h"

#include <charconv>
#include <cmath>
#include <functional>

namespace gh::policy {

Limiter::Shard& Limiter::shard(std::string_view name) {
  return shards_[std::hash<std::string_view>{}(name) % shards_.size()];
}

namespace {

int64_t ceil_s(int64_t ns) { return ns <= 0 ? 0 : ns / 1000000000 + (ns % 1000000000 != 0); }

// The counter of one fixed window of `name`, "<start>:<end>:<name>": two limits that share a
// name but not a window length count apart, as their Redis counters do. It still ends with
// `name`, for reset_for.
std::string_view window_name(std::string& buf, std::string_view name, const Limiter::Window& w) {
  char num[24];
  buf.clear();
  for (int64_t v : {w.start_ns, w.end_ns}) {
    auto end = std::to_chars(num, num + sizeof num, v).ptr;
    buf.append(num, static_cast<size_t>(end - num)).push_back(':');
  }
  buf.append(name);
  return buf;
}
thread_local std::string t_window_name;

}  // namespace

Limiter::RateResult Limiter::rate_take(std::string_view name, int64_t rate, double per,
                                       Clock::time_point now) {
  RateResult r;
  if (rate <= 0 || !(per > 0)) {
    r.remaining = 0;
    return r;
  }
  auto window = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(per));
  if (window.count() <= 0) window = Clock::duration(1);
  auto& s = shard(name);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.rates.find(name);
  if (it == s.rates.end()) {
    it = s.rates.emplace(std::string(name), RateEntry{}).first;
    it->second.window_start = now;
  }
  auto& e = it->second;
  // Another window under the same name (a limit changed by a reload, or two limits meeting
  // under one name) carries on with the same log, read with the new window, as Tyk's one sorted
  // set is: never a fresh log, which alternating requests could use to pass unlimited.
  e.window = window;
  auto secs = [](Clock::duration d) {
    return static_cast<int64_t>(
        std::ceil(std::chrono::duration_cast<std::chrono::duration<double>>(d).count()));
  };
  if (rate > kMaxLoggedRate) {
    if (now - e.window_start >= window) {
      e.window_start = now;
      e.window_count = 0;
    }
    if (e.window_count >= rate) {
      r.allowed = false;
      r.reset_s = secs(e.window_start + window - now);
      return r;
    }
    ++e.window_count;
    r.remaining = rate - e.window_count;
    r.reset_s = secs(e.window_start + window - now);
    return r;
  }
  while (!e.log.empty() && now - e.log.front() >= window) e.log.pop_front();
  // A log longer than `rate` (a lowered limit) is kept whole: the requests it holds were made
  // in this window, and trimming it would let a limit sharing the log admit more.
  if (static_cast<int64_t>(e.log.size()) >= rate) {
    r.allowed = false;
    r.reset_s = secs(e.log.front() + window - now);
    return r;
  }
  e.log.push_back(now);
  r.remaining = rate - static_cast<int64_t>(e.log.size());
  r.reset_s = secs(e.log.front() + window - now);
  return r;
}

Limiter::Window Limiter::fixed_window(double per, int64_t unix_ns) {
  Window w;
  // Go's time.Duration(per * float64(time.Second)), saturated instead of wrapping.
  const double d_f = per * 1e9;
  if (!(d_f >= 1)) return Window{unix_ns, unix_ns};
  const int64_t d = d_f >= 9.2e18 ? INT64_MAX : static_cast<int64_t>(d_f);
  // Go counts from its zero time, 0001-01-01 UTC: 62135596800 s before the unix epoch.
  __extension__ using i128 = __int128;  // the sum exceeds 64 bits
  constexpr i128 kZeroToUnixNs = static_cast<i128>(62135596800LL) * 1000000000;
  const i128 since_zero = static_cast<i128>(unix_ns) + kZeroToUnixNs;
  auto rem = static_cast<int64_t>(since_zero % d);
  if (rem < 0) rem += d;
  w.start_ns = unix_ns - rem;
  w.end_ns = w.start_ns > INT64_MAX - d ? INT64_MAX : w.start_ns + d;
  return w;
}

Limiter::RateEntry& Limiter::window_entry(Shard& s, std::string_view key, const Window& w,
                                          Clock::time_point now) {
  auto it = s.rates.find(key);
  if (it == s.rates.end()) it = s.rates.emplace(std::string(key), RateEntry{}).first;
  auto& e = it->second;
  // For sweep(): idle for a whole window length means the window is over.
  e.window_start = now;
  e.window =
      std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(w.end_ns - w.start_ns));
  return e;
}

Limiter::RateResult Limiter::fixed_take(std::string_view name, int64_t rate, double per,
                                        int64_t unix_ns, Clock::time_point now) {
  RateResult r;
  const Window w = fixed_window(per, unix_ns);
  if (rate <= 0 || w.end_ns <= w.start_ns) {
    r.remaining = 0;
    return r;
  }
  auto key = window_name(t_window_name, name, w);
  auto& s = shard(key);
  std::lock_guard<std::mutex> lock(s.mu);
  auto& e = window_entry(s, key, w, now);
  r.reset_s = ceil_s(w.end_ns - unix_ns);
  if (e.fw_count >= rate) {
    r.allowed = false;
    return r;
  }
  ++e.fw_count;
  r.remaining = rate - e.fw_count;
  return r;
}

void Limiter::fixed_mark_spent(std::string_view name, const Window& w, int64_t rate, uint64_t epoch,
                               Clock::time_point now) {
  auto key = window_name(t_window_name, name, w);
  auto& s = shard(key);
  std::lock_guard<std::mutex> lock(s.mu);
  auto& e = window_entry(s, key, w, now);
  e.fw_spent = true;
  e.fw_rate = rate;
  e.fw_epoch = epoch;
}

bool Limiter::fixed_spent(std::string_view name, const Window& w, int64_t rate, uint64_t epoch,
                          int64_t unix_ns, int64_t& reset_s) {
  auto key = window_name(t_window_name, name, w);
  auto& s = shard(key);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.rates.find(key);
  if (it == s.rates.end()) return false;
  const auto& e = it->second;
  // A changed limit (a policy reloaded) or a changed key asks the store again.
  if (!e.fw_spent || e.fw_rate != rate || e.fw_epoch != epoch) return false;
  reset_s = ceil_s(w.end_ns - unix_ns);
  return true;
}

bool Limiter::quota_known(std::string_view name) {
  auto& s = shard(name);
  std::lock_guard<std::mutex> lock(s.mu);
  return s.quotas.find(name) != s.quotas.end();
}

std::optional<Limiter::QuotaState> Limiter::quota_peek(std::string_view name, int64_t now_unix) {
  auto& s = shard(name);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.quotas.find(name);
  if (it == s.quotas.end()) return std::nullopt;
  auto st = it->second.state;
  if (st.renews_at > 0 && now_unix >= st.renews_at) return QuotaState{};
  return st;
}

Limiter::QuotaResult Limiter::quota_take(std::string_view name, int64_t max, int64_t renewal_s,
                                         int64_t now_unix,
                                         const std::optional<QuotaState>& persisted) {
  QuotaResult r;
  if (max <= 0) {
    r.remaining = -1;
    return r;
  }
  auto& s = shard(name);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.quotas.find(name);
  if (it == s.quotas.end()) {
    QuotaEntry e;
    if (persisted) e.state = *persisted;
    it = s.quotas.emplace(std::string(name), e).first;
  }
  auto& e = it->second;
  if (e.state.renews_at > 0 && now_unix >= e.state.renews_at) e.state = QuotaState{};
  if (e.state.used >= max) {
    r.allowed = false;
    r.remaining = 0;
    r.renews_at = e.state.renews_at;
    return r;
  }
  if (e.state.used == 0 && renewal_s > 0) e.state.renews_at = now_unix + renewal_s;
  ++e.state.used;
  e.dirty = true;
  r.remaining = max - e.state.used;
  r.renews_at = e.state.renews_at;
  return r;
}

void Limiter::reset_for(std::string_view suffix) {
  auto ends = [&](const std::string& n) {
    return n.size() >= suffix.size() &&
           n.compare(n.size() - suffix.size(), suffix.size(), suffix.data(), suffix.size()) == 0;
  };
  for (auto& s : shards_) {
    std::lock_guard<std::mutex> lock(s.mu);
    for (auto it = s.rates.begin(); it != s.rates.end();) {
      it = ends(it->first) ? s.rates.erase(it) : std::next(it);
    }
    for (auto& [n, e] : s.quotas) {
      if (ends(n)) {
        e.state = QuotaState{};
        e.dirty = true;
      }
    }
  }
}

std::vector<std::pair<std::string, Limiter::QuotaState>> Limiter::dirty_quotas() {
  std::vector<std::pair<std::string, QuotaState>> out;
  for (auto& s : shards_) {
    std::lock_guard<std::mutex> lock(s.mu);
    for (auto& [n, e] : s.quotas) {
      if (e.dirty) {
        out.emplace_back(n, e.state);
        e.dirty = false;
      }
    }
  }
  return out;
}

void Limiter::sweep(Clock::time_point now) {
  for (auto& s : shards_) {
    std::lock_guard<std::mutex> lock(s.mu);
    for (auto it = s.rates.begin(); it != s.rates.end();) {
      auto& e = it->second;
      bool idle = e.log.empty() ? now - e.window_start >= e.window : now - e.log.back() >= e.window;
      it = idle ? s.rates.erase(it) : std::next(it);
    }
  }
}

}  // namespace gh::policy
