// Semaphore and BoundedSemaphore: counters that coroutines wait on (tornado.locks).
#pragma once

#include <cstddef>
#include <limits>
#include <optional>
#include <stdexcept>
#include <utility>

#include "tronada/async/detail/waiter_queue.h"
#include "tronada/async/future.h"

namespace tronada {

/// A counter of permits: acquire() takes one, waiting while there are none; release()
/// gives one back. Typical use bounds concurrency:
///
///     auto permit = co_await semaphore.acquire();   // given back when `permit` dies
///
/// Fair: release() hands its permit straight to the oldest waiter, so newcomers cannot
/// overtake coroutines already waiting. A waiter whose acquire() timed out has left the
/// line and is never handed a permit.
///
/// Single-threaded: use it on one loop's thread. The Semaphore must outlive its guards
/// and its waiters.
class Semaphore {
 public:
  /// Holds one permit until destroyed, assigned to or release()d. Move-only.
  class [[nodiscard]] Guard {
   public:
    Guard() = default;
    Guard(Guard&& other) noexcept : semaphore_(std::exchange(other.semaphore_, nullptr)) {}
    Guard& operator=(Guard&& other) noexcept {
      if (this != &other) {
        release();
        semaphore_ = std::exchange(other.semaphore_, nullptr);
      }
      return *this;
    }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    ~Guard() { release(); }

    explicit operator bool() const { return semaphore_ != nullptr; }

    /// Gives the permit back early; a no-op on a guard that holds none.
    void release() noexcept {
      if (semaphore_) std::exchange(semaphore_, nullptr)->give_back();
    }

    /// Forgets the permit without giving it back; the caller then owes a
    /// Semaphore::release().
    void detach() noexcept { semaphore_ = nullptr; }

   private:
    friend class Semaphore;
    explicit Guard(Semaphore* semaphore) : semaphore_(semaphore) {}
    Semaphore* semaphore_ = nullptr;
  };

  explicit Semaphore(std::size_t value = 1)
      : Semaphore(value, std::numeric_limits<std::size_t>::max()) {}
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  /// Permits available now.
  std::size_t value() const { return value_; }
  std::size_t waiting() const { return waiters_.size(); }

  /// Completes with a Guard holding one permit; at once if one is free. With a timeout,
  /// fails with TimeoutError if no permit came within `timeout`. Dropping the returned
  /// future unawaited gives the permit back once it is granted.
  Future<Guard> acquire(std::optional<Duration> timeout = std::nullopt) {
    if (value_ > 0) {
      --value_;
      return make_ready_future<Guard>(Guard(this));
    }
    return waiters_.push(timeout);
  }

  /// Gives back a permit taken through a detached guard, Tornado style. On a
  /// BoundedSemaphore, throws std::logic_error if that would exceed the initial value.
  void release() {
    if (waiters_.empty() && value_ >= bound_) {
      throw std::logic_error("Semaphore released too many times");
    }
    give_back();
  }

 protected:
  Semaphore(std::size_t value, std::size_t bound) : value_(value), bound_(bound) {}

 private:
  void give_back() noexcept {
    if (waiters_.empty()) {
      // A guard only exists for a permit that was taken, so this stays within bound_.
      if (value_ < bound_) ++value_;
      return;
    }
    auto waiter = waiters_.pop();
    waiter.promise.set_result(Guard(this));
  }

  std::size_t value_;
  std::size_t bound_;
  detail::WaiterQueue<Guard> waiters_;
};

/// A Semaphore whose release() throws std::logic_error when it would raise the count
/// above its initial value: releasing more often than acquiring is a bug it reports.
class BoundedSemaphore : public Semaphore {
 public:
  explicit BoundedSemaphore(std::size_t value = 1) : Semaphore(value, value) {}
};

}  // namespace tronada
