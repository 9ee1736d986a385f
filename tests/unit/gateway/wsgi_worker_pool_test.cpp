// WSGIWorkerPool on its own (no Python): jobs submitted from the loop thread run on the
// pool's threads and report back through IOLoop::add_callback, the path every WSGI
// response takes. Run under ThreadSanitizer by scripts/test.
#include "tronada/gateway/wsgi_worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include "support/loop_check.h"
#include "tronada/loop/io_loop.h"

using namespace tronada;
using namespace std::chrono_literals;

TEST(WSGIWorkerPool, JobsRunOnPoolThreadsAndAnswerThroughTheLoop) {
  IOLoop loop;
  loop.make_current();
  constexpr int kJobs = 200;
  std::atomic<int> thread_setups{0};
  std::mutex seen_mutex;
  std::set<std::thread::id> workers;
  int answered = 0;  // loop thread only
  {
    WSGIWorkerPool pool(3, kJobs, [&](const std::function<void()>& run) {
      ++thread_setups;
      run();
    });
    EXPECT_EQ(pool.threads(), 3);
    loop.add_callback([&] {
      for (int i = 0; i < kJobs; ++i) {
        ASSERT_TRUE(pool.submit([&, i](Duration queued) {
          EXPECT_GE(queued.count(), 0);
          {
            std::lock_guard lock(seen_mutex);
            workers.insert(std::this_thread::get_id());
          }
          loop.add_callback([&, i] {
            (void)i;
            if (++answered == kJobs) loop.stop();
          });
        }));
      }
    });
    loop.start();
    pool.stop();
    EXPECT_FALSE(pool.submit([](Duration) {}));  // refused once stopped
  }
  EXPECT_EQ(answered, kJobs);
  EXPECT_EQ(thread_setups.load(), 3);
  EXPECT_FALSE(workers.count(std::this_thread::get_id()));
  test_support::expect_clean_close(loop);
}

TEST(WSGIWorkerPool, AFullQueueRefusesAndStopRunsWhatWasQueued) {
  std::mutex gate;
  std::unique_lock hold(gate);  // the one worker blocks on its first job until released
  std::atomic<int> ran{0};
  WSGIWorkerPool pool(1, 2, [](const std::function<void()>& run) { run(); });
  ASSERT_TRUE(pool.submit([&](Duration) {
    std::lock_guard wait(gate);
    ++ran;
  }));
  // Once the worker took the first job, two fit in the queue and the third does not.
  while (pool.queued() != 0) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(pool.submit([&](Duration) { ++ran; }));
  EXPECT_TRUE(pool.submit([&](Duration) { ++ran; }));
  EXPECT_FALSE(pool.submit([&](Duration) { ++ran; }));
  hold.unlock();
  pool.stop();
  EXPECT_EQ(ran.load(), 3);
}
