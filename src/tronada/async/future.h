// Future<T> and Promise<T>: a result completed from callbacks, awaited by coroutines.
#pragma once

#include <coroutine>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "tronada/loop/io_loop.h"

namespace tronada {

namespace detail {

template <typename T>
struct FutureState {
  using Stored = std::conditional_t<std::is_void_v<T>, bool, T>;
  std::optional<Stored> value;
  std::exception_ptr exception;
  bool done = false;
  // The coroutine awaiting this future, when it was the first to ask: nearly every
  // future has exactly one, and keeping it here costs nothing, where a callback in a
  // vector cost an allocation per future.
  std::coroutine_handle<> waiter;
  // Done callbacks, and awaiting coroutines after the first, in the order added; made
  // for the first of them, so a pending future (an idle WebSocket waits on one) does not
  // carry an empty vector.
  std::unique_ptr<std::vector<std::function<void()>>> callbacks;
  IOLoop* loop = nullptr;

  void add_callback(std::function<void()> cb) {
    if (!callbacks) callbacks = std::make_unique<std::vector<std::function<void()>>>();
    callbacks->push_back(std::move(cb));
  }

  void add_waiter(std::coroutine_handle<> h) {
    if (!loop) loop = &IOLoop::current();
    if (!waiter && !callbacks) {
      waiter = h;
      return;
    }
    add_callback([h, l = loop] { l->add_callback([h] { h.resume(); }); });
  }

  void fire() {
    // In the order they were added (the inline waiter, when there is one, came first).
    // Everything is moved out first: a callback may drop the last reference to this state.
    std::coroutine_handle<> first = std::exchange(waiter, {});
    std::unique_ptr<std::vector<std::function<void()>>> cbs = std::move(callbacks);
    if (first) loop->add_callback([first] { first.resume(); });
    if (cbs) {
      for (auto& cb : *cbs) IOLoop::invoke_logged("future done callback", cb);
    }
  }
};

}  // namespace detail

/// The readable side of an asynchronous result, shared by copies. Single-threaded: it is
/// completed and awaited on one loop's thread (complete it from another thread by
/// posting with IOLoop::add_callback). An awaiting coroutine is resumed through the
/// loop's ready queue, never from inside the code that completes the future, so
/// completing a future from a libuv callback cannot re-enter that callback's caller.
template <typename T = void>
class Future {
 public:
  using State = detail::FutureState<T>;

  Future() = default;
  explicit Future(std::shared_ptr<State> state) : state_(std::move(state)) {}

  bool valid() const { return static_cast<bool>(state_); }
  bool done() const { return state_ && state_->done; }
  bool has_exception() const { return done() && state_->exception; }

  /// The result of a done future; rethrows its exception.
  decltype(auto) result() const {
    if (!done()) throw std::logic_error("Future::result on a future that is not done");
    if (state_->exception) std::rethrow_exception(state_->exception);
    if constexpr (std::is_void_v<T>) {
      return;
    } else {
      return static_cast<const T&>(*state_->value);
    }
  }
  std::exception_ptr exception() const { return done() ? state_->exception : nullptr; }
  /// For callbacks registered on this future that need it back: capturing the Future
  /// itself would make its state own itself until it completes (a leak if it never does).
  std::weak_ptr<State> weak_state() const { return state_; }

  /// Runs `cb` on completion (at once, synchronously, if already done).
  void add_done_callback(std::function<void()> cb) const {
    if (state_->done) {
      IOLoop::invoke_logged("future done callback", cb);
    } else {
      state_->add_callback(std::move(cb));
    }
  }

  auto operator co_await() const noexcept {
    struct Awaiter {
      std::shared_ptr<State> state;
      bool await_ready() const noexcept { return state->done; }
      void await_suspend(std::coroutine_handle<> h) { state->add_waiter(h); }
      T await_resume() {
        if (state->exception) std::rethrow_exception(state->exception);
        // Copies: several coroutines may await one future. Move-only results move out,
        // so only one awaiter may take them.
        if constexpr (std::is_void_v<T>) {
          return;
        } else if constexpr (std::is_copy_constructible_v<T>) {
          return *state->value;
        } else {
          return std::move(*state->value);
        }
      }
    };
    return Awaiter{state_};
  }

 private:
  std::shared_ptr<State> state_;
};

/// The writable side: completes its Future once. Completing twice is a logic error
/// (Tornado's InvalidStateError); `try_set_*` report instead of throwing.
template <typename T = void>
class Promise {
 public:
  using State = detail::FutureState<T>;

  explicit Promise(IOLoop* loop = nullptr) : state_(std::make_shared<State>()) {
    state_->loop = loop ? loop : IOLoop::current_or_null();
  }

  Future<T> get_future() const { return Future<T>(state_); }
  bool done() const { return state_->done; }

  template <typename... Args>
  void set_result(Args&&... args) {
    if (!try_set_result(std::forward<Args>(args)...))
      throw std::logic_error("Promise already completed");
  }
  void set_exception(std::exception_ptr e) {
    if (!try_set_exception(std::move(e))) throw std::logic_error("Promise already completed");
  }

  template <typename... Args>
  bool try_set_result(Args&&... args) {
    if (state_->done) return false;
    if constexpr (std::is_void_v<T>) {
      static_assert(sizeof...(Args) == 0, "Promise<void>::set_result takes no value");
      state_->value.emplace(true);
    } else {
      state_->value.emplace(std::forward<Args>(args)...);
    }
    state_->done = true;
    state_->fire();
    return true;
  }
  bool try_set_exception(std::exception_ptr e) {
    if (state_->done) return false;
    state_->exception = std::move(e);
    state_->done = true;
    state_->fire();
    return true;
  }

 private:
  std::shared_ptr<State> state_;
};

/// A future that is already done with `value`.
template <typename T, typename... Args>
Future<T> make_ready_future(Args&&... args) {
  Promise<T> p;
  p.set_result(std::forward<Args>(args)...);
  return p.get_future();
}

}  // namespace tronada
