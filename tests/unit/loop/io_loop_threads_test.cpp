// The loop's cross-thread entry points used together, as a busy gateway does: foreign
// threads and executor jobs calling add_callback while the loop runs timers and collects
// executor completions. Meant for ThreadSanitizer (scripts/test runs it in the TSan
// stage); the counts also make it a plain functional test.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "support/loop_check.h"
#include "tronada/async/executor.h"
#include "tronada/async/run_sync.h"
#include "tronada/async/task.h"
#include "tronada/loop/io_loop.h"

using namespace tronada;
using namespace std::chrono_literals;

TEST(IOLoopThreads, ForeignCallbacksExecutorJobsAndTimersTogether) {
  IOLoop loop;
  loop.make_current();
  constexpr int kThreads = 4;
  constexpr int kPerThread = 200;
  constexpr int kJobs = 48;
  constexpr int kExpected = kThreads * kPerThread + 2 * kJobs;

  int callbacks = 0;  // loop thread only, like every loop-owned object
  int ticks = 0;
  std::atomic<int> job_runs{0};
  std::vector<int> job_results(kJobs, 0);
  auto done = [&] {
    if (++callbacks == kExpected) loop.stop();
  };

  TimeoutHandle tick_handle;
  std::function<void()> tick = [&] {
    ++ticks;
    tick_handle = loop.call_later(1ms, tick);
  };
  tick_handle = loop.call_later(1ms, tick);

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) loop.add_callback(done);
    });
  }
  for (int j = 0; j < kJobs; ++j) {
    loop.run_in_threadpool(
        [&, j] {
          job_results[j] = j * j;  // written on the pool, read on the loop after `done`
          ++job_runs;
          loop.add_callback(done);  // a worker posting back directly, as WSGI does
        },
        [&, j](std::exception_ptr e) {
          EXPECT_FALSE(e);
          EXPECT_EQ(job_results[j], j * j);
          done();
        });
  }
  auto watchdog = loop.call_later(30s, [&] { loop.stop(); });
  loop.start();
  loop.remove_timeout(watchdog);
  loop.remove_timeout(tick_handle);
  for (auto& t : threads) t.join();
  EXPECT_EQ(callbacks, kExpected);
  EXPECT_EQ(job_runs.load(), kJobs);
  (void)ticks;  // how many ticks fit in depends on the machine
  tick = nullptr;
  test_support::expect_clean_close(loop);
}

TEST(IOLoopThreads, RunInExecutorResultsArriveOnTheLoopThread) {
  IOLoop loop;
  loop.make_current();
  const auto loop_thread = std::this_thread::get_id();
  int sum = run_sync(
      [&]() -> Task<int> {
        int total = 0;
        for (int i = 0; i < 16; ++i) {
          total += co_await run_in_executor([i] {
            std::this_thread::sleep_for(100us);
            return i;
          });
          EXPECT_EQ(std::this_thread::get_id(), loop_thread);
        }
        co_return total;
      },
      30s);
  EXPECT_EQ(sum, 120);
  test_support::expect_clean_close(loop);
}
