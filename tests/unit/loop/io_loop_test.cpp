#include "tronada/loop/io_loop.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/loop_check.h"

using namespace tronada;
using namespace std::chrono_literals;
using test_support::expect_clean_close;
using test_support::LogCapture;
using test_support::open_user_handles;

namespace {

// A connected AF_UNIX stream pair, closed at scope exit (after the loop is closed).
struct SocketPair {
  int fds[2] = {-1, -1};
  SocketPair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0); }
  ~SocketPair() {
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
  }
  int a() const { return fds[0]; }
  int b() const { return fds[1]; }
  void close_b() {
    ::close(fds[1]);
    fds[1] = -1;
  }
};

void write_byte(int fd) {
  ASSERT_EQ(::write(fd, "x", 1), 1);
}

// Stops the loop after `limit` so that a broken test fails instead of hanging; the flag
// tells the test it fired.
struct Watchdog {
  IOLoop& loop;
  bool fired = false;
  TimeoutHandle handle;
  Watchdog(IOLoop& l, Duration limit) : loop(l) {
    handle = loop.call_later(limit, [this] {
      fired = true;
      loop.stop();
    });
  }
  ~Watchdog() { loop.remove_timeout(handle); }
  // Call once the loop has returned, before checking that no handle is left open.
  void disarm() {
    EXPECT_FALSE(fired) << "the watchdog had to stop the loop";
    loop.remove_timeout(handle);
    handle = {};
  }
};

}  // namespace

TEST(IOLoop, CallbacksRunInTheOrderAdded) {
  IOLoop loop;
  loop.make_current();
  std::vector<int> order;
  for (int i = 0; i < 5; ++i) loop.add_callback([&order, i] { order.push_back(i); });
  loop.add_callback([&] { loop.stop(); });
  loop.start();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  expect_clean_close(loop);
}

TEST(IOLoop, CallbacksAddedWhileRunningWaitForTheNextBatch) {
  IOLoop loop;
  loop.make_current();
  std::vector<std::string> order;
  loop.add_callback([&] {
    order.push_back("a");
    loop.add_callback([&] {
      order.push_back("a2");
      loop.stop();
    });
  });
  loop.add_callback([&] { order.push_back("b"); });
  loop.start();
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b", "a2"}));
  expect_clean_close(loop);
}

TEST(IOLoop, SelfReaddingCallbackDoesNotStarveTimersOrIO) {
  IOLoop loop;
  loop.make_current();
  SocketPair pair;
  long spins = 0;
  bool spinning = true;
  std::function<void()> spin = [&] {
    ++spins;
    if (spinning) loop.add_callback(spin);
  };
  loop.add_callback(spin);

  bool timer_fired = false;
  bool fd_fired = false;
  auto maybe_stop = [&] {
    if (timer_fired && fd_fired) {
      spinning = false;
      loop.stop();
    }
  };
  loop.call_later(5ms, [&] {
    timer_fired = true;
    maybe_stop();
  });
  loop.add_handler(
      pair.a(),
      [&](int fd, int events) {
        EXPECT_TRUE(events & IOLoop::READ);
        char c;
        EXPECT_EQ(::read(fd, &c, 1), 1);
        fd_fired = true;
        loop.remove_handler(fd);
        maybe_stop();
      },
      IOLoop::READ);
  // Written from a timer so that the byte arrives while the spinner is already running.
  loop.call_later(1ms, [&] { write_byte(pair.b()); });
  Watchdog watchdog(loop, 10s);
  loop.start();
  watchdog.disarm();
  EXPECT_TRUE(timer_fired);
  EXPECT_TRUE(fd_fired);
  EXPECT_GT(spins, 1);
  expect_clean_close(loop);
}

