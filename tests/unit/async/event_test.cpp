#include "tronada/async/event.h"

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

Task<void> wait_and_record(Event& event, std::vector<int>& order, int id) {
  co_await event.wait();
  order.push_back(id);
}

}  // namespace

TEST(Event, StartsClearAndWaitOnASetEventIsReady) {
  IOLoop loop;
  loop.make_current();
  Event event;
  EXPECT_FALSE(event.is_set());
  EXPECT_FALSE(event.wait().done());
  event.set();
  EXPECT_TRUE(event.is_set());
  EXPECT_TRUE(event.wait().done());
  event.clear();
  EXPECT_FALSE(event.is_set());
  EXPECT_FALSE(event.wait().done());
  event.set();  // wakes the two waiters left behind above
  expect_clean_close(loop);
}

TEST(Event, SetWakesEveryWaiterInOrder) {
  IOLoop loop;
  loop.make_current();
  Event event;
  std::vector<int> order;
  run_sync([&]() -> Task<void> {
    auto a = spawn(wait_and_record(event, order, 1));
    auto b = spawn(wait_and_record(event, order, 2));
    auto c = spawn(wait_and_record(event, order, 3));
    co_await next_tick();
    EXPECT_TRUE(order.empty());
    event.set();
    event.set();  // a second set is a no-op
    co_await a;
    co_await b;
    co_await c;
  });
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  expect_clean_close(loop);
}

TEST(Event, WaitersWokenBeforeClearStillSucceed) {
  IOLoop loop;
  loop.make_current();
  Event event;
  std::vector<int> order;
  run_sync([&]() -> Task<void> {
    auto a = spawn(wait_and_record(event, order, 1));
    event.set();
    event.clear();
    co_await a;
    EXPECT_EQ(order, std::vector<int>{1});
    EXPECT_FALSE(event.wait().done());
    event.set();
  });
  expect_clean_close(loop);
}

TEST(Event, WaitTimesOutAndIsNeverWokenLater) {
  IOLoop loop;
  loop.make_current();
  Event event;
  run_sync([&]() -> Task<void> {
    Future<void> timed = event.wait(5ms);
    Future<void> patient = event.wait();
    int completions = 0;
    timed.add_done_callback([&] { ++completions; });
    bool timed_out = false;
    try {
      co_await timed;
    } catch (const TimeoutError&) {
      timed_out = true;
    }
    EXPECT_TRUE(timed_out);
    EXPECT_FALSE(patient.done());
    // Were the expired waiter still queued, set() would complete its promise a second
    // time and throw.
    event.set();
    co_await patient;
    co_await next_tick();
    EXPECT_EQ(completions, 1);
  });
  expect_clean_close(loop);
}

TEST(Event, SetCancelsTheWaitersTimeouts) {
  IOLoop loop;
  loop.make_current();
  Event event;
  Future<void> f1 = event.wait(10s);
  Future<void> f2 = event.wait(20s);
  EXPECT_EQ(open_user_handles(loop), 2);
  event.set();
  EXPECT_TRUE(f1.done());
  EXPECT_TRUE(f2.done());
  EXPECT_FALSE(f1.has_exception());
  EXPECT_EQ(open_user_handles(loop), 0);
  expect_clean_close(loop);
}

TEST(Event, DoneCallbackThatClearsAndWaitsAgainWaitsForTheNextSet) {
  IOLoop loop;
  loop.make_current();
  Event event;
  Future<void> again;
  Future<void> first = event.wait();
  first.add_done_callback([&] {
    event.clear();
    again = event.wait();
  });
  event.set();
  EXPECT_TRUE(first.done());
  ASSERT_TRUE(again.valid());
  EXPECT_FALSE(again.done());
  event.set();
  EXPECT_TRUE(again.done());
  expect_clean_close(loop);
}
