// A callback run every `interval` on an IOLoop, as Tornado's PeriodicCallback.
#pragma once

#include "tronada/loop/io_loop.h"

namespace tronada {

/// Calls `callback` every `interval`. Runs are scheduled on the grid start + k*interval:
/// a callback that overruns skips the grid points it missed instead of running back to
/// back to catch up. `jitter` (0..1) spreads runs by up to that fraction of the interval.
///
/// Lifetime: owns at most one pending timeout on the loop; stop() (also run by the
/// destructor) removes it. Must be used and destroyed on the loop's thread.
class PeriodicCallback {
 public:
  PeriodicCallback(Callback callback, Duration interval, double jitter = 0.0,
                   IOLoop* loop = nullptr);
  ~PeriodicCallback();
  PeriodicCallback(const PeriodicCallback&) = delete;
  PeriodicCallback& operator=(const PeriodicCallback&) = delete;

  void start();
  void stop();
  bool is_running() const { return running_; }
  Duration interval() const { return interval_; }

 private:
  void run();
  void schedule_next();

  Callback callback_;
  Duration interval_;
  double jitter_;
  IOLoop* loop_;
  bool running_ = false;
  TimePoint next_timeout_{};
  TimeoutHandle timeout_;
};

}  // namespace tronada
