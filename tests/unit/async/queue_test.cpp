#include "tronada/async/queue.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
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

struct Traffic {
  int produced = 0;  // puts that completed
  int consumed = 0;  // gets that completed
  int max_lead = 0;  // largest produced - consumed seen by the producer
  std::vector<int> received;
};

Task<void> producer(Queue<int>& queue, Traffic& traffic, int count) {
  for (int i = 0; i < count; ++i) {
    co_await queue.put(i);
    ++traffic.produced;
    traffic.max_lead = std::max(traffic.max_lead, traffic.produced - traffic.consumed);
    EXPECT_LE(queue.qsize(), queue.maxsize());
  }
}

Task<void> consumer(Queue<int>& queue, Traffic& traffic, int count) {
  for (int i = 0; i < count; ++i) {
    int item = co_await queue.get();
    ++traffic.consumed;
    traffic.received.push_back(item);
    // A slow consumer: the producer must wait for it rather than fill memory.
    co_await sleep(1ms);
    queue.task_done();
  }
}

}  // namespace

TEST(Queue, NowaitOperationsAndSizes) {
  IOLoop loop;
  loop.make_current();
  Queue<std::string> queue(2);
  EXPECT_EQ(queue.maxsize(), 2u);
  EXPECT_TRUE(queue.empty());
  EXPECT_FALSE(queue.full());
  EXPECT_THROW(queue.get_nowait(), QueueEmpty);
  queue.put_nowait("a");
  queue.put_nowait("b");
  EXPECT_EQ(queue.qsize(), 2u);
  EXPECT_TRUE(queue.full());
  EXPECT_THROW(queue.put_nowait("c"), QueueFull);
  EXPECT_EQ(queue.qsize(), 2u);
  EXPECT_EQ(queue.get_nowait(), "a");
  EXPECT_EQ(queue.get_nowait(), "b");
  EXPECT_TRUE(queue.empty());
  expect_clean_close(loop);
}

TEST(Queue, ZeroMaxsizeIsUnbounded) {
  IOLoop loop;
  loop.make_current();
  Queue<int> queue;
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(queue.put(i).done());
  EXPECT_FALSE(queue.full());
  EXPECT_EQ(queue.qsize(), 1000u);
  expect_clean_close(loop);
}

TEST(Queue, GetWaitsForAPutAndPutWaitsForRoom) {
  IOLoop loop;
  loop.make_current();
  Queue<int> queue(1);
  run_sync([&]() -> Task<void> {
    Future<int> getter = queue.get();
    EXPECT_FALSE(getter.done());
    co_await queue.put(7);  // handed straight to the getter
    EXPECT_TRUE(queue.empty());
    int got = co_await getter;
    EXPECT_EQ(got, 7);

    co_await queue.put(1);
    Future<void> second = queue.put(2);
    Future<void> third = queue.put(3);
    EXPECT_FALSE(second.done());
    int first = co_await queue.get();
    EXPECT_EQ(first, 1);
    // The get made room and pulled the oldest putter's item in.
    EXPECT_TRUE(second.done());
    EXPECT_FALSE(third.done());
    EXPECT_EQ(queue.qsize(), 1u);
    int two = co_await queue.get();
    int three = co_await queue.get();
    EXPECT_EQ(two, 2);
    EXPECT_EQ(three, 3);
    co_await third;
  });
  expect_clean_close(loop);
}

TEST(Queue, TimedOutGetterIsNeverServed) {
  IOLoop loop;
  loop.make_current();
  Queue<int> queue;
  run_sync([&]() -> Task<void> {
    Future<int> impatient = queue.get(2ms);
    Future<int> patient = queue.get(30s);
    bool timed_out = false;
    try {
      co_await impatient;
    } catch (const TimeoutError&) {
      timed_out = true;
    }
    EXPECT_TRUE(timed_out);
    queue.put_nowait(1);
    queue.put_nowait(2);
    int got = co_await patient;
    EXPECT_EQ(got, 1);
    // The 2 stayed in the queue rather than going to the expired getter.
    EXPECT_EQ(queue.qsize(), 1u);
    EXPECT_EQ(open_user_handles(loop), 0);
  });
  expect_clean_close(loop);
}

