// The FIFO of parked coroutines behind Event, Condition, Lock, Semaphore and Queue.
#pragma once

#include <cstddef>
#include <iterator>
#include <list>
#include <optional>
#include <utility>
#include <variant>

#include "tronada/async/future.h"
#include "tronada/base/error.h"
#include "tronada/loop/io_loop.h"

namespace tronada::detail {

/// What a waiter's future gets when its timeout passes first.
template <typename Result>
void fail_with_timeout(Promise<Result>& promise) {
  promise.set_exception(std::make_exception_ptr(TimeoutError()));
}

/// Waiters in arrival order, each a Promise plus an optional payload (a Queue putter's
/// item) and an optional timeout. A waiter leaves the queue exactly once: popped by the
/// primitive, which then completes its promise, or removed by its own timeout, which
/// completes it with `on_timeout`. So a waiter that timed out can never be woken again,
/// and a woken one can never time out.
///
/// Lifetime: timeout callbacks point into this queue, so it is neither copyable nor
/// movable, and its destructor removes every pending timeout. Waiters still queued then
/// are never completed; the primitive that owns the queue must outlive its waiters.
/// Single-threaded: use it on the thread of the loop its timeouts run on.
template <typename Result, typename Payload = std::monostate>
class WaiterQueue {
 public:
  using OnTimeout = void (*)(Promise<Result>&);

  struct Waiter {
    Promise<Result> promise;
    Payload payload;
  };

  explicit WaiterQueue(OnTimeout on_timeout = &fail_with_timeout<Result>)
      : on_timeout_(on_timeout) {}
  ~WaiterQueue() {
    for (auto& entry : entries_) cancel_timeout(entry);
  }
  WaiterQueue(const WaiterQueue&) = delete;
  WaiterQueue& operator=(const WaiterQueue&) = delete;

  bool empty() const { return entries_.empty(); }
  std::size_t size() const { return entries_.size(); }

  /// Parks a new waiter at the back and returns its future.
  Future<Result> push(std::optional<Duration> timeout, Payload payload = {}) {
    IOLoop* loop = &IOLoop::current();
    entries_.push_back(Entry{{Promise<Result>(loop), std::move(payload)}, loop, {}});
    auto it = std::prev(entries_.end());
    Future<Result> future = it->waiter.promise.get_future();
    if (timeout) {
      it->timer = loop->call_later(*timeout, [this, it] { expire(it); });
    }
    return future;
  }

  /// The oldest waiter, removed from the queue with its timeout cancelled. The caller
  /// completes its promise after updating its own state, because completing runs done
  /// callbacks synchronously and they may call back into the primitive.
  Waiter pop() {
    Entry& front = entries_.front();
    cancel_timeout(front);
    Waiter waiter = std::move(front.waiter);
    entries_.pop_front();
    return waiter;
  }

 private:
  struct Entry {
    Waiter waiter;
    IOLoop* loop;
    TimeoutHandle timer;
  };

  void cancel_timeout(Entry& entry) {
    if (entry.timer) entry.loop->remove_timeout(entry.timer);
    entry.timer = {};
  }

  void expire(typename std::list<Entry>::iterator it) {
    Promise<Result> promise = std::move(it->waiter.promise);
    entries_.erase(it);
    on_timeout_(promise);
  }

  OnTimeout on_timeout_;
  // A list so that a timeout can remove its own waiter in O(1) from anywhere in line.
  std::list<Entry> entries_;
};

}  // namespace tronada::detail
