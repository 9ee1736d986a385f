#include "tronada/async/condition.h"

#include <gtest/gtest.h>

#include <vector>

#include "support/loop_check.h"
#include "tronada/async/run_sync.h"
#include "tronada/async/sleep.h"
#include "tronada/async/spawn.h"

using namespace tronada;
using namespace std::chrono_literals;
using test_support::expect_clean_close;
using test_support::next_tick;
using test_support::open_user_handles;

namespace {

Task<void> wait_and_record(Condition& condition, std::vector<int>& order, int id) {
  bool notified = co_await condition.wait();
  EXPECT_TRUE(notified);
  order.push_back(id);
}

}  // namespace

TEST(Condition, NotifyWakesTheOldestWaitersFirst) {
  IOLoop loop;
  loop.make_current();
  Condition condition;
  std::vector<int> order;
  run_sync([&]() -> Task<void> {
    std::vector<Future<void>> waiters;
    for (int i = 0; i < 5; ++i) waiters.push_back(spawn(wait_and_record(condition, order, i)));
    EXPECT_EQ(condition.waiting(), 5u);
    condition.notify();
    co_await waiters[0];
    co_await next_tick();
    EXPECT_EQ(order, std::vector<int>{0});
    condition.notify(2);
    co_await waiters[2];
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
    condition.notify_all();
    for (auto& w : waiters) co_await w;
  });
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(condition.waiting(), 0u);
  expect_clean_close(loop);
}

TEST(Condition, NotifyWithoutWaitersIsANoOp) {
  IOLoop loop;
  loop.make_current();
  Condition condition;
  condition.notify();
  condition.notify(10);
  condition.notify_all();
  // Notifications are not stored: a later waiter still waits.
  Future<bool> f = condition.wait();
  EXPECT_FALSE(f.done());
  condition.notify(100);
  ASSERT_TRUE(f.done());
  EXPECT_TRUE(f.result());
  expect_clean_close(loop);
}

TEST(Condition, WaitTimesOutWithFalseAndLeavesTheLine) {
  IOLoop loop;
  loop.make_current();
  Condition condition;
  run_sync([&]() -> Task<void> {
    Future<bool> early = condition.wait(5ms);
    Future<bool> patient = condition.wait();
    bool early_notified = co_await early;
    EXPECT_FALSE(early_notified);
    EXPECT_EQ(condition.waiting(), 1u);
    // The expired waiter must not absorb this notify: it goes to the live one.
    condition.notify(1);
    bool patient_notified = co_await patient;
    EXPECT_TRUE(patient_notified);
  });
  expect_clean_close(loop);
}

TEST(Condition, TimeoutInTheMiddleOfTheLine) {
  IOLoop loop;
  loop.make_current();
  Condition condition;
  run_sync([&]() -> Task<void> {
    Future<bool> first = condition.wait();
    Future<bool> middle = condition.wait(2ms);
    Future<bool> last = condition.wait(30s);
    co_await sleep(20ms);
    EXPECT_TRUE(middle.done());
    EXPECT_FALSE(first.done());
    EXPECT_FALSE(last.done());
    condition.notify(2);
    bool first_notified = co_await first;
    bool last_notified = co_await last;
    bool middle_notified = co_await middle;
    EXPECT_TRUE(first_notified);
    EXPECT_TRUE(last_notified);
    EXPECT_FALSE(middle_notified);
  });
  // The notified waiter's 30 s timeout was cancelled, not left pending.
  EXPECT_EQ(open_user_handles(loop), 0);
  expect_clean_close(loop);
}

TEST(Condition, DoneCallbackThatWaitsAgainIsNotCountedInTheSameNotify) {
  IOLoop loop;
  loop.make_current();
  Condition condition;
  Future<bool> again;
  Future<bool> first = condition.wait();
  first.add_done_callback([&] { again = condition.wait(); });
  condition.notify_all();
  ASSERT_TRUE(again.valid());
  EXPECT_FALSE(again.done());
  condition.notify();
  EXPECT_TRUE(again.done());
  expect_clean_close(loop);
}