TEST(Queue, TimedOutPutterDropsItsItem) {
  IOLoop loop;
  loop.make_current();
  Queue<int> queue(1);
  run_sync([&]() -> Task<void> {
    queue.put_nowait(1);
    Future<void> impatient = queue.put(2, 2ms);
    Future<void> patient = queue.put(3, 30s);
    bool timed_out = false;
    try {
      co_await impatient;
    } catch (const TimeoutError&) {
      timed_out = true;
    }
    EXPECT_TRUE(timed_out);
    EXPECT_EQ(queue.get_nowait(), 1);
    EXPECT_TRUE(patient.done());
    EXPECT_EQ(queue.get_nowait(), 3);
    EXPECT_TRUE(queue.empty());
    co_await patient;
    // Items 1 and 3 were put; the dropped 2 never counted as an unfinished task.
    queue.task_done();
    queue.task_done();
    EXPECT_THROW(queue.task_done(), std::logic_error);
    EXPECT_EQ(open_user_handles(loop), 0);
  });
  expect_clean_close(loop);
}

TEST(Queue, TaskDoneAndJoin) {
  IOLoop loop;
  loop.make_current();
  Queue<int> queue;
  EXPECT_TRUE(queue.join().done());
  EXPECT_THROW(queue.task_done(), std::logic_error);
  run_sync([&]() -> Task<void> {
    queue.put_nowait(1);
    queue.put_nowait(2);
    Future<void> joined = queue.join();
    EXPECT_FALSE(joined.done());
    bool timed_out = false;
    try {
      co_await queue.join(2ms);
    } catch (const TimeoutError&) {
      timed_out = true;
    }
    EXPECT_TRUE(timed_out);
    (void)queue.get_nowait();
    queue.task_done();
    EXPECT_FALSE(joined.done());
    (void)queue.get_nowait();
    queue.task_done();
    EXPECT_TRUE(joined.done());
    co_await joined;
  });
  expect_clean_close(loop);
}

TEST(Queue, ProducerConsumerWithBackpressure) {
  IOLoop loop;
  loop.make_current();
  constexpr int kItems = 30;
  Queue<int> queue(3);
  Traffic traffic;
  run_sync(
      [&]() -> Task<void> {
        Future<void> consuming = spawn(consumer(queue, traffic, kItems));
        co_await producer(queue, traffic, kItems);
        co_await queue.join();
        co_await consuming;
      },
      10s);
  std::vector<int> expected;
  for (int i = 0; i < kItems; ++i) expected.push_back(i);
  EXPECT_EQ(traffic.received, expected);
  // The producer ran ahead by at most the queue's capacity plus the item the consumer
  // holds: it was held back, not allowed to race through all 30.
  EXPECT_LE(traffic.max_lead, 3 + 1);
  EXPECT_GE(traffic.max_lead, 3);
  expect_clean_close(loop);
}

TEST(Queue, MoveOnlyItems) {
  IOLoop loop;
  loop.make_current();
  Queue<std::unique_ptr<int>> queue(1);
  run_sync([&]() -> Task<void> {
    Future<std::unique_ptr<int>> getter = queue.get();
    queue.put_nowait(std::make_unique<int>(1));
    std::unique_ptr<int> one = co_await getter;
    EXPECT_EQ(*one, 1);
    co_await queue.put(std::make_unique<int>(2));
    Future<void> pending = queue.put(std::make_unique<int>(3));
    std::unique_ptr<int> two = co_await queue.get();
    std::unique_ptr<int> three = co_await queue.get();
    EXPECT_EQ(*two, 2);
    EXPECT_EQ(*three, 3);
    co_await pending;
  });
  expect_clean_close(loop);
}
