#include "tronada/async/task.h"

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "support/loop_check.h"
#include "tronada/async/event.h"
#include "tronada/async/executor.h"
#include "tronada/async/gather.h"
#include "tronada/async/run_sync.h"
#include "tronada/async/sleep.h"
#include "tronada/async/spawn.h"
#include "tronada/async/with_timeout.h"

using namespace tronada;
using namespace std::chrono_literals;
using test_support::expect_clean_close;
using test_support::LogCapture;
using test_support::next_tick;

namespace {

Task<int> answer() {
  co_return 42;
}

Task<int> inner_fails(int depth) {
  if (depth == 0) throw std::runtime_error("deep failure");
  co_await next_tick();
  co_return co_await inner_fails(depth - 1);
}

Task<std::string> middle() {
  int v = co_await inner_fails(3);
  co_return std::to_string(v);
}

Task<int> synchronous(int i) {
  co_return i;
}

Task<void> set_flag(bool& flag) {
  flag = true;
  co_return;
}

// Holds `token` in its frame, so the frame's destruction shows in the use count.
Task<int> hold(std::shared_ptr<int> token) {
  co_return *token;
}

Task<int> after_ticks(int value, int ticks) {
  for (int i = 0; i < ticks; ++i) co_await next_tick();
  co_return value;
}

Task<int> failing_after_ticks(int ticks) {
  for (int i = 0; i < ticks; ++i) co_await next_tick();
  throw std::runtime_error("gathered failure");
}

Task<void> count_after_ticks(int& finished, int ticks) {
  for (int i = 0; i < ticks; ++i) co_await next_tick();
  ++finished;
}

Task<void> void_failing() {
  co_await next_tick();
  throw std::logic_error("void failure");
}

// Finishes only when `release` is set, then sets `finished`.
Task<int> gated(Event& release, Event& finished) {
  co_await release.wait();
  finished.set();
  co_return 7;
}

Task<void> await_and_note(Future<int> f, std::vector<std::string>& order, std::string name) {
  int v = co_await f;
  order.push_back(name + "=" + std::to_string(v));
}

// Done callbacks and awaiting coroutines, registered in `pattern` order ('c' a callback
// that also posts a loop callback, 'w' a coroutine), then the promise completes: what
// runs, and when.
std::vector<std::string> completion_order(const std::string& pattern) {
  IOLoop loop;
  loop.make_current();
  std::vector<std::string> order;
  Promise<int> promise(&loop);
  Future<int> future = promise.get_future();
  std::vector<Future<void>> waiters;
  int c = 0, w = 0;
  for (char kind : pattern) {
    if (kind == 'c') {
      std::string name = "c" + std::to_string(++c);
      future.add_done_callback([&order, &loop, name] {
        order.push_back(name);
        loop.add_callback([&order, name] { order.push_back("posted by " + name); });
      });
    } else {
      waiters.push_back(spawn(await_and_note(future, order, "w" + std::to_string(++w))));
    }
  }
  run_sync([&]() -> Task<void> {
    promise.set_result(5);
    for (auto& f : waiters) co_await f;
  });
  expect_clean_close(loop);
  return order;
}

}  // namespace

TEST(Future, CallbacksAndAwaitingCoroutinesRunInTheOrderTheyCame) {
  // Callbacks run inside set_result; each coroutine resumes from the loop, after what
  // the callbacks before it posted and before what those after it posted.
  EXPECT_EQ(completion_order("wcw"),
            (std::vector<std::string>{"c1", "w1=5", "posted by c1", "w2=5"}));
  EXPECT_EQ(completion_order("cww"),
            (std::vector<std::string>{"c1", "posted by c1", "w1=5", "w2=5"}));
  EXPECT_EQ(completion_order("wwcc"),
            (std::vector<std::string>{"c1", "c2", "w1=5", "w2=5", "posted by c1", "posted by c2"}));
  EXPECT_EQ(completion_order("w"), (std::vector<std::string>{"w1=5"}));
}