TEST(IOLoop, AddCallbackFromOtherThreadsWakesTheLoopAndRunsEachOnce) {
  IOLoop loop;
  loop.make_current();
  constexpr int kThreads = 8;
  constexpr int kPerThread = 500;
  std::vector<int> runs(kThreads * kPerThread, 0);
  int total = 0;
  std::vector<std::thread> threads;
  std::atomic<bool> go{false};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < kPerThread; ++i) {
        int slot = t * kPerThread + i;
        loop.add_callback([&, slot] {
          ++runs[slot];
          if (++total == kThreads * kPerThread) loop.stop();
        });
      }
    });
  }
  // Released only once the loop is running and has nothing to do, so the first
  // callback must wake it from its poll.
  loop.call_later(20ms, [&] { go.store(true); });
  Watchdog watchdog(loop, 20s);
  loop.start();
  watchdog.disarm();
  for (auto& t : threads) t.join();
  EXPECT_EQ(total, kThreads * kPerThread);
  for (int slot = 0; slot < kThreads * kPerThread; ++slot) ASSERT_EQ(runs[slot], 1) << slot;
  expect_clean_close(loop);
}

TEST(IOLoop, StopFromAnotherThread) {
  IOLoop loop;
  loop.make_current();
  std::thread stopper;
  // Stop() from a thread started while the loop sleeps in its poll.
  loop.call_later(1ms, [&] {
    stopper = std::thread([&] {
      std::this_thread::sleep_for(20ms);
      loop.stop();
    });
  });
  Watchdog watchdog(loop, 20s);
  loop.start();
  watchdog.disarm();
  stopper.join();
  EXPECT_FALSE(loop.running());
  expect_clean_close(loop);
}

TEST(IOLoop, StopBeforeStartIsHonoured) {
  IOLoop loop;
  loop.make_current();
  bool ran = false;
  loop.stop();
  loop.add_callback([&] { ran = true; });
  loop.start();  // returns at once
  EXPECT_FALSE(ran);
  loop.add_callback([&] { loop.stop(); });
  loop.start();
  EXPECT_TRUE(ran);
  expect_clean_close(loop);
}

TEST(IOLoop, ExceptionsInCallbacksAreLoggedAndTheLoopGoesOn) {
  IOLoop loop;
  loop.make_current();
  LogCapture capture;
  SocketPair pair;
  std::vector<std::string> order;
  loop.add_callback([] { throw std::runtime_error("boom in callback"); });
  loop.add_callback([&] { order.push_back("after callback"); });
  loop.call_later(1ms, [] { throw std::runtime_error("boom in timeout"); });
  loop.call_later(2ms, [&] {
    order.push_back("after timeout");
    write_byte(pair.b());
  });
  loop.add_handler(
      pair.a(),
      [&](int fd, int) {
        loop.remove_handler(fd);
        loop.add_callback([&] {
          order.push_back("after fd handler");
          loop.stop();
        });
        throw 42;  // not a std::exception
      },
      IOLoop::READ);
  Watchdog watchdog(loop, 10s);
  // Both timeouts are due before the loop starts (as on a loaded CI machine): callbacks
  // queued before start() still run first.
  std::this_thread::sleep_for(5ms);
  loop.start();
  watchdog.disarm();
  EXPECT_EQ(order,
            (std::vector<std::string>{"after callback", "after timeout", "after fd handler"}));
  std::string logged = capture.contents();
  EXPECT_NE(logged.find("boom in callback"), std::string::npos) << logged;
  EXPECT_NE(logged.find("boom in timeout"), std::string::npos) << logged;
  EXPECT_NE(logged.find("unknown exception in fd handler"), std::string::npos) << logged;
  expect_clean_close(loop);
}

TEST(IOLoop, TimeoutsFireInDeadlineOrder) {
  IOLoop loop;
  loop.make_current();
  std::vector<int> order;
  loop.call_later(30ms, [&] {
    order.push_back(30);
    loop.stop();
  });
  loop.call_later(10ms, [&] { order.push_back(10); });
  loop.call_at(loop.time() + 20ms, [&] { order.push_back(20); });
  loop.call_later(0ms, [&] { order.push_back(0); });
  // Equal deadlines keep the order in which they were set.
  loop.call_later(5ms, [&] { order.push_back(5); });
  loop.call_later(5ms, [&] { order.push_back(6); });
  loop.call_later(-5ms, [&] { order.push_back(-5); });
  loop.start();
  EXPECT_EQ(order, (std::vector<int>{0, -5, 5, 6, 10, 20, 30}));
  expect_clean_close(loop);
}

