// Queue<T>: a FIFO for passing items between coroutines (tornado.queues.Queue).
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <stdexcept>
#include <utility>

#include "tronada/async/detail/waiter_queue.h"
#include "tronada/async/event.h"
#include "tronada/async/future.h"

namespace tronada {

/// Raised by Queue::get_nowait on an empty queue.
class QueueEmpty : public std::runtime_error {
 public:
  QueueEmpty() : std::runtime_error("queue is empty") {}
};

/// Raised by Queue::put_nowait on a full queue.
class QueueFull : public std::runtime_error {
 public:
  QueueFull() : std::runtime_error("queue is full") {}
};

/// A first-in first-out queue of at most `maxsize` items (0: unbounded). put() waits
/// while the queue is full and get() while it is empty, which gives producers
/// backpressure. As in Tornado, every put counts an unfinished task that the consumer
/// settles with task_done(), and join() waits until none is left.
///
/// Items go straight to a waiting getter, and a get from a full queue pulls in the
/// oldest waiting putter's item, so the order of items is the order of puts. A put or
/// get that timed out has left the line: its item is dropped and it is never served.
///
/// Single-threaded: use it on one loop's thread, and keep it alive while coroutines
/// wait on it.
template <typename T>
class Queue {
 public:
  explicit Queue(std::size_t maxsize = 0) : maxsize_(maxsize) { finished_.set(); }
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;

  std::size_t maxsize() const { return maxsize_; }
  std::size_t qsize() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  bool full() const { return maxsize_ != 0 && items_.size() >= maxsize_; }

  /// Completes once `item` is in the queue (or handed to a getter); at once if there is
  /// room. With a timeout, fails with TimeoutError and drops `item` if there was still
  /// no room after `timeout`.
  Future<void> put(T item, std::optional<Duration> timeout = std::nullopt) {
    if (full()) return putters_.push(timeout, std::move(item));
    put_nowait(std::move(item));
    return make_ready_future<void>();
  }

  /// Adds `item` without waiting; throws QueueFull (and keeps nothing) if full.
  void put_nowait(T item) {
    if (!getters_.empty()) {
      // A getter waits only on an empty queue, so no queued item is skipped.
      count_unfinished();
      auto getter = getters_.pop();
      getter.promise.set_result(std::move(item));
      return;
    }
    if (full()) throw QueueFull();
    count_unfinished();
    items_.push_back(std::move(item));
  }

  /// Completes with the oldest item; at once if there is one. With a timeout, fails with
  /// TimeoutError if the queue was still empty after `timeout`.
  Future<T> get(std::optional<Duration> timeout = std::nullopt) {
    if (empty()) return getters_.push(timeout);
    return make_ready_future<T>(get_nowait());
  }

  /// Removes and returns the oldest item without waiting; throws QueueEmpty if none.
  T get_nowait() {
    if (items_.empty()) throw QueueEmpty();
    T item = std::move(items_.front());
    items_.pop_front();
    if (!putters_.empty()) {
      // Putters wait only on a full queue, which now has room for the oldest one.
      auto putter = putters_.pop();
      count_unfinished();
      items_.push_back(std::move(putter.payload));
      putter.promise.set_result();
    }
    return item;
  }

  /// Marks one item taken with get() as processed. Throws std::logic_error if called
  /// more times than items were put.
  void task_done() {
    if (unfinished_ == 0) throw std::logic_error("task_done() called too many times");
    if (--unfinished_ == 0) finished_.set();
  }

  /// Completes when every item put so far has been marked task_done(). With a
  /// timeout, fails with TimeoutError if some are still unfinished after `timeout`.
  Future<void> join(std::optional<Duration> timeout = std::nullopt) {
    return finished_.wait(timeout);
  }

 private:
  void count_unfinished() {
    ++unfinished_;
    finished_.clear();
  }

  std::size_t maxsize_;
  std::deque<T> items_;
  std::size_t unfinished_ = 0;
  Event finished_;
  detail::WaiterQueue<T> getters_;
  detail::WaiterQueue<void, T> putters_;
};

}  // namespace tronada
