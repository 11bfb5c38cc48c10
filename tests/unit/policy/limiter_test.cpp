#include "policy/limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

using gh::policy::Limiter;
using namespace std::chrono_literals;

TEST(Limiter, SlidingLogAdmitsExactlyRatePerWindow) {
  Limiter l;
  auto t0 = Limiter::Clock::time_point{} + 1000s;
  for (int i = 0; i < 5; ++i) {
    auto r = l.rate_take("rate-limit-k", 5, 10, t0 + i * 1ms);
    EXPECT_TRUE(r.allowed) << i;
    EXPECT_EQ(r.remaining, 4 - i);
  }
  auto r = l.rate_take("rate-limit-k", 5, 10, t0 + 9s);
  EXPECT_FALSE(r.allowed);
  EXPECT_GE(r.reset_s, 1);
  // The first admission leaves the window 10 s after it was made, not at a window boundary.
  EXPECT_FALSE(l.rate_take("rate-limit-k", 5, 10, t0 + 9999ms).allowed);
  EXPECT_TRUE(l.rate_take("rate-limit-k", 5, 10, t0 + 10s).allowed);
  EXPECT_FALSE(l.rate_take("rate-limit-k", 5, 10, t0 + 10s).allowed);
}

TEST(Limiter, RefusedRequestsDoNotExtendTheWindow) {
  Limiter l;
  auto t0 = Limiter::Clock::time_point{} + 1000s;
  EXPECT_TRUE(l.rate_take("k", 1, 1, t0).allowed);
  for (int i = 1; i < 10; ++i) EXPECT_FALSE(l.rate_take("k", 1, 1, t0 + i * 50ms).allowed);
  EXPECT_TRUE(l.rate_take("k", 1, 1, t0 + 1s).allowed);
}

TEST(Limiter, ZeroRateOrPerMeansNoLimit) {
  Limiter l;
  auto t0 = Limiter::Clock::time_point{} + 1000s;
  for (int i = 0; i < 100; ++i) {
    EXPECT_TRUE(l.rate_take("a", 0, 10, t0).allowed);
    EXPECT_TRUE(l.rate_take("b", 10, 0, t0).allowed);
  }
}

TEST(Limiter, KeysAreIndependent) {
  Limiter l;
  auto t0 = Limiter::Clock::time_point{} + 1000s;
  EXPECT_TRUE(l.rate_take("rate-limit-a", 1, 60, t0).allowed);
  EXPECT_FALSE(l.rate_take("rate-limit-a", 1, 60, t0).allowed);
  EXPECT_TRUE(l.rate_take("rate-limit-b", 1, 60, t0).allowed);
}

TEST(Limiter, FixedWindowAboveTheLoggedRate) {
  Limiter l;
  auto t0 = Limiter::Clock::time_point{} + 1000s;
  int64_t rate = Limiter::kMaxLoggedRate + 1;
  int64_t admitted = 0;
  for (int64_t i = 0; i < rate + 10; ++i) admitted += l.rate_take("big", rate, 1, t0).allowed;
  EXPECT_EQ(admitted, rate);
  EXPECT_TRUE(l.rate_take("big", rate, 1, t0 + 1s).allowed);
}