TEST(IOLoop, RemoveTimeout) {
  IOLoop loop;
  loop.make_current();
  std::vector<std::string> fired;
  TimeoutHandle removed_early = loop.call_later(1ms, [&] { fired.push_back("removed early"); });
  loop.remove_timeout(removed_early);
  loop.remove_timeout(removed_early);    // twice is harmless
  loop.remove_timeout(TimeoutHandle{});  // so is an empty handle

  // Two timeouts due in the same iteration: the first removes the second.
  TimeoutHandle victim;
  loop.call_later(5ms, [&] {
    fired.push_back("remover");
    loop.remove_timeout(victim);
  });
  victim = loop.call_later(5ms, [&] { fired.push_back("victim"); });
  // One due later, removed from inside an earlier one.
  TimeoutHandle later = loop.call_later(40ms, [&] { fired.push_back("later"); });
  loop.call_later(10ms, [&] { loop.remove_timeout(later); });

  TimeoutHandle done = loop.call_later(2ms, [&] { fired.push_back("done"); });
  loop.call_later(20ms, [&] {
    loop.remove_timeout(done);  // already fired: a no-op
    fired.push_back("checked");
  });
  loop.call_later(60ms, [&] { loop.stop(); });
  loop.start();
  EXPECT_EQ(fired, (std::vector<std::string>{"done", "remover", "checked"}));
  expect_clean_close(loop);
}

TEST(IOLoop, FdHandlerForRead) {
  IOLoop loop;
  loop.make_current();
  SocketPair pair;
  std::string received;
  loop.add_handler(
      pair.a(),
      [&](int fd, int events) {
        ASSERT_TRUE(events & IOLoop::READ);
        char buf[16];
        ssize_t n = ::read(fd, buf, sizeof buf);
        ASSERT_GT(n, 0);
        received.append(buf, static_cast<std::size_t>(n));
        if (received.size() >= 3) loop.stop();
      },
      IOLoop::READ);
  loop.add_callback([&] { ASSERT_EQ(::write(pair.b(), "abc", 3), 3); });
  Watchdog watchdog(loop, 10s);
  loop.start();
  watchdog.disarm();
  EXPECT_EQ(received, "abc");
  loop.remove_handler(pair.a());
  loop.remove_handler(pair.a());  // twice is harmless
  expect_clean_close(loop);
}

TEST(IOLoop, FdHandlerForWriteThenUpdatedToRead) {
  IOLoop loop;
  loop.make_current();
  SocketPair pair;
  std::vector<int> seen;
  loop.add_handler(
      pair.a(),
      [&](int fd, int events) {
        if (events & IOLoop::WRITE) {
          seen.push_back(IOLoop::WRITE);
          // A writable socket stays writable: without the update this would spin.
          loop.update_handler(fd, IOLoop::READ);
          loop.call_later(5ms, [&] { write_byte(pair.b()); });
        } else if (events & IOLoop::READ) {
          char c;
          EXPECT_EQ(::read(fd, &c, 1), 1);
          seen.push_back(IOLoop::READ);
          loop.stop();
        }
      },
      IOLoop::WRITE);
  Watchdog watchdog(loop, 10s);
  loop.start();
  watchdog.disarm();
  EXPECT_EQ(seen, (std::vector<int>{IOLoop::WRITE, IOLoop::READ}));
  EXPECT_THROW(loop.update_handler(pair.b(), IOLoop::READ), std::logic_error);
  EXPECT_THROW(loop.add_handler(
                   pair.a(), [](int, int) {}, IOLoop::READ),
               std::logic_error);
  loop.remove_handler(pair.a());
  expect_clean_close(loop);
}

