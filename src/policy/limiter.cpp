#include "policy/limiter.h"

#include <cmath>
#include <functional>

namespace gh::policy {

Limiter::Shard& Limiter::shard(std::string_view name) {
  return shards_[std::hash<std::string_view>{}(name) % shards_.size()];
}

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
  if (it == s.rates.end()) it = s.rates.emplace(std::string(name), RateEntry{}).first;
  auto& e = it->second;
  if (e.window != window) {  // the limit changed: start over rather than mix two windows
    e.log.clear();
    e.window_count = 0;
    e.window_start = now;
    e.window = window;
  }
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
  // A lowered limit leaves an over-long log: keep only what the new limit can use.
  while (static_cast<int64_t>(e.log.size()) > rate) e.log.pop_front();
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
