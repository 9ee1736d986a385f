#include "tronada/loop/periodic_callback.h"

#include <random>
#include <stdexcept>

namespace tronada {

PeriodicCallback::PeriodicCallback(Callback callback, Duration interval, double jitter,
                                   IOLoop* loop)
    : callback_(std::move(callback)),
      interval_(interval),
      jitter_(jitter),
      loop_(loop ? loop : &IOLoop::current()) {
  if (interval <= Duration::zero()) throw std::invalid_argument("interval must be positive");
}

PeriodicCallback::~PeriodicCallback() { stop(); }

void PeriodicCallback::start() {
  if (running_) return;
  running_ = true;
  next_timeout_ = loop_->time();
  schedule_next();
}

void PeriodicCallback::stop() {
  running_ = false;
  if (timeout_) {
    loop_->remove_timeout(timeout_);
    timeout_ = {};
  }
}

void PeriodicCallback::run() {
  timeout_ = {};
  if (!running_) return;
  IOLoop::invoke_logged("periodic callback", callback_);
  // The loop caches its clock per iteration: after a callback that overran, "now" would
  // still be this run's start, the missed grid points would not look missed, and the
  // next run would fire at once, back to back.
  uv_update_time(loop_->uv());
  // The callback may have stopped us, or stopped and restarted us (start() already
  // scheduled the next run: scheduling again would run us twice per interval).
  if (running_ && !timeout_) schedule_next();
}

void PeriodicCallback::schedule_next() {
  Duration interval = interval_;
  if (jitter_ > 0) {
    thread_local std::mt19937 rng{std::random_device{}()};
    std::uniform_real_distribution<double> dist(-jitter_ / 2, jitter_ / 2);
    interval += std::chrono::duration_cast<Duration>(interval_ * dist(rng));
  }
  TimePoint now = loop_->time();
  if (next_timeout_ <= now) {
    // Skip every grid point already in the past: a slow callback loses runs rather than
    // having them fire back to back.
    auto missed = (now - next_timeout_) / interval + 1;
    next_timeout_ += missed * interval;
  }
  timeout_ = loop_->call_at(next_timeout_, [this] { run(); });
}

}  // namespace tronada
