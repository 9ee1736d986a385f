// gather(): run tasks concurrently and wait for all (the tour's Multi / WaitAll).
#pragma once

#include <exception>
#include <tuple>
#include <vector>

#include "tronada/async/future.h"
#include "tronada/async/spawn.h"
#include "tronada/async/task.h"

namespace tronada {

/// Starts every task at once and completes when all have finished, with their results
/// in order. If any failed, the first failure (in argument order) is rethrown after all
/// have finished, so no task is left running unobserved.
template <typename T>
Task<std::vector<T>> gather(std::vector<Task<T>> tasks) {
  std::vector<Future<T>> futures;
  futures.reserve(tasks.size());
  for (auto& t : tasks) futures.push_back(spawn(std::move(t)));
  std::vector<T> results;
  results.reserve(futures.size());
  std::exception_ptr first_error;
  for (auto& f : futures) {
    try {
      results.push_back(co_await f);
    } catch (...) {
      if (!first_error) first_error = std::current_exception();
    }
  }
  if (first_error) std::rethrow_exception(first_error);
  co_return results;
}

inline Task<void> gather(std::vector<Task<void>> tasks) {
  std::vector<Future<void>> futures;
  futures.reserve(tasks.size());
  for (auto& t : tasks) futures.push_back(spawn(std::move(t)));
  std::exception_ptr first_error;
  for (auto& f : futures) {
    try {
      co_await f;
    } catch (...) {
      if (!first_error) first_error = std::current_exception();
    }
  }
  if (first_error) std::rethrow_exception(first_error);
}

namespace detail {
template <typename T>
Task<void> await_recording_error(Future<T> future, std::exception_ptr* first_error) {
  try {
    co_await future;
  } catch (...) {
    if (!*first_error) *first_error = std::current_exception();
  }
}
}  // namespace detail

/// The heterogeneous form: gather(task_a(), task_b()) gives a tuple of their results.
template <typename... Ts>
  requires(sizeof...(Ts) > 0 && (!std::is_void_v<Ts> && ...))
Task<std::tuple<Ts...>> gather(Task<Ts>... tasks) {
  std::tuple<Future<Ts>...> futures{spawn(std::move(tasks))...};
  std::exception_ptr first_error;
  std::vector<Task<void>> waits;
  std::apply([&](auto&... f) { (waits.push_back(detail::await_recording_error(f, &first_error)), ...); },
             futures);
  for (auto& w : waits) co_await std::move(w);
  if (first_error) std::rethrow_exception(first_error);
  co_return std::apply([](auto&... f) { return std::tuple<Ts...>(f.result()...); }, futures);
}

}  // namespace tronada
