// Lock: a coroutine mutex, first come first served (tornado.locks.Lock).
#pragma once

#include <optional>
#include <stdexcept>
#include <utility>

#include "tronada/async/detail/waiter_queue.h"
#include "tronada/async/future.h"

namespace tronada {

/// A mutual-exclusion lock for coroutines on one loop:
///
///     auto guard = co_await lock.acquire();   // released when `guard` goes out of scope
///
/// The guard is the lock: a bare `co_await lock.acquire();` drops it and releases at once.
///
/// Fair: release() hands the lock straight to the oldest waiter, so a coroutine that
/// calls acquire() between that release and the waiter's resumption queues behind it
/// instead of barging in. A waiter whose acquire() timed out has left the line and is
/// never handed the lock.
///
/// Single-threaded: use it on one loop's thread. The Lock must outlive its guards and
/// its waiters.
class Lock {
 public:
  /// Owns the lock until destroyed, assigned to or unlock()ed. Move-only.
  class [[nodiscard]] Guard {
   public:
    Guard() = default;
    Guard(Guard&& other) noexcept : lock_(std::exchange(other.lock_, nullptr)) {}
    Guard& operator=(Guard&& other) noexcept {
      if (this != &other) {
        unlock();
        lock_ = std::exchange(other.lock_, nullptr);
      }
      return *this;
    }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    ~Guard() { unlock(); }

    bool owns_lock() const { return lock_ != nullptr; }
    explicit operator bool() const { return owns_lock(); }

    /// Releases early; a no-op on a guard that owns nothing.
    void unlock() noexcept {
      if (lock_) std::exchange(lock_, nullptr)->hand_over();
    }

    /// Forgets the lock without releasing it; the caller then owes a Lock::release().
    void detach() noexcept { lock_ = nullptr; }

   private:
    friend class Lock;
    explicit Guard(Lock* lock) : lock_(lock) {}
    Lock* lock_ = nullptr;
  };

  Lock() = default;
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

  bool locked() const { return locked_; }

  /// Completes with a Guard once the lock is ours; at once if it is free. With a
  /// timeout, fails with TimeoutError if the lock is still not ours after `timeout`.
  /// Dropping the returned future unawaited releases the lock once it is granted.
  Future<Guard> acquire(std::optional<Duration> timeout = std::nullopt) {
    if (!locked_) {
      locked_ = true;
      return make_ready_future<Guard>(Guard(this));
    }
    return waiters_.push(timeout);
  }

  /// Releases a lock whose guard was detached, Tornado style. Throws std::logic_error
  /// if the lock is not held.
  void release() {
    if (!locked_) throw std::logic_error("release of an unlocked Lock");
    hand_over();
  }

 private:
  void hand_over() noexcept {
    if (waiters_.empty()) {
      locked_ = false;
      return;
    }
    // Ownership passes directly: locked_ stays true on behalf of the woken waiter.
    auto waiter = waiters_.pop();
    waiter.promise.set_result(Guard(this));
  }

  bool locked_ = false;
  detail::WaiterQueue<Guard> waiters_;
};

}  // namespace tronada
