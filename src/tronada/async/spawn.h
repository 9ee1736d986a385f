// spawn(): run a Task without a coroutine awaiting it, its outcome in a Future.
#pragma once

#include <coroutine>
#include <exception>
#include <utility>

#include "tronada/async/future.h"
#include "tronada/async/task.h"

namespace tronada {

namespace detail {

/// A coroutine that starts at once and frees its own frame when it ends; used only to
/// drive a Task into a Promise. Never exposed: callers get the Future.
struct DetachedCoroutine {
  struct promise_type : PooledFrame {
    DetachedCoroutine get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() const noexcept { return {}; }
    std::suspend_never final_suspend() const noexcept { return {}; }
    void return_void() const noexcept {}
    void unhandled_exception() const noexcept { std::terminate(); }
  };
};

template <typename T>
DetachedCoroutine drive(Task<T> task, Promise<T> promise) {
  try {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(task);
      promise.set_result();
    } else {
      promise.set_result(co_await std::move(task));
    }
  } catch (...) {
    promise.set_exception(std::current_exception());
  }
}

}  // namespace detail

/// Starts `task` now, on the calling thread, and returns a Future of its outcome. The
/// task runs until its first suspension before spawn returns. If nobody looks at the
/// Future, an exception the task raised is lost; use `spawn_logged` for fire-and-forget.
template <typename T>
Future<T> spawn(Task<T> task) {
  Promise<T> promise;
  Future<T> future = promise.get_future();
  detail::drive(std::move(task), std::move(promise));
  return future;
}

/// Starts `task` and logs (with `context`) any exception it ends with.
void spawn_logged(Task<void> task, const char* context = "spawned task");

}  // namespace tronada
