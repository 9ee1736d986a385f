#include "tronada/gateway/wsgi_body.h"

#include <cstring>
#include <utility>

#include "tronada/gateway/wsgi_busy_clock.h"

namespace tronada {

namespace {
constexpr std::size_t kAll = static_cast<std::size_t>(-1);
constexpr std::size_t kReserveCap = 16 * 1024 * 1024;
}  // namespace

WSGIBody::WSGIBody(std::size_t high_water, std::chrono::seconds read_timeout)
    : high_water_(high_water), read_timeout_(read_timeout) {}

bool WSGIBody::push(std::string_view chunk) {
  std::lock_guard lock(mutex_);
  if (aborted_) return false;
  if (head_ > 0 && head_ >= buffer_.size() / 2) {
    buffer_.erase(0, head_);
    head_ = 0;
  }
  buffer_.append(chunk);
  readable_.notify_one();
  if (unread() > high_water_) over_high_water_ = true;
  return over_high_water_;
}

void WSGIBody::end() {
  std::lock_guard lock(mutex_);
  ended_ = true;
  readable_.notify_one();
}

void WSGIBody::abort() {
  std::lock_guard lock(mutex_);
  aborted_ = true;
  readable_.notify_one();
}

void WSGIBody::set_on_drained(std::function<void()> cb) {
  std::lock_guard lock(mutex_);
  on_drained_ = std::move(cb);
}

std::size_t WSGIBody::buffered() const {
  std::lock_guard lock(mutex_);
  return unread();
}

bool WSGIBody::at_end() const {
  std::lock_guard lock(mutex_);
  return ended_ && unread() == 0;
}

void WSGIBody::wait_for_data(std::unique_lock<std::mutex>& lock) {
  auto ready = [&] { return aborted_ || ended_ || unread() > 0; };
  if (!ready()) {
    ClientWait waiting;  // a slow upload is not a stuck app (--timeout)
    if (!readable_.wait_for(lock, read_timeout_, ready)) {
      throw WSGIBodyError("timed out waiting for the request body");
    }
  }
  if (aborted_) throw WSGIBodyError("client disconnected before the request body was read");
}

void WSGIBody::take(std::size_t n, std::string& out) {
  n = std::min(n, unread());
  if (out.empty() && out.capacity() < n && head_ == 0 && n == buffer_.size()) {
    out = std::exchange(buffer_, {});  // all of it into a fresh result: no copy
  } else {
    out.append(buffer_, head_, n);
    head_ += n;
    if (head_ == buffer_.size()) {
      buffer_.clear();
      head_ = 0;
    }
  }
  if (over_high_water_ && unread() <= high_water_ / 2) {
    over_high_water_ = false;
    drained_pending_ = true;
  }
}

void WSGIBody::notify_drained(std::unique_lock<std::mutex>& lock) {
  if (!drained_pending_ || !on_drained_) return;
  drained_pending_ = false;
  auto cb = on_drained_;
  lock.unlock();
  cb();
  lock.lock();
}

std::optional<std::string> WSGIBody::read(std::ptrdiff_t n, bool block) {
  const std::size_t want = n < 0 ? kAll : static_cast<std::size_t>(n);
  std::unique_lock lock(mutex_);
  if (aborted_) throw WSGIBodyError("client disconnected before the request body was read");
  if (!block && !ended_ && unread() < want) return std::nullopt;
  std::string out;
  // Collecting in steps: one allocation up front (as CPython's own read(n) does), so
  // growing the result does not hold the old and the new copy at once. Capped, since n
  // may be any size the app likes and the body shorter.
  if (want != kAll && want > unread()) out.reserve(std::min(want, kReserveCap));
  for (;;) {
    std::size_t k = std::min(want - out.size(), unread());
    if (k > 0) {
      take(k, out);
      notify_drained(lock);
    }
    if (out.size() == want || (ended_ && unread() == 0)) return out;
    wait_for_data(lock);
  }
}

std::optional<std::string> WSGIBody::readline(std::ptrdiff_t limit, bool block) {
  const std::size_t cap = limit < 0 ? kAll : static_cast<std::size_t>(limit);
  std::unique_lock lock(mutex_);
  if (aborted_) throw WSGIBodyError("client disconnected before the request body was read");
  // Where the line ends among the next `avail` unread bytes (0 if not there).
  auto line_end = [&](std::size_t avail) -> std::size_t {
    const char* p = buffer_.data() + head_;
    const void* nl = std::memchr(p, '\n', avail);
    return nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - p) + 1 : 0;
  };
  if (!block && !ended_) {
    std::size_t avail = std::min(cap, unread());
    if (avail < cap && line_end(avail) == 0) return std::nullopt;
  }
  std::string out;
  for (;;) {
    std::size_t avail = std::min(cap - out.size(), unread());
    std::size_t end = line_end(avail);
    // The whole line if it is here; otherwise what there is, so the loop can read on.
    take(end ? end : avail, out);
    notify_drained(lock);
    if (end || out.size() == cap || (ended_ && unread() == 0)) return out;
    wait_for_data(lock);
  }
}

}  // namespace tronada
