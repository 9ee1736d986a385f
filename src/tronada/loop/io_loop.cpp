#include "tronada/loop/io_loop.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "tronada/base/error.h"
#include "tronada/base/log.h"

namespace tronada {
namespace detail {

// Each watcher embeds its libuv handle; the struct is freed in the handle's close
// callback and never before, so a callback that removes its own watcher stays valid.
// A Timer is a slot of the loop's slab: its handle is initialised once and reused.
struct Timer {
  uv_timer_t handle;
  IOLoop* loop;
  std::uint32_t slot;
  std::uint32_t generation = 1;  // odd while armed, even while free
  Callback cb;
};

struct FdWatcher {
  uv_poll_t handle;
  IOLoop::FdHandler handler;
  int fd;
};

struct SignalWatcher {
  uv_signal_t handle;
  Callback handler;
};

struct Work {
  uv_work_t req;
  std::function<void()> fn;
  std::function<void(std::exception_ptr)> done;
  std::exception_ptr error;
};

}  // namespace detail

namespace {

thread_local IOLoop* t_current = nullptr;
thread_local std::unique_ptr<IOLoop> t_owned;

template <typename T>
void close_and_delete(T* owner) {
  uv_close(reinterpret_cast<uv_handle_t*>(&owner->handle),
           [](uv_handle_t* h) { delete static_cast<T*>(h->data); });
}

template <typename Handle>
void close_raw(Handle* h) {
  uv_close(reinterpret_cast<uv_handle_t*>(h),
           [](uv_handle_t* handle) { delete reinterpret_cast<Handle*>(handle); });
}

}  // namespace

IOLoop::IOLoop() : thread_tag_(&detail::t_thread_tag) {
  check_uv(uv_loop_init(&loop_), "uv_loop_init");
  loop_.data = this;

  wakeup_ = new uv_async_t;
  check_uv(uv_async_init(&loop_, wakeup_, &IOLoop::on_async), "uv_async_init");
  wakeup_->data = this;

  // Ready callbacks run in the check phase, right after poll, so work queued by I/O
  // events runs in the same iteration. The idle handle only exists to make libuv poll
  // with a zero timeout while callbacks are pending.
  check_ = new uv_check_t;
  uv_check_init(&loop_, check_);
  check_->data = this;
  uv_check_start(check_, &IOLoop::on_check);
  uv_unref(reinterpret_cast<uv_handle_t*>(check_));

  idle_ = new uv_idle_t;
  uv_idle_init(&loop_, idle_);
  idle_->data = this;

  // Right before libuv polls: the access lines this iteration collected go out in one
  // write (log::set_deferred_flush), never held while the loop waits.
  prepare_ = new uv_prepare_t;
  uv_prepare_init(&loop_, prepare_);
  prepare_->data = this;
  uv_prepare_start(prepare_, &IOLoop::on_prepare);
  uv_unref(reinterpret_cast<uv_handle_t*>(prepare_));
}

IOLoop::~IOLoop() {
  close();
  if (t_current == this) t_current = nullptr;
}

IOLoop& IOLoop::current() {
  if (!t_current) {
    t_owned = std::make_unique<IOLoop>();
    t_current = t_owned.get();
  }
  return *t_current;
}

IOLoop* IOLoop::current_or_null() {
  return t_current;
}

void IOLoop::make_current() {
  t_current = this;
  thread_tag_.store(&detail::t_thread_tag, std::memory_order_relaxed);
}

void IOLoop::start() {
  if (closed_) throw std::logic_error("IOLoop::start on a closed loop");
  if (running_) throw std::logic_error("IOLoop is already running");
  IOLoop* previous = t_current;
  t_current = this;
  thread_tag_.store(&detail::t_thread_tag, std::memory_order_relaxed);
  running_ = true;
  // Info lines (a native app's access line per request) go out once per iteration,
  // before libuv polls, instead of a write each.
  log::set_deferred_flush(true);
  // A stop() that arrived before start() is honoured, like Tornado's.
  while (!stop_requested_.exchange(false)) {
    // Callbacks queued before start() run before timers that fell due meanwhile, as in
    // Tornado (asyncio appends expired timers behind the ready queue). libuv runs timers
    // first in an iteration and our callbacks in its check phase, so a slow start (a
    // loaded machine, a sanitizer build) would otherwise reorder them.
    // A stop() from one of them still lets one non-blocking iteration run (due timers,
    // ready I/O, pending closes), as a stop from the check phase always did.
    uv_update_time(&loop_);
    running_before_uv_ = true;
    run_ready_callbacks();
    running_before_uv_ = false;
    arm_idle();
    uv_run(&loop_, stop_requested_.load() ? UV_RUN_NOWAIT : UV_RUN_DEFAULT);
  }
  running_ = false;
  // A loop started inside a running one (run_sync) leaves the outer one's batching on.
  if (!previous || !previous->running_) log::set_deferred_flush(false);
  t_current = previous ? previous : this;
}

void IOLoop::stop() {
  stop_requested_.store(true);
  if (in_loop_thread()) {
    // Before uv_run, uv_stop would make it return without running anything at all.
    if (!running_before_uv_) uv_stop(&loop_);
  } else {
    std::lock_guard<std::mutex> lock(callbacks_mutex_);  // see add_callback
    if (wakeup_) uv_async_send(wakeup_);
  }
}

void IOLoop::add_callback(Callback cb) {
  if (in_loop_thread()) {
    local_callbacks_.push_back(std::move(cb));
    arm_idle();
    return;
  }
  std::lock_guard<std::mutex> lock(callbacks_mutex_);
  remote_callbacks_.push_back(std::move(cb));
  remote_pending_.store(true, std::memory_order_release);
  // The only cross-thread entry into the loop: libuv coalesces sends, and the async
  // callback (on the loop thread) arms the idle handle. Sent under the lock because
  // close() clears wakeup_ under it before closing the handle: a worker thread that
  // posts while the loop closes must not send to a closed handle (a data race
  // ThreadSanitizer found between a WSGI worker and a test server's teardown).
  if (wakeup_) uv_async_send(wakeup_);
}

void IOLoop::arm_idle() {
  if (!idle_active_ && idle_) {
    idle_active_ = true;
    uv_idle_start(idle_, [](uv_idle_t*) {});
  }
}

void IOLoop::on_async(uv_async_t* handle) {
  auto* self = static_cast<IOLoop*>(handle->data);
  if (self->stop_requested_.load()) uv_stop(&self->loop_);
  self->arm_idle();
}

void IOLoop::on_check(uv_check_t* handle) {
  static_cast<IOLoop*>(handle->data)->run_ready_callbacks();
}

void IOLoop::on_prepare(uv_prepare_t*) {
  log::flush_deferred();
}

void IOLoop::run_ready_callbacks() {
  // Those from other threads first: they were queued before the wakeup that led here.
  if (remote_pending_.exchange(false, std::memory_order_acquire)) {
    std::lock_guard<std::mutex> lock(callbacks_mutex_);
    running_callbacks_.swap(remote_callbacks_);
  }
  if (running_callbacks_.empty()) {
    running_callbacks_.swap(local_callbacks_);
  } else {
    for (auto& cb : local_callbacks_) running_callbacks_.push_back(std::move(cb));
    local_callbacks_.clear();
  }
  // Only the callbacks that were ready now; those they add wait for the next iteration.
  for (auto& cb : running_callbacks_) invoke_logged("callback", cb);
  running_callbacks_.clear();
  bool more = !local_callbacks_.empty() || remote_pending_.load(std::memory_order_acquire);
  if (!more && idle_active_) {
    idle_active_ = false;
    uv_idle_stop(idle_);
  }
}

void IOLoop::log_callback_exception(const char* context) noexcept {
  try {
    throw;
  } catch (const std::exception& e) {
    log::error("loop", std::string("exception in ") + context + ": " + e.what());
  } catch (...) {
    log::error("loop", std::string("unknown exception in ") + context);
  }
}

TimePoint IOLoop::time() const {
  return TimePoint(std::chrono::milliseconds(uv_now(&loop_)));
}

TimeoutHandle IOLoop::call_later(Duration delay, Callback cb) {
  if (closed_) throw std::logic_error("IOLoop::call_later on a closed loop");
  // libuv timers have millisecond resolution; round up so a timeout never fires early.
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(delay).count();
  if (ms < 0) ms = 0;
  detail::Timer* t;
  if (!free_timers_.empty()) {
    t = timer_slab_[free_timers_.back()];
    free_timers_.pop_back();
  } else {
    auto slot = static_cast<std::uint32_t>(timer_slab_.size());
    t = new detail::Timer{{}, this, slot, 0, {}};
    timer_slab_.push_back(t);
    uv_timer_init(&loop_, &t->handle);
    t->handle.data = t;
  }
  ++t->generation;  // now odd: armed
  t->cb = std::move(cb);
  uv_timer_start(&t->handle, &IOLoop::on_timer, static_cast<std::uint64_t>(ms), 0);
  return TimeoutHandle{(static_cast<std::uint64_t>(t->generation) << 32) | t->slot};
}

void IOLoop::on_timer(uv_timer_t* handle) {
  auto* timer = static_cast<detail::Timer*>(handle->data);
  Callback cb = std::move(timer->cb);
  // The slot is free before the callback runs, so the callback may schedule again (and
  // reuse it) or remove its own, now stale, handle.
  timer->loop->release_timer(timer);
  invoke_logged("timeout", cb);
}

detail::Timer* IOLoop::timer_for(TimeoutHandle handle) {
  auto slot = static_cast<std::uint32_t>(handle.id & 0xffffffffu);
  auto generation = static_cast<std::uint32_t>(handle.id >> 32);
  if (slot >= timer_slab_.size()) return nullptr;
  detail::Timer* t = timer_slab_[slot];
  return t->generation == generation && (generation & 1) ? t : nullptr;
}

bool IOLoop::is_timer_slot(const uv_handle_t* handle) const {
  if (handle->type != UV_TIMER || !handle->data) return false;
  // A scan, not t->slot: handle->data of a timer someone else owns is not a Timer, and
  // only pointer comparisons are safe on it. Only leak checks in tests ask.
  auto* t = static_cast<const detail::Timer*>(handle->data);
  for (const detail::Timer* slot : timer_slab_)
    if (slot == t) return true;
  return false;
}

void IOLoop::release_timer(detail::Timer* timer) {
  ++timer->generation;  // now even: free, and every handle to it is stale
  timer->cb = nullptr;
  free_timers_.push_back(timer->slot);
}

TimeoutHandle IOLoop::call_at(TimePoint when, Callback cb) {
  return call_later(when - time(), std::move(cb));
}

void IOLoop::remove_timeout(TimeoutHandle handle) {
  detail::Timer* t = timer_for(handle);
  if (!t) return;
  uv_timer_stop(&t->handle);
  // The callback is destroyed here, after the slot is marked free: its destructor may
  // call back into the loop.
  Callback cb = std::move(t->cb);
  release_timer(t);
}

namespace {
int to_uv_events(int events) {
  int uv_events = 0;
  if (events & IOLoop::READ) uv_events |= UV_READABLE;
  if (events & IOLoop::WRITE) uv_events |= UV_WRITABLE;
  return uv_events | UV_DISCONNECT;
}

void on_poll(uv_poll_t* handle, int status, int uv_events) {
  auto* w = static_cast<detail::FdWatcher*>(handle->data);
  int events = 0;
  if (status < 0) {
    events = IOLoop::ERROR;
  } else {
    if (uv_events & UV_READABLE) events |= IOLoop::READ;
    if (uv_events & UV_WRITABLE) events |= IOLoop::WRITE;
    if (uv_events & UV_DISCONNECT) events |= IOLoop::ERROR;
  }
  // Copy: the handler may remove its own watcher (the struct survives until the close
  // callback, but replacing the handler would destroy the function while it runs).
  auto handler = w->handler;
  int fd = w->fd;
  IOLoop::invoke_logged("fd handler", [&] { handler(fd, events); });
}
}  // namespace

void IOLoop::add_handler(int fd, FdHandler handler, int events) {
  if (fd_watchers_.count(fd))
    throw std::logic_error("fd " + std::to_string(fd) + " already has a handler");
  auto* w = new detail::FdWatcher{{}, std::move(handler), fd};
  int rc = uv_poll_init(&loop_, &w->handle, fd);
  if (rc < 0) {
    delete w;
    check_uv(rc, "uv_poll_init");
  }
  w->handle.data = w;
  fd_watchers_.emplace(fd, w);
  check_uv(uv_poll_start(&w->handle, to_uv_events(events), on_poll), "uv_poll_start");
}

void IOLoop::update_handler(int fd, int events) {
  auto it = fd_watchers_.find(fd);
  if (it == fd_watchers_.end())
    throw std::logic_error("fd " + std::to_string(fd) + " has no handler");
  check_uv(uv_poll_start(&it->second->handle, to_uv_events(events), on_poll), "uv_poll_start");
}

void IOLoop::remove_handler(int fd) {
  auto it = fd_watchers_.find(fd);
  if (it == fd_watchers_.end()) return;
  detail::FdWatcher* w = it->second;
  fd_watchers_.erase(it);
  uv_poll_stop(&w->handle);
  close_and_delete(w);
}

void IOLoop::add_signal_handler(int signum, Callback handler) {
  remove_signal_handler(signum);
  auto* s = new detail::SignalWatcher{{}, std::move(handler)};
  uv_signal_init(&loop_, &s->handle);
  s->handle.data = s;
  signal_watchers_.emplace(signum, s);
  check_uv(uv_signal_start(
               &s->handle,
               [](uv_signal_t* h, int) {
                 auto* sw = static_cast<detail::SignalWatcher*>(h->data);
                 auto handler = sw->handler;
                 invoke_logged("signal handler", handler);
               },
               signum),
           "uv_signal_start");
  // A signal watcher alone must not keep start() from noticing there is nothing to do.
  uv_unref(reinterpret_cast<uv_handle_t*>(&s->handle));
}

void IOLoop::remove_signal_handler(int signum) {
  auto it = signal_watchers_.find(signum);
  if (it == signal_watchers_.end()) return;
  detail::SignalWatcher* s = it->second;
  signal_watchers_.erase(it);
  uv_signal_stop(&s->handle);
  close_and_delete(s);
}

void IOLoop::run_in_threadpool(std::function<void()> fn,
                               std::function<void(std::exception_ptr)> done) {
  auto* work = new detail::Work{{}, std::move(fn), std::move(done), nullptr};
  work->req.data = work;
  int rc = uv_queue_work(
      &loop_, &work->req,
      [](uv_work_t* req) {
        auto* w = static_cast<detail::Work*>(req->data);
        try {
          w->fn();
        } catch (...) {
          w->error = std::current_exception();
        }
      },
      [](uv_work_t* req, int status) {
        std::unique_ptr<detail::Work> w(static_cast<detail::Work*>(req->data));
        std::exception_ptr error = w->error;
        if (status == UV_ECANCELED && !error) {
          error = std::make_exception_ptr(std::system_error(uv_error(status), "executor"));
        }
        invoke_logged("executor completion", [&] { w->done(error); });
      });
  if (rc < 0) {
    delete work;
    check_uv(rc, "uv_queue_work");
  }
}

void IOLoop::close() {
  if (closed_) return;
  closed_ = true;
  for (detail::Timer* t : timer_slab_) {
    uv_timer_stop(&t->handle);
    t->cb = nullptr;
    close_and_delete(t);
  }
  timer_slab_.clear();
  free_timers_.clear();
  for (auto& [fd, w] : fd_watchers_) close_and_delete(w);
  fd_watchers_.clear();
  for (auto& [sig, s] : signal_watchers_) close_and_delete(s);
  signal_watchers_.clear();
  uv_async_t* wakeup;
  {
    std::lock_guard<std::mutex> lock(callbacks_mutex_);  // see add_callback
    wakeup = wakeup_;
    wakeup_ = nullptr;
  }
  close_raw(wakeup);
  close_raw(check_);
  close_raw(idle_);
  close_raw(prepare_);
  check_ = nullptr;
  idle_ = nullptr;
  prepare_ = nullptr;
  // Let pending close callbacks (ours and those of objects closing their own handles)
  // run. Handles still open belong to objects that outlived the loop: say so.
  int rounds = 0;
  while (uv_loop_close(&loop_) == UV_EBUSY) {
    uv_run(&loop_, UV_RUN_NOWAIT);
    if (++rounds == 100) {
      int open = 0;
      uv_walk(
          &loop_,
          [](uv_handle_t* h, void* arg) {
            if (!uv_is_closing(h)) ++*static_cast<int*>(arg);
          },
          &open);
      log::warning("loop", "closing a loop with " + std::to_string(open) +
                               " handle(s) still open; their owners must close them");
      // Close the stragglers without a callback: their memory is their owners' to free.
      uv_walk(
          &loop_,
          [](uv_handle_t* h, void*) {
            if (!uv_is_closing(h)) uv_close(h, nullptr);
          },
          nullptr);
    }
  }
  // Callbacks left in the queue can no longer run; drop them outside the lock.
  std::vector<Callback> dropped;
  dropped.swap(local_callbacks_);
  {
    std::lock_guard<std::mutex> lock(callbacks_mutex_);
    for (auto& cb : remote_callbacks_) dropped.push_back(std::move(cb));
    remote_callbacks_.clear();
  }
}

}  // namespace tronada
