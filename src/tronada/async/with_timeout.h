// with_timeout(): bound the wait for a future or task (Tornado's gen.with_timeout).
#pragma once

#include "tronada/async/future.h"
#include "tronada/async/spawn.h"
#include "tronada/base/error.h"

namespace tronada {

/// A future with `future`'s outcome, or TimeoutError if `timeout` passes first. As in
/// Tornado, the wrapped operation is not cancelled: it runs on and its late result is
/// dropped. Operations that own resources (streams, connections) take their own
/// timeouts, which do cancel.
template <typename T>
Future<T> with_timeout(Duration timeout, Future<T> future) {
  IOLoop& loop = IOLoop::current();
  Promise<T> promise(&loop);
  TimeoutHandle timer = loop.call_later(timeout, [promise]() mutable {
    promise.try_set_exception(std::make_exception_ptr(TimeoutError()));
  });
  // The callback holds the future's state weakly: it runs only while the state exists.
  future.add_done_callback([promise, weak = future.weak_state(), timer, &loop]() mutable {
    loop.remove_timeout(timer);
    auto state = weak.lock();
    if (!state) return;
    Future<T> future(std::move(state));
    if (auto e = future.exception()) {
      promise.try_set_exception(e);
    } else if constexpr (std::is_void_v<T>) {
      promise.try_set_result();
    } else {
      promise.try_set_result(future.result());
    }
  });
  return promise.get_future();
}

template <typename T>
Future<T> with_timeout(Duration timeout, Task<T> task) {
  return with_timeout(timeout, spawn(std::move(task)));
}

}  // namespace tronada
