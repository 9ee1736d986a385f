// run_sync(): start the loop, run one coroutine to completion, stop the loop.
#pragma once

#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>

#include "tronada/async/future.h"
#include "tronada/async/spawn.h"
#include "tronada/base/error.h"

namespace tronada {

/// Runs `make_task()` on the current loop and returns its result (or rethrows), as
/// Tornado's IOLoop.run_sync. With a timeout, throws TimeoutError if the task has not
/// finished by then; the task is then left suspended on the loop and carries on when
/// the loop runs again (its completion then does not stop that later run).
template <typename F>
auto run_sync(F&& make_task, std::optional<Duration> timeout = std::nullopt) {
  using TaskType = std::invoke_result_t<F>;
  using T = typename TaskType::value_type;
  IOLoop& loop = IOLoop::current();
  // Shared with callbacks that can outlive this call: the start callback stays queued
  // if the loop stops before running it, and a task that timed out finishes later.
  struct State {
    Future<T> future;
    bool timed_out = false;
    bool returned = false;
  };
  auto state = std::make_shared<State>();
  loop.add_callback([&make_task, &loop, state] {
    // `make_task` lives in run_sync's frame: only touch it while run_sync waits.
    if (state->returned) return;
    state->future = spawn(make_task());
    // Weak: a task that outlives a timeout must not stop a later run of the loop.
    state->future.add_done_callback([&loop, weak = std::weak_ptr<State>(state)] {
      auto s = weak.lock();
      if (s && !s->returned) loop.stop();
    });
  });
  TimeoutHandle timer;
  if (timeout) {
    timer = loop.call_later(*timeout, [&loop, state] {
      state->timed_out = true;
      loop.stop();
    });
  }
  loop.start();
  state->returned = true;
  loop.remove_timeout(timer);
  if (!state->future.done()) {
    if (state->timed_out) throw TimeoutError("run_sync: operation timed out");
    throw std::logic_error("run_sync: loop stopped before the task finished");
  }
  if constexpr (std::is_void_v<T>) {
    state->future.result();
  } else {
    return T(state->future.result());
  }
}

}  // namespace tronada