TEST(Limiter, ExactUnderConcurrentThreads) {
  Limiter l;
  auto t0 = Limiter::Clock::now();
  std::atomic<int> admitted{0}, q_admitted{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        if (l.rate_take("rate-limit-shared", 1234, 3600, t0).allowed) ++admitted;
        if (l.quota_take("quota-shared", 777, 3600, 1000, std::nullopt).allowed) ++q_admitted;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(admitted.load(), 1234);
  EXPECT_EQ(q_admitted.load(), 777);
}

TEST(Limiter, QuotaRenewsAfterItsPeriod) {
  Limiter l;
  int64_t now = 1'700'000'000;
  for (int i = 0; i < 3; ++i) {
    auto r = l.quota_take("quota-k", 3, 60, now + i, std::nullopt);
    EXPECT_TRUE(r.allowed);
    EXPECT_EQ(r.remaining, 2 - i);
    EXPECT_EQ(r.renews_at, now + 60);
  }
  EXPECT_FALSE(l.quota_take("quota-k", 3, 60, now + 59, std::nullopt).allowed);
  auto r = l.quota_take("quota-k", 3, 60, now + 60, std::nullopt);
  EXPECT_TRUE(r.allowed);
  EXPECT_EQ(r.remaining, 2);
  EXPECT_EQ(r.renews_at, now + 120);
}

TEST(Limiter, QuotaUnlimitedAndPersistedState) {
  Limiter l;
  int64_t now = 1'700'000'000;
  for (int i = 0; i < 50; ++i)
    EXPECT_TRUE(l.quota_take("quota-u", -1, 60, now, std::nullopt).allowed);
  // A counter read back from the store continues where it was.
  Limiter::QuotaState st{9, now + 30};
  EXPECT_TRUE(l.quota_take("quota-p", 10, 60, now, st).allowed);
  EXPECT_FALSE(l.quota_take("quota-p", 10, 60, now, std::nullopt).allowed);
  auto dirty = l.dirty_quotas();
  ASSERT_EQ(dirty.size(), 1u);
  EXPECT_EQ(dirty[0].first, "quota-p");
  EXPECT_EQ(dirty[0].second.used, 10);
  EXPECT_TRUE(l.dirty_quotas().empty());
}

TEST(Limiter, ResetForAKeyClearsItsCountersOnly) {
  Limiter l;
  int64_t now = 1'700'000'000;
  auto t0 = Limiter::Clock::time_point{} + 1000s;
  l.quota_take("quota-abc", 1, 60, now, std::nullopt);
  l.quota_take("quota-scope-abc", 1, 60, now, std::nullopt);
  l.quota_take("quota-xyz", 1, 60, now, std::nullopt);
  l.rate_take("rate-limit-abc", 1, 60, t0);
  l.reset_for("abc");
  EXPECT_TRUE(l.quota_take("quota-abc", 1, 60, now, std::nullopt).allowed);
  EXPECT_TRUE(l.quota_take("quota-scope-abc", 1, 60, now, std::nullopt).allowed);
  EXPECT_FALSE(l.quota_take("quota-xyz", 1, 60, now, std::nullopt).allowed);
  EXPECT_TRUE(l.rate_take("rate-limit-abc", 1, 60, t0).allowed);
}

// Tyk (enable_fixed_window_rate_limiter) names a window by Go's time.Truncate(per): multiples of
// `per` counted from 0001-01-01 UTC, not from the unix epoch. Expected values computed from that
// definition with exact integers.
TEST(Limiter, FixedWindowsAlignAsGoTruncates) {
  struct Case {
    int64_t now_ns;
    double per;
    int64_t start_ns, end_ns;
  };
  const Case cases[] = {
      {1700000000500000000, 60, 1699999980000000000, 1700000040000000000},
      // 7 s windows: Go's zero time is 6 s off a multiple of 7 from the unix epoch.
      {1700000000500000000, 7, 1699999997000000000, 1700000004000000000},
      {1700000000500000000, 1.5, 1699999999500000000, 1700000001000000000},
      {1764864000000000000, 3600, 1764864000000000000, 1764867600000000000},
      {0, 86400.0 * 365, -9676800000000000, 21859200000000000},
  };
  for (const auto& c : cases) {
    auto w = Limiter::fixed_window(c.per, c.now_ns);
    EXPECT_EQ(w.start_ns, c.start_ns) << c.per;
    EXPECT_EQ(w.end_ns, c.end_ns) << c.per;
  }
  // No window below one nanosecond; the largest `per` saturates instead of wrapping.
  auto z = Limiter::fixed_window(1e-10, 5);
  EXPECT_EQ(z.start_ns, z.end_ns);
  auto big = Limiter::fixed_window(1e300, 1700000000000000000);
  EXPECT_LE(big.start_ns, 1700000000000000000);
  EXPECT_GT(big.end_ns, 1700000000000000000);
}

TEST(Limiter, FixedWindowCountsRestartAtTheBoundary) {
  Limiter l;
  const auto t = Limiter::Clock::time_point{} + 1000s;
  const int64_t w0 = 1699999980000000000;  // a 60 s window
  for (int i = 0; i < 3; ++i) {
    auto r = l.fixed_take("rate-limit-k", 3, 60, w0 + 59'000'000'000 + i, t);
    EXPECT_TRUE(r.allowed) << i;
    EXPECT_EQ(r.remaining, 2 - i);
    EXPECT_EQ(r.reset_s, 1);
  }
  auto r = l.fixed_take("rate-limit-k", 3, 60, w0 + 59'999'999'999, t);
  EXPECT_FALSE(r.allowed);
  EXPECT_EQ(r.reset_s, 1);
  // Unlike the sliding log, the next window starts afresh at once.
  r = l.fixed_take("rate-limit-k", 3, 60, w0 + 60'000'000'000, t);
  EXPECT_TRUE(r.allowed);
  EXPECT_EQ(r.remaining, 2);
  EXPECT_EQ(r.reset_s, 60);
  EXPECT_TRUE(l.fixed_take("rate-limit-other", 3, 60, w0 + 60'000'000'000, t).allowed);
}

TEST(Limiter, FixedWindowSpentMarksEndWithTheWindowTheLimitOrTheKeyEpoch) {
  Limiter l;
  const auto t = Limiter::Clock::time_point{} + 1000s;
  const int64_t now = 1700000001000000000;
  const auto w = Limiter::fixed_window(10, now);
  int64_t reset = -1;
  EXPECT_FALSE(l.fixed_spent("rate-limit-k", w, 5, 7, now, reset));
  l.fixed_mark_spent("rate-limit-k", w, 5, 7, t);
  EXPECT_TRUE(l.fixed_spent("rate-limit-k", w, 5, 7, w.end_ns - 1500000000, reset));
  EXPECT_EQ(reset, 2);
  const auto next = Limiter::fixed_window(10, w.end_ns);
  EXPECT_FALSE(l.fixed_spent("rate-limit-k", next, 5, 7, w.end_ns, reset));  // the window is over
  EXPECT_FALSE(l.fixed_spent("rate-limit-k", w, 5, 8, now, reset));          // a key changed
  EXPECT_FALSE(l.fixed_spent("rate-limit-k", w, 6, 7, now, reset));          // the limit changed
  // Another limit of the same name with another window length: its own window.
  EXPECT_FALSE(l.fixed_spent("rate-limit-k", Limiter::fixed_window(60, now), 5, 7, now, reset));
  EXPECT_FALSE(l.fixed_spent("rate-limit-j", w, 5, 7, now, reset));
  l.reset_for("k");
  EXPECT_FALSE(l.fixed_spent("rate-limit-k", w, 5, 7, now, reset));
}

TEST(Limiter, FixedWindowsOfTwoLengthsUnderOneNameCountApart) {
  Limiter l;
  const auto t = Limiter::Clock::time_point{} + 1000s;
  const int64_t now = 1700000001000000000;
  // Alternating between a 2-per-10-s and a 3-per-60-s limit of the same name: each keeps its
  // own count instead of restarting whenever the other is used.
  std::vector<bool> a, b;
  for (int i = 0; i < 4; ++i) {
    a.push_back(l.fixed_take("rate-limit-k", 2, 10, now + i, t).allowed);
    b.push_back(l.fixed_take("rate-limit-k", 3, 60, now + i, t).allowed);
  }
  EXPECT_EQ(a, (std::vector<bool>{true, true, false, false}));
  EXPECT_EQ(b, (std::vector<bool>{true, true, true, false}));
  // Idle entries go once their window length has passed.
  l.sweep(t + 61s);
  EXPECT_TRUE(l.fixed_take("rate-limit-k", 3, 60, now + 5, t + 61s).allowed);
}

// Two limits with different windows under one name (a reload that changes `per`, or limits
// meeting under one counter name): one log, as Tyk's one sorted set, read with each request's
// window. Alternating between them must not restart it: neither admits more than its rate.
TEST(Limiter, SlidingLogsOfTwoWindowsUnderOneNameDoNotResetEachOther) {
  Limiter l;
  auto t0 = Limiter::Clock::time_point{} + 1000s;
  std::vector<bool> a, b;
  for (int i = 0; i < 4; ++i) {
    a.push_back(l.rate_take("rate-limit-k", 2, 60, t0 + i * 1ms).allowed);
    b.push_back(l.rate_take("rate-limit-k", 3, 10, t0 + i * 1ms).allowed);
  }
  EXPECT_EQ(a, (std::vector<bool>{true, false, false, false}));
  EXPECT_EQ(b, (std::vector<bool>{true, true, false, false}));
  // Read with a 10 s window, the log has let go of nothing yet; 10 s on, it has.
  EXPECT_FALSE(l.rate_take("rate-limit-k", 3, 10, t0 + 9s).allowed);
  EXPECT_TRUE(l.rate_take("rate-limit-k", 3, 10, t0 + 10s).allowed);
  l.reset_for("k");
  EXPECT_TRUE(l.rate_take("rate-limit-k", 2, 60, t0 + 10s).allowed);
}
