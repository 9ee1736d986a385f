// Event: a flag that coroutines can wait on (Tornado's tornado.locks.Event).
#pragma once

#include <optional>
#include <vector>

#include "tronada/async/detail/waiter_queue.h"
#include "tronada/async/future.h"

namespace tronada {

/// A flag, initially false. set() makes it true and wakes every waiter; clear() makes it
/// false again, and waiters woken before the clear still see their wait succeed.
/// Single-threaded: use it on one loop's thread, and keep it alive while coroutines
/// wait on it.
class Event {
 public:
  Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  bool is_set() const { return value_; }

  void set() {
    if (value_) return;
    value_ = true;
    // Take every waiter before waking any: a done callback that clears the flag and
    // waits again must wait for the next set().
    std::vector<Promise<void>> woken;
    woken.reserve(waiters_.size());
    while (!waiters_.empty()) woken.push_back(waiters_.pop().promise);
    for (auto& promise : woken) promise.set_result();
  }

  void clear() { value_ = false; }

  /// Completes when the flag is set; already done if it is set now. With a timeout,
  /// fails with TimeoutError if the flag is still unset after `timeout`.
  Future<void> wait(std::optional<Duration> timeout = std::nullopt) {
    if (value_) return make_ready_future<void>();
    return waiters_.push(timeout);
  }

 private:
  bool value_ = false;
  detail::WaiterQueue<void> waiters_;
};

}  // namespace tronada