TEST(IOLoop, FdHandlerRemovedInsideItselfIsNotCalledAgain) {
  IOLoop loop;
  loop.make_current();
  SocketPair pair;
  int calls = 0;
  loop.add_handler(
      pair.a(),
      [&](int fd, int) {
        ++calls;
        loop.remove_handler(fd);  // the byte stays unread: a live watcher would fire again
      },
      IOLoop::READ);
  write_byte(pair.b());
  // Several iterations with the fd still readable.
  loop.call_later(30ms, [&] { loop.stop(); });
  loop.start();
  EXPECT_EQ(calls, 1);
  // The fd can be watched afresh.
  loop.add_handler(
      pair.a(),
      [&](int fd, int) {
        ++calls;
        loop.remove_handler(fd);
        loop.stop();
      },
      IOLoop::READ);
  loop.start();
  EXPECT_EQ(calls, 2);
  expect_clean_close(loop);
}

TEST(IOLoop, FdHandlerSeesPeerClose) {
  IOLoop loop;
  loop.make_current();
  SocketPair pair;
  int seen = 0;
  loop.add_handler(
      pair.a(),
      [&](int fd, int events) {
        seen = events;
        loop.remove_handler(fd);
        loop.stop();
      },
      IOLoop::READ);
  loop.add_callback([&] { pair.close_b(); });
  Watchdog watchdog(loop, 10s);
  loop.start();
  watchdog.disarm();
  EXPECT_TRUE(seen & IOLoop::READ);
  EXPECT_TRUE(seen & IOLoop::ERROR);
  expect_clean_close(loop);
}

TEST(IOLoop, SignalHandler) {
  IOLoop loop;
  loop.make_current();
  int signals = 0;
  loop.add_signal_handler(SIGUSR1, [&] {
    if (++signals == 2) loop.stop();
  });
  loop.add_callback([] { std::raise(SIGUSR1); });
  loop.call_later(5ms, [] { std::raise(SIGUSR1); });
  Watchdog watchdog(loop, 10s);
  loop.start();
  watchdog.disarm();
  EXPECT_EQ(signals, 2);
  loop.remove_signal_handler(SIGUSR1);
  loop.remove_signal_handler(SIGUSR1);  // twice is harmless
  expect_clean_close(loop);
}

TEST(IOLoop, RunInThreadpool) {
  IOLoop loop;
  loop.make_current();
  const auto loop_thread = std::this_thread::get_id();
  int result = 0;
  std::thread::id worker_thread;
  std::string error;
  int completions = 0;
  auto finish = [&] {
    if (++completions == 2) loop.stop();
  };
  loop.run_in_threadpool(
      [&] {
        worker_thread = std::this_thread::get_id();
        result = 6 * 7;
      },
      [&](std::exception_ptr e) {
        EXPECT_FALSE(e);
        EXPECT_EQ(std::this_thread::get_id(), loop_thread);
        finish();
      });
  loop.run_in_threadpool([] { throw std::runtime_error("worker failed"); },
                         [&](std::exception_ptr e) {
                           try {
                             if (e) std::rethrow_exception(e);
                           } catch (const std::runtime_error& err) {
                             error = err.what();
                           }
                           finish();
                         });
  Watchdog watchdog(loop, 10s);
  loop.start();
  watchdog.disarm();
  EXPECT_EQ(result, 42);
  EXPECT_NE(worker_thread, loop_thread);
  EXPECT_EQ(error, "worker failed");
  expect_clean_close(loop);
}

TEST(IOLoop, CloseReleasesEveryHandle) {
  IOLoop loop;
  loop.make_current();
  SocketPair pair;
  bool ran = false;
  loop.call_later(1h, [&] { ran = true; });
  loop.call_later(2h, [&] { ran = true; });
  loop.add_handler(
      pair.a(), [&](int, int) { ran = true; }, IOLoop::READ);
  loop.add_signal_handler(SIGUSR2, [&] { ran = true; });
  loop.add_callback([&] { ran = true; });
  EXPECT_EQ(open_user_handles(loop), 4);
  LogCapture capture;
  loop.close();
  loop.close();  // idempotent
  // close() only returns once uv_loop_close succeeded; it logs if it had to force
  // stragglers closed.
  EXPECT_EQ(capture.contents().find("still open"), std::string::npos) << capture.contents();
  EXPECT_FALSE(ran);
  EXPECT_THROW(loop.start(), std::logic_error);
  EXPECT_THROW(loop.call_later(1ms, [] {}), std::logic_error);
}
