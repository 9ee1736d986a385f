// BlockingPool: any blocking database driver, run on the executor and awaited from the loop.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <vector>

#include "tronada/async/executor.h"
#include "tronada/async/semaphore.h"
#include "tronada/async/task.h"

namespace tronada::db {

/// The pattern for drivers that only block (SQLite, MySQL's C API, ODBC...): keep a few
/// connections, and run each call on the executor with one connection lent to it, so
/// the loop never waits on the driver. A connection serves one call at a time, which is
/// all most blocking drivers allow; calls beyond `size` wait in a fair queue.
///
///     db::BlockingPool<SqliteDatabase> pool([] { return std::make_unique<SqliteDatabase>(path); },
///     4); auto rows = co_await pool.run([id](SqliteDatabase& db) {
///       return db.query("SELECT title FROM entries WHERE id = ?", id);
///     });
///
/// `fn` runs on an executor thread: it may use only the connection and what it
/// captured by value, never loop-owned objects. Connections are made lazily by
/// `factory`, on the executor too (opening may block). The executor is libuv's thread
/// pool (UV_THREADPOOL_SIZE threads, 4 by default), which file operations share: keep
/// `size` below it, or raise UV_THREADPOOL_SIZE.
///
/// Lifetime: calls in flight keep the connections they use alive; destroy the pool on
/// the loop's thread once no call is pending.
template <typename Conn>
class BlockingPool {
 public:
  using Factory = std::function<std::unique_ptr<Conn>()>;

  BlockingPool(Factory factory, std::size_t size,
               std::optional<Duration> wait_timeout = std::chrono::seconds(30))
      : state_(std::make_shared<State>(std::move(factory), size, wait_timeout)) {}

  /// Runs `fn(conn)` on the executor with a connection of the pool and completes with
  /// what it returns or throws. Fails with TimeoutError if no connection came free
  /// within the wait timeout.
  template <typename F>
  auto run(F fn) -> Task<std::invoke_result_t<F, Conn&>> {
    return run_on(state_, std::move(fn));
  }

  std::size_t size() const { return state_->size; }
  std::size_t idle() const { return state_->idle.size(); }

 private:
  struct State {
    State(Factory f, std::size_t n, std::optional<Duration> t)
        : factory(std::move(f)), size(n), wait_timeout(t), permits(n) {}
    Factory factory;
    std::size_t size;
    std::optional<Duration> wait_timeout;
    Semaphore permits;
    std::vector<std::shared_ptr<Conn>> idle;
  };

  // A free function of its parameters, not a lambda's captures (docs/coroutines.md).
  template <typename F>
  static auto run_on(std::shared_ptr<State> state, F fn) -> Task<std::invoke_result_t<F, Conn&>> {
    using R = std::invoke_result_t<F, Conn&>;
    Future<Semaphore::Guard> permit_future = state->permits.acquire(state->wait_timeout);
    Semaphore::Guard permit = co_await permit_future;
    // The slot carries the connection to the executor and back: made there if new.
    auto slot = std::make_shared<std::shared_ptr<Conn>>();
    if (!state->idle.empty()) {
      *slot = std::move(state->idle.back());
      state->idle.pop_back();
    }
    auto job = [slot, factory = state->factory, fn = std::move(fn)]() mutable -> R {
      if (!*slot) *slot = std::shared_ptr<Conn>(factory());
      return fn(**slot);
    };
    Future<R> running = run_in_executor(std::move(job));
    std::exception_ptr error;
    if constexpr (std::is_void_v<R>) {
      try {
        co_await running;
      } catch (...) {
        error = std::current_exception();
      }
      if (*slot) state->idle.push_back(std::move(*slot));
      if (error) std::rethrow_exception(error);
    } else {
      std::optional<R> result;
      try {
        result.emplace(co_await running);
      } catch (...) {
        error = std::current_exception();
      }
      // A driver error (bad SQL, a constraint) leaves the connection usable.
      if (*slot) state->idle.push_back(std::move(*slot));
      if (error) std::rethrow_exception(error);
      co_return std::move(*result);
    }
  }

  std::shared_ptr<State> state_;
};

}  // namespace tronada::db
