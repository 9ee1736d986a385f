#include "tronada/async/lock.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
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

// Holds the lock across two suspensions and records entering and leaving, so that
// overlapping critical sections would show up as interleaved records.
Task<void> critical_section(Lock& lock, std::vector<std::string>& log, int id) {
  auto guard = co_await lock.acquire();
  log.push_back("in " + std::to_string(id));
  co_await next_tick();
  co_await sleep(1ms);
  log.push_back("out " + std::to_string(id));
}

Task<bool> try_acquire(Lock& lock, Duration timeout) {
  try {
    auto guard = co_await lock.acquire(timeout);
    co_return true;
  } catch (const TimeoutError&) {
    co_return false;
  }
}

}  // namespace

TEST(Lock, GuardReleasesAtScopeExit) {
  IOLoop loop;
  loop.make_current();
  Lock lock;
  run_sync([&]() -> Task<void> {
    EXPECT_FALSE(lock.locked());
    {
      auto guard = co_await lock.acquire();
      EXPECT_TRUE(guard.owns_lock());
      EXPECT_TRUE(lock.locked());
      Lock::Guard moved = std::move(guard);
      EXPECT_FALSE(guard.owns_lock());
      EXPECT_TRUE(lock.locked());
    }
    EXPECT_FALSE(lock.locked());
    auto guard = co_await lock.acquire();
    guard.unlock();
    EXPECT_FALSE(lock.locked());
    guard.unlock();  // no-op
    EXPECT_FALSE(lock.locked());
  });
  expect_clean_close(loop);
}

TEST(Lock, CriticalSectionsDoNotOverlapAndRunInArrivalOrder) {
  IOLoop loop;
  loop.make_current();
  Lock lock;
  std::vector<std::string> log;
  run_sync([&]() -> Task<void> {
    std::vector<Task<void>> tasks;
    for (int i = 0; i < 4; ++i) tasks.push_back(critical_section(lock, log, i));
    co_await gather(std::move(tasks));
  });
  EXPECT_EQ(log, (std::vector<std::string>{"in 0", "out 0", "in 1", "out 1", "in 2", "out 2",
                                           "in 3", "out 3"}));
  EXPECT_FALSE(lock.locked());
  expect_clean_close(loop);
}

TEST(Lock, ReleaseHandsOverToTheOldestWaiterWithoutBarging) {
  IOLoop loop;
  loop.make_current();
  Lock lock;
  std::vector<std::string> log;
  run_sync([&]() -> Task<void> {
    auto guard = co_await lock.acquire();
    Future<void> waiter = spawn(critical_section(lock, log, 1));
    guard.unlock();
    // The lock now belongs to the waiter, even though it has not resumed yet.
    EXPECT_TRUE(lock.locked());
    EXPECT_TRUE(log.empty());
    Future<Lock::Guard> barger = lock.acquire();
    EXPECT_FALSE(barger.done());
    co_await waiter;
    auto mine = co_await barger;
    EXPECT_TRUE(mine.owns_lock());
  });
  EXPECT_EQ(log, (std::vector<std::string>{"in 1", "out 1"}));
  EXPECT_FALSE(lock.locked());
  expect_clean_close(loop);
}

TEST(Lock, TimedOutWaiterIsNeverHandedTheLock) {
  IOLoop loop;
  loop.make_current();
  Lock lock;
  run_sync([&]() -> Task<void> {
    auto guard = co_await lock.acquire();
    bool got = co_await try_acquire(lock, 5ms);
    EXPECT_FALSE(got);
    // Were the expired waiter still queued, the lock would go to it and stay locked.
    guard.unlock();
    EXPECT_FALSE(lock.locked());
  });
  expect_clean_close(loop);
}

TEST(Lock, TimeoutInTheMiddleOfTheLineSkipsOnlyThatWaiter) {
  IOLoop loop;
  loop.make_current();
  Lock lock;
  std::vector<std::string> log;
  run_sync([&]() -> Task<void> {
    auto guard = co_await lock.acquire();
    Future<void> first = spawn(critical_section(lock, log, 1));
    Future<bool> impatient = spawn(try_acquire(lock, 2ms));
    Future<void> last = spawn(critical_section(lock, log, 3));
    bool got = co_await impatient;
    EXPECT_FALSE(got);
    guard.unlock();
    co_await first;
    co_await last;
  });
  EXPECT_EQ(log, (std::vector<std::string>{"in 1", "out 1", "in 3", "out 3"}));
  expect_clean_close(loop);
}

TEST(Lock, GrantedWaiterHasItsTimeoutCancelled) {
  IOLoop loop;
  loop.make_current();
  Lock lock;
  run_sync([&]() -> Task<void> {
    auto guard = co_await lock.acquire();
    Future<bool> waiter = spawn(try_acquire(lock, 30s));
    EXPECT_EQ(open_user_handles(loop), 1);
    guard.unlock();
    EXPECT_EQ(open_user_handles(loop), 0);
    bool got = co_await waiter;
    EXPECT_TRUE(got);
  });
  expect_clean_close(loop);
}

TEST(Lock, AbandonedAcquireGivesTheLockBack) {
  IOLoop loop;
  loop.make_current();
  Lock lock;
  // Granted at once, then dropped unawaited.
  { (void)lock.acquire(); }
  EXPECT_FALSE(lock.locked());
  // Queued, dropped, then granted: the grant falls through to the next waiter.
  run_sync([&]() -> Task<void> {
    auto guard = co_await lock.acquire();
    { (void)lock.acquire(); }
    Future<Lock::Guard> next = lock.acquire();
    guard.unlock();
    EXPECT_TRUE(next.done());
    auto g = co_await next;
    EXPECT_TRUE(g.owns_lock());
  });
  EXPECT_FALSE(lock.locked());
  expect_clean_close(loop);
}

TEST(Lock, DetachedGuardAndExplicitRelease) {
  IOLoop loop;
  loop.make_current();
  Lock lock;
  EXPECT_THROW(lock.release(), std::logic_error);
  run_sync([&]() -> Task<void> {
    {
      auto guard = co_await lock.acquire();
      guard.detach();
    }
    EXPECT_TRUE(lock.locked());
    lock.release();
    EXPECT_FALSE(lock.locked());
  });
  EXPECT_THROW(lock.release(), std::logic_error);
  expect_clean_close(loop);
}
