// The event loop: callbacks, timeouts, fd handlers, signals and an executor on libuv.
#pragma once

#include <uv.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace tronada {

using Clock = std::chrono::steady_clock;
using Duration = Clock::duration;
using TimePoint = Clock::time_point;
using Callback = std::function<void()>;

/// Identifies a pending timeout; a default-constructed handle names nothing. Removing a
/// handle whose timeout already ran (or was removed) is a harmless no-op. The id packs a
/// slot of the loop's timer slab with that slot's generation, so a stale handle never
/// names the timeout that reuses its slot.
struct TimeoutHandle {
  std::uint64_t id = 0;
  explicit operator bool() const { return id != 0; }
};

namespace detail {
struct Timer;
struct FdWatcher;
struct SignalWatcher;
/// One per thread: its address tells threads apart in a couple of instructions, where
/// std::this_thread::get_id() is a library call (add_callback asks on every call).
inline thread_local const char t_thread_tag = 0;
}  // namespace detail

/// One event loop per thread, as Tornado's IOLoop. Each iteration runs the callbacks
/// that were ready when it began, then due timeouts, then polls for I/O and dispatches
/// events; callbacks added while callbacks run wait for the next iteration so they can
/// never starve I/O.
///
/// Lifetime: the IOLoop owns every libuv handle it creates (the wakeup async, the
/// check/idle pair, the prepare that flushes deferred log lines, timers, fd pollers, signal
/// watchers). Each is heap-allocated, closed through uv_close and freed in its close callback.
/// `close()` (also run by the destructor) closes them all and runs the loop until libuv reports
/// none left.
class IOLoop {
 public:
  enum Events : int { READ = 1, WRITE = 2, ERROR = 4 };
  using FdHandler = std::function<void(int fd, int events)>;

  IOLoop();
  ~IOLoop();
  IOLoop(const IOLoop&) = delete;
  IOLoop& operator=(const IOLoop&) = delete;

  /// The loop of the calling thread, created on first use.
  static IOLoop& current();
  /// The loop of the calling thread if one was created or made current, else nullptr.
  static IOLoop* current_or_null();
  /// Makes this loop the current one of the calling thread (tests, worker threads).
  void make_current();

  /// Runs until stop(). Exceptions escaping callbacks are logged and the loop goes on.
  void start();
  /// Asks the loop to return from start() after the current iteration. Thread-safe.
  void stop();
  bool running() const { return running_; }

  /// Schedules `cb` on the next iteration. Callable from any thread; wakes the loop.
  void add_callback(Callback cb);

  /// Monotonic time as the loop sees it (libuv's cached loop time, refreshed each
  /// iteration), so timeouts set from one callback share one notion of "now".
  TimePoint time() const;
  TimeoutHandle call_later(Duration delay, Callback cb);
  TimeoutHandle call_at(TimePoint when, Callback cb);
  void remove_timeout(TimeoutHandle handle);

  /// Watches any file descriptor with uv_poll. `events` is a mask of READ and WRITE;
  /// ERROR is reported to the handler whether asked for or not. One handler per fd.
  void add_handler(int fd, FdHandler handler, int events);
  void update_handler(int fd, int events);
  void remove_handler(int fd);

  /// Runs `handler` on the loop thread each time `signum` arrives (uv_signal).
  void add_signal_handler(int signum, Callback handler);
  void remove_signal_handler(int signum);

  /// Runs `fn` on the executor (libuv's thread pool, UV_THREADPOOL_SIZE threads) and then
  /// `done` on the loop thread with the exception `fn` threw, if any. The coroutine
  /// form is `run_in_executor` in tronada/async/executor.h.
  void run_in_threadpool(std::function<void()> fn, std::function<void(std::exception_ptr)> done);

  /// Closes every handle this loop owns and runs libuv until all close callbacks ran.
  /// The loop cannot be started again afterwards.
  void close();

  uv_loop_t* uv() { return &loop_; }
  /// Whether `handle` is one of the loop's own timer slots (kept open while idle, so a
  /// leak check walking the loop's handles must skip it unless it is active).
  bool is_timer_slot(const uv_handle_t* handle) const;
  bool in_loop_thread() const {
    return thread_tag_.load(std::memory_order_relaxed) == &detail::t_thread_tag;
  }

  /// Runs `fn` catching any exception, logging it with `context`. Used by every place
  /// that invokes user callbacks so that a throwing callback never stops the loop.
  /// Inline: the loop calls it around every callback and timeout.
  static void invoke_logged(const char* context, const std::function<void()>& fn) noexcept {
    try {
      fn();
    } catch (...) {
      log_callback_exception(context);
    }
  }
  /// Logs the exception being handled (from a catch block only).
  static void log_callback_exception(const char* context) noexcept;

 private:
  static void on_async(uv_async_t* handle);
  static void on_check(uv_check_t* handle);
  static void on_prepare(uv_prepare_t* handle);
  static void on_timer(uv_timer_t* handle);
  void run_ready_callbacks();
  void arm_idle();
  detail::Timer* timer_for(TimeoutHandle handle);
  void release_timer(detail::Timer* timer);

  uv_loop_t loop_;
  // detail::t_thread_tag of the loop's thread. Atomic: other threads' add_callback reads
  // it while start() may set it (relaxed: a plain load on x86).
  std::atomic<const char*> thread_tag_;
  bool running_ = false;
  std::atomic<bool> stop_requested_{false};
  bool closed_ = false;

  // Wakeup and callback queue. Owned handles, closed in close().
  uv_async_t* wakeup_ = nullptr;
  uv_check_t* check_ = nullptr;
  uv_prepare_t* prepare_ = nullptr;
  uv_idle_t* idle_ = nullptr;
  bool idle_active_ = false;
  // start() runs the callbacks queued before it outside uv_run (see start()).
  bool running_before_uv_ = false;
  // Callbacks added on the loop thread go to local_callbacks_ without a lock (the common
  // case: a coroutine resumed, a stream completion); other threads queue under the
  // mutex and set remote_pending_, so an iteration with none takes no lock at all.
  std::vector<Callback> local_callbacks_;
  std::mutex callbacks_mutex_;
  std::vector<Callback> remote_callbacks_;
  std::atomic<bool> remote_pending_{false};
  std::vector<Callback> running_callbacks_;

  // Timers live in a slab: a slot keeps its initialised uv_timer_t across uses, so a
  // timeout costs a uv_timer_start and a slot, not an allocation, a hash-map entry and a
  // uv_close. The slab owns its slots; close() closes their handles and the close
  // callbacks free them. free_timers_ lists the idle slots.
  std::vector<detail::Timer*> timer_slab_;
  std::vector<std::uint32_t> free_timers_;
  std::unordered_map<int, detail::FdWatcher*> fd_watchers_;
  std::unordered_map<int, detail::SignalWatcher*> signal_watchers_;

  friend struct detail::Timer;
};

}  // namespace tronada
