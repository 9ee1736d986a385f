// run_in_executor(): blocking work on the thread pool, awaited from the loop.
#pragma once

#include <memory>
#include <optional>
#include <type_traits>

#include "tronada/async/future.h"

namespace tronada {

/// Runs `fn` on the executor (libuv's thread pool) and completes the returned future on
/// the current loop's thread with its result or exception. Use it for blocking calls
/// (a blocking database driver, a CPU-heavy step) that must not stall the loop.
/// `fn` runs on another thread: it must not touch loop-owned objects.
template <typename F>
auto run_in_executor(F fn) -> Future<std::invoke_result_t<F>> {
  using R = std::invoke_result_t<F>;
  IOLoop& loop = IOLoop::current();
  Promise<R> promise(&loop);
  if constexpr (std::is_void_v<R>) {
    loop.run_in_threadpool(std::move(fn), [promise](std::exception_ptr e) mutable {
      if (e) {
        promise.set_exception(e);
      } else {
        promise.set_result();
      }
    });
  } else {
    auto result = std::make_shared<std::optional<R>>();
    loop.run_in_threadpool([fn = std::move(fn), result]() mutable { result->emplace(fn()); },
                           [promise, result](std::exception_ptr e) mutable {
                             if (e) {
                               promise.set_exception(e);
                             } else {
                               promise.set_result(std::move(**result));
                             }
                           });
  }
  return promise.get_future();
}

}  // namespace tronada
