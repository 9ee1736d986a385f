// RedisRateStore against a real redis-server the test starts (one budget for two stores,
// the script reloaded after a flush, the window sliding), and against a peer that never
// answers (the deadline, then the backoff).
#include "cli/redis_rate_store.h"

#include <gtest/gtest.h>

#include "db/db_fixture.h"
#include "db/loopback_peer.h"

using namespace tronada;
using namespace tronada::cli;
using namespace tronada::test_support;
using namespace std::chrono_literals;

namespace {

constexpr std::int64_t kHour = 3'600'000;
// A fixed time, so windows never depend on when the test runs.
constexpr std::int64_t kStart = 490'000 * kHour + 10;

struct Answer {
  std::optional<RateDecision> decision;
  std::string error;
};

Future<Answer> hit(RedisRateStore& store, std::string_view key, std::int64_t now_ms) {
  Promise<Answer> promise;
  Future<Answer> future = promise.get_future();
  store.hit(key, now_ms, [promise](std::optional<RateDecision> d, std::string_view why) mutable {
    promise.set_result(Answer{d, std::string(why)});
  });
  return future;
}

RedisRateStore::Options at(int port, Duration timeout = 1s) {
  RedisRateStore::Options o;
  o.connect.port = port;
  o.timeout = timeout;
  o.prefix = "test:";
  return o;
}

class RedisRateStoreTest : public RedisTest {};

TEST_F(RedisRateStoreTest, TwoStoresShareOneBudget) {
  RedisRateStore a(RateWindow(3, kHour), at(server->port()));
  RedisRateStore b(RateWindow(3, kHour), at(server->port()));
  run([&]() -> Task<void> {
    std::vector<bool> allowed;
    std::vector<std::int64_t> remaining;
    for (int i = 0; i < 5; ++i) {
      Future<Answer> f = hit(i % 2 ? b : a, "k", kStart + i);
      Answer answer = co_await f;
      EXPECT_TRUE(answer.decision) << answer.error;
      if (!answer.decision) co_return;
      allowed.push_back(answer.decision->allowed);
      remaining.push_back(answer.decision->remaining);
    }
    EXPECT_EQ(allowed, (std::vector<bool>{true, true, true, false, false}));
    EXPECT_EQ(remaining, (std::vector<std::int64_t>{2, 1, 0, 0, 0}));
    // Another key has its own budget.
    Future<Answer> other = hit(a, "other", kStart);
    Answer o = co_await other;
    EXPECT_TRUE(o.decision && o.decision->allowed);
  });
}

TEST_F(RedisRateStoreTest, TheWindowSlides) {
  RedisRateStore store(RateWindow(2, kHour), at(server->port()));
  run([&]() -> Task<void> {
    for (bool expected : {true, true, false}) {
      Future<Answer> f = hit(store, "k", kStart);
      Answer answer = co_await f;
      EXPECT_TRUE(answer.decision && answer.decision->allowed == expected) << answer.error;
    }
    // Half-way through the next window the previous one weighs floor(2 * 0.5) = 1.
    std::int64_t half = (kStart / kHour + 1) * kHour + kHour / 2;
    for (bool expected : {true, false}) {
      Future<Answer> f = hit(store, "k", half);
      Answer answer = co_await f;
      EXPECT_TRUE(answer.decision && answer.decision->allowed == expected) << answer.error;
    }
  });
}

TEST_F(RedisRateStoreTest, ScriptIsLoadedAgainAfterAFlush) {
  RedisRateStore store(RateWindow(5, kHour), at(server->port()));
  redis::Client admin({.port = server->port()});
  run([&]() -> Task<void> {
    Future<Answer> first = hit(store, "k", kStart);
    Answer a = co_await first;
    EXPECT_TRUE(a.decision) << a.error;
    Future<redis::Reply> flush = admin.cmd("SCRIPT", "FLUSH");
    co_await flush;
    Future<Answer> second = hit(store, "k", kStart);
    Answer b = co_await second;
    EXPECT_TRUE(b.decision) << b.error;
    if (b.decision) {
      EXPECT_EQ(b.decision->remaining, 3);
    }
  });
}

class RedisRateStoreDeadline : public LoopTest {};

TEST_F(RedisRateStoreDeadline, APeerThatNeverAnswersMeetsTheDeadlineThenTheBackoff) {
  LoopbackListener silent;  // connects (the kernel's backlog) and never says a word
  RedisRateStore store(RateWindow(5, kHour), at(silent.port(), 50ms));
  run([&]() -> Task<void> {
    Future<Answer> f = hit(store, "k", kStart);
    Answer a = co_await f;
    EXPECT_FALSE(a.decision);
    // The command's deadline ended it (the connect timeout would say otherwise).
    EXPECT_NE(a.error.find("command timed out"), std::string::npos) << a.error;
    // Backing off: decided at once, without asking the peer.
    bool answered = false;
    store.hit("k", kStart, [&](std::optional<RateDecision> d, std::string_view why) {
      answered = true;
      EXPECT_FALSE(d);
      EXPECT_EQ(why, "backing off after an error");
    });
    EXPECT_TRUE(answered);
  });
}

}  // namespace
