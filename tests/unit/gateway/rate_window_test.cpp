#include "tronada/gateway/rate_window.h"

#include <gtest/gtest.h>

#include "tronada/gateway/memory_rate_store.h"

namespace tronada {
namespace {

TEST(RateWindow, WindowsAreFloorDivisions) {
  RateWindow w(10, 1000);
  EXPECT_EQ(w.window(0), 0);
  EXPECT_EQ(w.window(999), 0);
  EXPECT_EQ(w.window(1000), 1);
  EXPECT_EQ(w.window(-1), -1);  // before the clock's epoch: not window 0 again
  EXPECT_EQ(w.window(-1000), -1);
  EXPECT_EQ(w.window(-1001), -2);
  EXPECT_EQ(w.until_window_end(0), 1000);
  EXPECT_EQ(w.until_window_end(999), 1);
  EXPECT_EQ(w.until_window_end(-1), 1);
}

TEST(RateWindow, PreviousWindowWeighsLessAsTimePasses) {
  RateWindow w(10, 1000);
  EXPECT_EQ(w.weighted_previous(10, 1000), 10);  // start of the window: all of it
  EXPECT_EQ(w.weighted_previous(10, 1500), 5);
  EXPECT_EQ(w.weighted_previous(10, 1999), 0);  // floor(10 * 1 / 1000)
  EXPECT_EQ(w.estimate(10, 3, 1500), 8);
}

TEST(RateWindow, AllowsUpToTheLimitThenRefuses) {
  RateWindow w(3, 1000);
  RateDecision d = w.decide(0, 0, 100);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 2);
  EXPECT_EQ(d.reset_ms, 900);
  EXPECT_EQ(d.reset_seconds(), 1);
  d = w.decide(0, 2, 100);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 0);
  d = w.decide(0, 3, 100);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.remaining, 0);
  // Full on its own: wait for the next window (900 ms), where the 3 weigh
  // floor(3 * r / 1000) < 3 as soon as r <= 999, i.e. 1 ms in.
  EXPECT_EQ(d.reset_ms, 901);
}

TEST(RateWindow, WindowEdgeLetsNoDoubleBurstThrough) {
  RateWindow w(10, 1000);
  // 10 at the very end of window 0, then the next window begins: a fixed window would
  // allow 10 more at once; the sliding estimate still counts (almost) all of them.
  EXPECT_FALSE(w.decide(10, 0, 1000).allowed);
  // One ms in, the previous window weighs floor(10 * 999/1000) = 9: one request passes.
  RateDecision d = w.decide(10, 0, 1000);
  EXPECT_EQ(d.reset_ms, 1);  // floor(10 * 999 / 1000) = 9 < 10 at 1 ms in
  EXPECT_TRUE(w.decide(10, 0, 1001).allowed);
  EXPECT_FALSE(w.decide(10, 1, 1001).allowed);
  // Half-way, half the previous window still counts.
  EXPECT_TRUE(w.decide(10, 4, 1500).allowed);
  EXPECT_FALSE(w.decide(10, 5, 1500).allowed);
}

TEST(RateWindow, RetryAfterPointsAtWhenOneRequestPasses) {
  RateWindow w(10, 1000);
  RateDecision d = w.decide(10, 5, 1500);  // 5 + floor(10 * 500/1000) = 10
  ASSERT_FALSE(d.allowed);
  // 5 + floor(10 * r / 1000) < 10 needs r <= 499: 1 ms later.
  EXPECT_EQ(d.reset_ms, 1);
  EXPECT_TRUE(w.decide(10, 5, 1500 + d.reset_ms).allowed);
  EXPECT_FALSE(w.decide(10, 5, 1500 + d.reset_ms - 1).allowed);
}

TEST(RateWindow, RefusesBadLimits) {
  EXPECT_THROW(RateWindow(0, 1000), std::invalid_argument);
  EXPECT_THROW(RateWindow(1, 0), std::invalid_argument);
}

TEST(RateWindow, HugeCountsDoNotOverflow) {
  RateWindow w(INT64_MAX / 2, INT64_MAX / 4);
  EXPECT_GE(w.weighted_previous(INT64_MAX / 2, 0), 0);
  EXPECT_TRUE(w.decide(0, 0, 0).allowed);
}

TEST(MemoryRateStore, CountsPerKeyAndSlides) {
  MemoryRateStore store(RateWindow(2, 1000), 10);
  EXPECT_TRUE(store.hit("a", 0).allowed);
  EXPECT_TRUE(store.hit("a", 10).allowed);
  EXPECT_FALSE(store.hit("a", 20).allowed);
  EXPECT_TRUE(store.hit("b", 20).allowed);  // another key, its own budget
  // Refused requests do not count: once the window slides, one passes again.
  EXPECT_FALSE(store.hit("a", 1000).allowed);  // 0 + floor(2 * 1000/1000) = 2
  EXPECT_TRUE(store.hit("a", 1500).allowed);   // 0 + floor(2 * 500/1000) = 1
  EXPECT_FALSE(store.hit("a", 1500).allowed);
  // Two windows later nothing is left of the old counts.
  EXPECT_TRUE(store.hit("a", 5000).allowed);
  EXPECT_EQ(store.hit("a", 5000).remaining, 0);
}

TEST(MemoryRateStore, ClockGoingBackwardsKeepsTheCounts) {
  MemoryRateStore store(RateWindow(2, 1000), 10);
  EXPECT_TRUE(store.hit("a", 5000).allowed);
  EXPECT_TRUE(store.hit("a", 5001).allowed);
  // The clock steps back by a minute: the key must not get a fresh budget.
  RateDecision d = store.hit("a", -55'000);
  EXPECT_FALSE(d.allowed);
  EXPECT_GE(d.reset_ms, 1);
  EXPECT_LE(d.reset_ms, 2000);
  // Back in the stored window's time, still refused; the next windows free it.
  EXPECT_FALSE(store.hit("a", 5002).allowed);
  EXPECT_TRUE(store.hit("a", 7000).allowed);
}

TEST(MemoryRateStore, EvictsTheLeastRecentlyUsedKeyWhenFull) {
  MemoryRateStore store(RateWindow(1, 1000), 3);
  EXPECT_TRUE(store.hit("a", 0).allowed);
  EXPECT_TRUE(store.hit("b", 0).allowed);
  EXPECT_TRUE(store.hit("c", 0).allowed);
  EXPECT_FALSE(store.hit("a", 1).allowed);  // "a" is now the most recent
  EXPECT_TRUE(store.hit("d", 2).allowed);   // full: "b" (least recent) goes
  EXPECT_EQ(store.size(), 3u);
  EXPECT_EQ(store.evictions(), 1u);
  EXPECT_FALSE(store.hit("a", 3).allowed);  // kept
  EXPECT_FALSE(store.hit("c", 3).allowed);  // kept
  EXPECT_TRUE(store.hit("b", 3).allowed);   // forgotten: a fresh budget (evicts "d")
  EXPECT_EQ(store.size(), 3u);
  EXPECT_EQ(store.evictions(), 2u);
}

TEST(MemoryRateStore, ManyKeysStayBounded) {
  MemoryRateStore store(RateWindow(5, 1000), 100);
  for (int i = 0; i < 10'000; ++i) store.hit("k" + std::to_string(i), i);
  EXPECT_EQ(store.size(), 100u);
  EXPECT_EQ(store.evictions(), 9'900u);
}

}  // namespace
}  // namespace tronada