TEST(Task, ExceptionPropagatesThroughNestedTasks) {
  IOLoop loop;
  loop.make_current();
  std::string caught = run_sync([]() -> Task<std::string> {
    try {
      co_await middle();
    } catch (const std::runtime_error& e) {
      co_return std::string(e.what());
    }
    co_return std::string("no exception");
  });
  EXPECT_EQ(caught, "deep failure");
  // And out of run_sync.
  EXPECT_THROW(run_sync([] { return middle(); }), std::runtime_error);
  expect_clean_close(loop);
}

TEST(Task, AMillionSynchronousCompletionsDoNotGrowTheStack) {
  IOLoop loop;
  loop.make_current();
  long long sum = run_sync([]() -> Task<long long> {
    long long total = 0;
    for (int i = 0; i < 1'000'000; ++i) total += co_await synchronous(i);
    co_return total;
  });
  EXPECT_EQ(sum, 999'999LL * 1'000'000LL / 2);
  expect_clean_close(loop);
}

TEST(Task, IsLazyAndAnUnawaitedTaskNeverRuns) {
  IOLoop loop;
  loop.make_current();
  bool ran = false;
  auto token = std::make_shared<int>(1);
  {
    Task<void> task = set_flag(ran);
    Task<int> held = hold(token);
    EXPECT_TRUE(task.valid());
    EXPECT_FALSE(task.done());
    EXPECT_EQ(token.use_count(), 2);
  }
  EXPECT_FALSE(ran);
  // The frame (and what it held) was destroyed with the Task.
  EXPECT_EQ(token.use_count(), 1);
  expect_clean_close(loop);
}

TEST(Task, MoveSemantics) {
  IOLoop loop;
  loop.make_current();
  auto token = std::make_shared<int>(5);
  Task<int> a = hold(token);
  Task<int> b = std::move(a);
  EXPECT_FALSE(a.valid());
  EXPECT_TRUE(b.valid());
  Task<int> c = answer();
  // Assigning over a live task destroys the frame it owned.
  c = std::move(b);
  EXPECT_FALSE(b.valid());
  EXPECT_EQ(token.use_count(), 2);
  int v = run_sync([&]() -> Task<int> { co_return co_await std::move(c); });
  EXPECT_EQ(v, 5);
  EXPECT_TRUE(c.done());
  c = Task<int>();
  EXPECT_EQ(token.use_count(), 1);
  expect_clean_close(loop);
}

TEST(Task, GatherVectorKeepsOrder) {
  IOLoop loop;
  loop.make_current();
  auto values = run_sync([]() -> Task<std::vector<int>> {
    std::vector<Task<int>> tasks;
    // Finishing in reverse order; results still come back in argument order.
    for (int i = 0; i < 5; ++i) tasks.push_back(after_ticks(i, 5 - i));
    co_return co_await gather(std::move(tasks));
  });
  EXPECT_EQ(values, (std::vector<int>{0, 1, 2, 3, 4}));
  expect_clean_close(loop);
}

TEST(Task, GatherVectorWithOneFailureWaitsForAllThenThrows) {
  IOLoop loop;
  loop.make_current();
  int finished = 0;
  std::string error = run_sync([&]() -> Task<std::string> {
    std::vector<Task<void>> tasks;
    tasks.push_back(count_after_ticks(finished, 1));
    tasks.push_back(void_failing());
    tasks.push_back(count_after_ticks(finished, 6));
    try {
      co_await gather(std::move(tasks));
    } catch (const std::logic_error& e) {
      co_return std::string(e.what());
    }
    co_return std::string();
  });
  EXPECT_EQ(error, "void failure");
  EXPECT_EQ(finished, 2);

  EXPECT_THROW(run_sync([]() -> Task<void> {
                 std::vector<Task<int>> tasks;
                 tasks.push_back(after_ticks(1, 1));
                 tasks.push_back(failing_after_ticks(2));
                 (void)co_await gather(std::move(tasks));
               }),
               std::runtime_error);
  expect_clean_close(loop);
}

TEST(Task, GatherTuple) {
  IOLoop loop;
  loop.make_current();
  auto [i, s] = run_sync([]() -> Task<std::tuple<int, std::string>> {
    co_return co_await gather(after_ticks(3, 2), [](int n) -> Task<std::string> {
      co_await next_tick();
      co_return std::string(static_cast<std::size_t>(n), 'x');
    }(2));
  });
  EXPECT_EQ(i, 3);
  EXPECT_EQ(s, "xx");

  int finished = 0;
  std::string error = run_sync([&]() -> Task<std::string> {
    try {
      (void)co_await gather(after_ticks(1, 4), failing_after_ticks(1), after_ticks(2, 6));
    } catch (const std::runtime_error& e) {
      finished = 1;
      co_return std::string(e.what());
    }
    co_return std::string();
  });
  EXPECT_EQ(error, "gathered failure");
  EXPECT_EQ(finished, 1);
  expect_clean_close(loop);
}

TEST(Task, WithTimeout) {
  IOLoop loop;
  loop.make_current();
  Event release;
  Event finished;
  run_sync([&]() -> Task<void> {
    int quick = co_await with_timeout(10s, after_ticks(9, 2));
    EXPECT_EQ(quick, 9);

    bool timed_out = false;
    try {
      (void)co_await with_timeout(5ms, gated(release, finished));
    } catch (const TimeoutError&) {
      timed_out = true;
    }
    EXPECT_TRUE(timed_out);
    // The wrapped task is not cancelled: it runs on, and its late result is dropped.
    EXPECT_FALSE(finished.is_set());
    release.set();
    co_await finished.wait();
    co_await next_tick();

    // Futures as well as tasks.
    Promise<int> promise;
    Future<int> wrapped = with_timeout(10s, promise.get_future());
    promise.set_result(11);
    int v = co_await wrapped;
    EXPECT_EQ(v, 11);
  });
  expect_clean_close(loop);
}

TEST(Task, RunSyncTimeoutThrowsAndALateFinishDoesNotStopTheNextRun) {
  IOLoop loop;
  loop.make_current();
  Event release;
  Event finished;
  EXPECT_THROW(run_sync([&] { return gated(release, finished); }, 5ms), TimeoutError);
  EXPECT_FALSE(finished.is_set());
  // The abandoned task finishes during this run; its completion must not stop it early.
  int v = run_sync(
      [&]() -> Task<int> {
        release.set();
        co_await finished.wait();
        for (int i = 0; i < 3; ++i) co_await next_tick();
        co_return 1;
      },
      10s);
  EXPECT_EQ(v, 1);
  EXPECT_EQ(run_sync([] { return answer(); }, 10s), 42);
  expect_clean_close(loop);
}

TEST(Task, RunInExecutor) {
  IOLoop loop;
  loop.make_current();
  const auto loop_thread = std::this_thread::get_id();
  run_sync([&]() -> Task<void> {
    std::thread::id worker;
    int v = co_await run_in_executor([&worker] {
      worker = std::this_thread::get_id();
      return 6 * 7;
    });
    EXPECT_EQ(v, 42);
    EXPECT_NE(worker, loop_thread);
    EXPECT_EQ(std::this_thread::get_id(), loop_thread);

    bool side_effect = false;
    co_await run_in_executor([&side_effect] { side_effect = true; });
    EXPECT_TRUE(side_effect);

    std::string error;
    try {
      co_await run_in_executor([]() -> int { throw std::runtime_error("worker failed"); });
    } catch (const std::runtime_error& e) {
      error = e.what();
    }
    EXPECT_EQ(error, "worker failed");

    bool void_failed = false;
    try {
      co_await run_in_executor([] { throw std::logic_error("void worker failed"); });
    } catch (const std::logic_error&) {
      void_failed = true;
    }
    EXPECT_TRUE(void_failed);
  });
  expect_clean_close(loop);
}

TEST(Task, SpawnLoggedLogsTheException) {
  IOLoop loop;
  loop.make_current();
  LogCapture capture;
  run_sync([]() -> Task<void> {
    spawn_logged(void_failing(), "test task");
    for (int i = 0; i < 3; ++i) co_await next_tick();
  });
  EXPECT_NE(capture.contents().find("void failure"), std::string::npos) << capture.contents();
  expect_clean_close(loop);
}
