// Test helpers: capture log lines, wait a loop iteration, and close a loop asserting that nothing
// was left open.
#pragma once

#include <gtest/gtest.h>
#include <uv.h>

#include <cstdio>
#include <string>

#include "tronada/async/future.h"
#include "tronada/base/log.h"
#include "tronada/loop/io_loop.h"

namespace tronada::test_support {

/// Redirects tronada's log to a temporary file for its lifetime.
class LogCapture {
 public:
  LogCapture() : file_(std::tmpfile()) { log::set_sink(file_); }
  ~LogCapture() {
    log::set_sink(nullptr);
    if (file_) std::fclose(file_);
  }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::string contents() const {
    std::string out;
    if (!file_) return out;
    log::flush_deferred();  // lines this thread's running loop still holds
    std::fflush(file_);
    std::rewind(file_);
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, file_)) > 0) out.append(buf, n);
    std::fseek(file_, 0, SEEK_END);
    return out;
  }

 private:
  std::FILE* file_;
};

/// Completes on the loop's next iteration: lets every coroutine that is ready run.
inline Future<void> next_tick() {
  IOLoop& loop = IOLoop::current();
  Promise<void> promise(&loop);
  loop.add_callback([promise]() mutable { promise.set_result(); });
  return promise.get_future();
}

/// Handles on `loop` that are neither closing nor the IOLoop's own wakeup/check/idle
/// trio or idle timer slots: pending timers, fd pollers and signal watchers that a test
/// forgot (or that a primitive failed to cancel).
inline int open_user_handles(IOLoop& loop) {
  struct Walk {
    IOLoop* loop;
    int open = 0;
  } walk{&loop};
  uv_walk(
      loop.uv(),
      [](uv_handle_t* h, void* arg) {
        auto* w = static_cast<Walk*>(arg);
        if (uv_is_closing(h)) return;
        switch (h->type) {
          case UV_ASYNC:
          case UV_CHECK:
          case UV_IDLE:
          case UV_PREPARE:
            return;
          default:
            if (w->loop->is_timer_slot(h) && !uv_is_active(h)) return;
            ++w->open;
        }
      },
      &walk);
  return walk.open;
}

/// Ends a test as libuv's MAKE_VALGRIND_HAPPY does: nothing of ours is left open, and
/// closing the loop does not have to force-close stragglers (it logs when it does).
inline void expect_clean_close(IOLoop& loop) {
  EXPECT_EQ(open_user_handles(loop), 0);
  LogCapture capture;
  loop.close();
  EXPECT_EQ(capture.contents().find("still open"), std::string::npos) << capture.contents();
}

}  // namespace tronada::test_support
