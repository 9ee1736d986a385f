// Condition: coroutines wait until another one notifies them (tornado.locks.Condition).
#pragma once

#include <algorithm>
#include <cstddef>
#include <optional>
#include <vector>

#include "tronada/async/detail/waiter_queue.h"
#include "tronada/async/future.h"

namespace tronada {

/// Waiters park in wait() until notify() wakes the oldest `n` of them or notify_all()
/// wakes all. There is no associated mutex: coroutines on one loop only switch at
/// co_await, so checking a predicate and calling wait() cannot race with a notify.
/// Single-threaded: use it on one loop's thread, and keep it alive while coroutines
/// wait on it.
class Condition {
 public:
  Condition() = default;
  Condition(const Condition&) = delete;
  Condition& operator=(const Condition&) = delete;

  /// Completes with true when notified, or with false once `timeout` has passed; a
  /// waiter that timed out has left the line and no later notify can reach it.
  Future<bool> wait(std::optional<Duration> timeout = std::nullopt) {
    return waiters_.push(timeout);
  }

  /// Wakes up to `n` waiters, oldest first.
  void notify(std::size_t n = 1) {
    // Take the waiters before waking any, so a done callback that waits again joins
    // the line behind this notify instead of being counted in it.
    std::vector<Promise<bool>> woken;
    woken.reserve(std::min(n, waiters_.size()));
    while (woken.size() < n && !waiters_.empty()) woken.push_back(waiters_.pop().promise);
    for (auto& promise : woken) promise.set_result(true);
  }

  void notify_all() { notify(waiters_.size()); }

  std::size_t waiting() const { return waiters_.size(); }

 private:
  static void resolve_false(Promise<bool>& promise) { promise.set_result(false); }

  detail::WaiterQueue<bool> waiters_{&resolve_false};
};

}  // namespace tronada
