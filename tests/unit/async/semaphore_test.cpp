#include "tronada/async/semaphore.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "support/loop_check.h"
#include "tronada/async/gather.h"
#include "tronada/async/run_sync.h"
#include "tronada/async/sleep.h"
#include "tronada/async/spawn.h"

using namespace tronada;
using namespace std::chrono_literals;
using test_support::expect_clean_close;
using test_support::next_tick;
using test_support::open_user_handles;

namespace {

struct Occupancy {
  int now = 0;
  int peak = 0;
};

Task<void> worker(Semaphore& semaphore, Occupancy& occupancy, std::vector<int>& started, int id) {
  auto permit = co_await semaphore.acquire();
  started.push_back(id);
  occupancy.peak = std::max(occupancy.peak, ++occupancy.now);
  co_await sleep(1ms);
  co_await next_tick();
  --occupancy.now;
}

Task<bool> try_acquire(Semaphore& semaphore, Duration timeout) {
  try {
    auto permit = co_await semaphore.acquire(timeout);
    co_return true;
  } catch (const TimeoutError&) {
    co_return false;
  }
}

}  // namespace

TEST(Semaphore, CountsPermits) {
  IOLoop loop;
  loop.make_current();
  Semaphore semaphore(2);
  EXPECT_EQ(semaphore.value(), 2u);
  run_sync([&]() -> Task<void> {
    auto a = co_await semaphore.acquire();
    auto b = co_await semaphore.acquire();
    EXPECT_EQ(semaphore.value(), 0u);
    Future<Semaphore::Guard> c = semaphore.acquire();
    EXPECT_FALSE(c.done());
    EXPECT_EQ(semaphore.waiting(), 1u);
    a.release();
    // The permit went to the waiter rather than back to the counter.
    EXPECT_EQ(semaphore.value(), 0u);
    EXPECT_TRUE(c.done());
    auto c_permit = co_await c;
    EXPECT_TRUE(static_cast<bool>(c_permit));
  });
  EXPECT_EQ(semaphore.value(), 2u);
  expect_clean_close(loop);
}

TEST(Semaphore, BoundsConcurrencyAndAdmitsInArrivalOrder) {
  IOLoop loop;
  loop.make_current();
  Semaphore semaphore(3);
  Occupancy occupancy;
  std::vector<int> started;
  run_sync([&]() -> Task<void> {
    std::vector<Task<void>> tasks;
    for (int i = 0; i < 10; ++i) tasks.push_back(worker(semaphore, occupancy, started, i));
    co_await gather(std::move(tasks));
  });
  EXPECT_EQ(occupancy.peak, 3);
  EXPECT_EQ(started, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(semaphore.value(), 3u);
  expect_clean_close(loop);
}

TEST(Semaphore, TimedOutWaiterIsNeverHandedAPermit) {
  IOLoop loop;
  loop.make_current();
  Semaphore semaphore(0);
  run_sync([&]() -> Task<void> {
    Future<bool> impatient = spawn(try_acquire(semaphore, 2ms));
    Future<bool> patient = spawn(try_acquire(semaphore, 30s));
    bool got = co_await impatient;
    EXPECT_FALSE(got);
    EXPECT_EQ(semaphore.waiting(), 1u);
    semaphore.release();
    got = co_await patient;
    EXPECT_TRUE(got);
    // The patient waiter's permit came back when its guard died; nothing was lost to
    // the expired waiter, and nothing leaked from the 30 s timeout.
    EXPECT_EQ(semaphore.value(), 1u);
    EXPECT_EQ(semaphore.waiting(), 0u);
    EXPECT_EQ(open_user_handles(loop), 0);
  });
  expect_clean_close(loop);
}

TEST(Semaphore, UnboundedReleaseRaisesTheCount) {
  IOLoop loop;
  loop.make_current();
  Semaphore semaphore(1);
  semaphore.release();
  semaphore.release();
  EXPECT_EQ(semaphore.value(), 3u);
  expect_clean_close(loop);
}

TEST(Semaphore, BoundedSemaphoreThrowsOnOverRelease) {
  IOLoop loop;
  loop.make_current();
  BoundedSemaphore semaphore(2);
  EXPECT_THROW(semaphore.release(), std::logic_error);
  EXPECT_EQ(semaphore.value(), 2u);
  run_sync([&]() -> Task<void> {
    auto permit = co_await semaphore.acquire();
    permit.detach();
    EXPECT_EQ(semaphore.value(), 1u);
    semaphore.release();
    EXPECT_EQ(semaphore.value(), 2u);
    EXPECT_THROW(semaphore.release(), std::logic_error);
    // A guard gives its permit back without tripping the bound.
    {
      auto a = co_await semaphore.acquire();
      auto b = co_await semaphore.acquire();
    }
    EXPECT_EQ(semaphore.value(), 2u);
  });
  expect_clean_close(loop);
}

TEST(Semaphore, AbandonedAcquireGivesThePermitBack) {
  IOLoop loop;
  loop.make_current();
  Semaphore semaphore(1);
  { (void)semaphore.acquire(); }
  EXPECT_EQ(semaphore.value(), 1u);
  run_sync([&]() -> Task<void> {
    auto permit = co_await semaphore.acquire();
    { (void)semaphore.acquire(); }
    permit.release();
    EXPECT_EQ(semaphore.value(), 1u);
  });
  expect_clean_close(loop);
}
