#include "tronada/loop/periodic_callback.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/loop_check.h"

using namespace tronada;
using namespace std::chrono_literals;
using test_support::expect_clean_close;

// Timing here is asserted only through counts and orderings with wide slack: the machine
// is shared, so any run may be late, but none may be early or doubled.

TEST(PeriodicCallback, RunsRepeatedlyUntilStoppedInsideTheCallback) {
  IOLoop loop;
  loop.make_current();
  int runs = 0;
  std::unique_ptr<PeriodicCallback> periodic;
  periodic = std::make_unique<PeriodicCallback>(
      [&] {
        if (++runs == 5) periodic->stop();
      },
      2ms, 0.0, &loop);
  EXPECT_FALSE(periodic->is_running());
  periodic->start();
  EXPECT_TRUE(periodic->is_running());
  // Long enough for many more runs, were the stop not honoured.
  loop.call_later(200ms, [&] { loop.stop(); });
  loop.start();
  EXPECT_EQ(runs, 5);
  EXPECT_FALSE(periodic->is_running());
  expect_clean_close(loop);
}

TEST(PeriodicCallback, FirstRunComesOneIntervalAfterStart) {
  IOLoop loop;
  loop.make_current();
  std::vector<std::string> order;
  PeriodicCallback periodic([&] { order.push_back("periodic"); }, 20ms);
  periodic.start();
  loop.call_later(5ms, [&] { order.push_back("timer"); });
  loop.call_later(60ms, [&] {
    periodic.stop();
    loop.stop();
  });
  loop.start();
  ASSERT_GE(order.size(), 2u);
  EXPECT_EQ(order[0], "timer");
  EXPECT_EQ(order[1], "periodic");
  expect_clean_close(loop);
}

TEST(PeriodicCallback, OverrunningCallbackSkipsMissedRunsInsteadOfRunningBackToBack) {
  IOLoop loop;
  loop.make_current();
  constexpr auto kInterval = 10ms;
  int runs = 0;
  PeriodicCallback periodic(
      [&] {
        ++runs;
        // Blocks the loop for three intervals: the runs due meanwhile are missed.
        std::this_thread::sleep_for(3 * kInterval);
      },
      kInterval);
  auto begin = std::chrono::steady_clock::now();
  periodic.start();
  loop.call_later(400ms, [&] {
    periodic.stop();
    loop.stop();
  });
  loop.start();
  auto elapsed = std::chrono::steady_clock::now() - begin;
  // Each run occupies its three intervals and then waits for the next grid point, so it
  // costs at least four; catching up back to back would cost three. A slow machine only
  // makes runs rarer, so this lower bound cannot fail spuriously.
  ASSERT_GT(runs, 2);
  EXPECT_GE(elapsed / runs, 3.5 * kInterval) << runs << " runs";
  EXPECT_LE(runs, 11);
  expect_clean_close(loop);
}

TEST(PeriodicCallback, OneSlowRunLosesTheGridPointsItMissed) {
  IOLoop loop;
  loop.make_current();
  constexpr auto kInterval = 40ms;
  using SteadyClock = std::chrono::steady_clock;
  std::vector<SteadyClock::time_point> starts;
  SteadyClock::time_point slow_end;
  // Runs are due on the grid start + k * interval, in the loop's clock (steady_clock).
  TimePoint grid_origin = loop.time();
  PeriodicCallback periodic(
      [&] {
        starts.push_back(SteadyClock::now());
        if (starts.size() != 2) return;
        // Overrun by at least three intervals and end a quarter interval past a grid
        // point, so the next run is due three quarters of an interval later.
        auto k = (SteadyClock::now() + 3 * kInterval - grid_origin) / kInterval + 1;
        std::this_thread::sleep_until(grid_origin + k * kInterval + kInterval / 4);
        slow_end = SteadyClock::now();
      },
      kInterval);
  periodic.start();
  loop.call_later(400ms, [&] {
    periodic.stop();
    loop.stop();
  });
  loop.start();
  ASSERT_GE(starts.size(), 3u);
  // Catching up would start the next run as soon as the slow one returned. Waiting for
  // the grid leaves most of an interval; an oversleep of up to 25 ms is tolerated.
  EXPECT_GE(starts[2] - slow_end, 5ms);
  expect_clean_close(loop);
}

TEST(PeriodicCallback, StopAndStartInsideTheCallbackKeepsOneSchedule) {
  IOLoop loop;
  loop.make_current();
  constexpr auto kInterval = 5ms;
  int runs = 0;
  std::unique_ptr<PeriodicCallback> periodic;
  periodic = std::make_unique<PeriodicCallback>(
      [&] {
        if (++runs == 2) {
          periodic->stop();
          periodic->start();
        }
      },
      kInterval);
  periodic->start();
  loop.call_later(100ms, [&] {
    periodic->stop();
    loop.stop();
  });
  loop.start();
  // 100 ms holds at most 20 intervals; two schedules would double that.
  EXPECT_GE(runs, 2);
  EXPECT_LE(runs, 21);
  expect_clean_close(loop);
}

TEST(PeriodicCallback, ExceptionsAreLoggedAndRunsContinue) {
  IOLoop loop;
  loop.make_current();
  test_support::LogCapture capture;
  int runs = 0;
  PeriodicCallback periodic(
      [&] {
        if (++runs == 3) loop.stop();
        throw std::runtime_error("periodic boom");
      },
      1ms);
  periodic.start();
  loop.start();
  periodic.stop();
  EXPECT_EQ(runs, 3);
  EXPECT_NE(capture.contents().find("periodic boom"), std::string::npos);
  expect_clean_close(loop);
}

TEST(PeriodicCallback, DestructorCancelsThePendingRun) {
  IOLoop loop;
  loop.make_current();
  int runs = 0;
  {
    PeriodicCallback periodic([&] { ++runs; }, 1ms);
    periodic.start();
  }
  loop.call_later(20ms, [&] { loop.stop(); });
  loop.start();
  EXPECT_EQ(runs, 0);
  EXPECT_THROW(PeriodicCallback([] {}, 0ms), std::invalid_argument);
  expect_clean_close(loop);
}
