// Task<T>: a lazy, move-only C++20 coroutine that another coroutine co_awaits.
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "tronada/async/detail/frame_pool.h"

namespace tronada {

template <typename T = void>
class Task;

namespace detail {

template <typename T>
struct TaskFinalAwaiter {
  bool await_ready() const noexcept { return false; }
  template <typename Promise>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
    auto& promise = h.promise();
    if (promise.starting) {
      // Finished before the awaiter's await_suspend returned: that call is still on
      // the stack below us and carries on with the awaiter itself (see Task's Awaiter).
      promise.starting = false;
      promise.finished_while_starting = true;
      return std::noop_coroutine();
    }
    // Finished after suspending: symmetric transfer back to the awaiter.
    return promise.continuation ? promise.continuation : std::noop_coroutine();
  }
  void await_resume() const noexcept {}
};

struct TaskPromiseBase : PooledFrame {
  std::coroutine_handle<> continuation;
  std::exception_ptr exception;
  // Set while the awaiter's await_suspend runs the task: see Task's Awaiter.
  bool starting = false;
  bool finished_while_starting = false;

  std::suspend_always initial_suspend() const noexcept { return {}; }
  void unhandled_exception() noexcept { exception = std::current_exception(); }
};

template <typename T>
struct TaskPromise : TaskPromiseBase {
  std::optional<T> value;

  Task<T> get_return_object() noexcept;
  TaskFinalAwaiter<T> final_suspend() const noexcept { return {}; }
  template <typename U>
  requires std::is_convertible_v<U&&, T>
  void return_value(U&& v) { value.emplace(std::forward<U>(v)); }
  T result() {
    if (exception) std::rethrow_exception(exception);
    return std::move(*value);
  }
};

template <>
struct TaskPromise<void> : TaskPromiseBase {
  Task<void> get_return_object() noexcept;
  TaskFinalAwaiter<void> final_suspend() const noexcept { return {}; }
  void return_void() const noexcept {}
  void result() {
    if (exception) std::rethrow_exception(exception);
  }
};

}  // namespace detail

/// A coroutine that starts when first awaited, runs on the awaiting coroutine's thread,
/// and hands its value or exception to the awaiter. The Task owns its frame: destroying
/// a Task that was never awaited destroys the coroutine without running it. To run a
/// Task without awaiting it from a coroutine, use `spawn` (tronada/async/spawn.h) or
/// `run_sync` (tronada/async/run_sync.h).
template <typename T>
class [[nodiscard]] Task {
 public:
  using promise_type = detail::TaskPromise<T>;
  using value_type = T;

  Task() noexcept = default;
  explicit Task(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}
  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      if (handle_) handle_.destroy();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() {
    if (handle_) handle_.destroy();
  }

  bool valid() const noexcept { return static_cast<bool>(handle_); }
  bool done() const noexcept { return !handle_ || handle_.done(); }

  auto operator co_await() && noexcept {
    struct Awaiter {
      std::coroutine_handle<promise_type> handle;
      bool await_ready() const noexcept { return !handle || handle.done(); }
      // TRICKY: a task that completes without suspending must not resume its awaiter
      // from final_suspend. Symmetric transfer makes that free only when the compiler
      // turns it into a tail call, which GCC does not at -O0 or under AddressSanitizer:
      // there a loop of a million synchronous co_awaits nested a million frames and
      // overflowed the stack. So the task starts inside this call, and if it finishes
      // before returning here the awaiter simply does not suspend.
      bool await_suspend(std::coroutine_handle<> awaiting) noexcept {
        auto& promise = handle.promise();
        promise.continuation = awaiting;
        promise.starting = true;
        handle.resume();
        if (promise.finished_while_starting) return false;
        promise.starting = false;
        return true;
      }
      T await_resume() { return handle.promise().result(); }
    };
    return Awaiter{handle_};
  }
  auto operator co_await() & noexcept { return std::move(*this).operator co_await(); }

  /// For spawn(): the frame, released from this Task's ownership.
  std::coroutine_handle<promise_type> release() noexcept { return std::exchange(handle_, {}); }

 private:
  std::coroutine_handle<promise_type> handle_;
};

namespace detail {
template <typename T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(*this));
}
inline Task<void> TaskPromise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<TaskPromise<void>>::from_promise(*this));
}
}  // namespace detail

}  // namespace tronada
