#include "tronada/gateway/wsgi_body.h"

#include "tronada/gateway/wsgi_busy_clock.h"

namespace tronada {

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
  if (buffer_.size() - head_ > high_water_) over_high_water_ = true;
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
  return buffer_.size() - head_;
}

bool WSGIBody::at_end() const {
  std::lock_guard lock(mutex_);
  return ended_ && head_ == buffer_.size();
}

template <typename Ready>
bool WSGIBody::wait(std::unique_lock<std::mutex>& lock, bool block, Ready ready) {
  auto done = [&] { return aborted_ || ended_ || ready(); };
  if (!done()) {
    if (!block) return false;
    ClientWait waiting;  // a slow upload is not a stuck app (--timeout)
    if (!readable_.wait_for(lock, read_timeout_, done)) {
      throw WSGIBodyError("timed out waiting for the request body");
    }
  }
  if (aborted_) throw WSGIBodyError("client disconnected before the request body was read");
  return true;
}

std::string WSGIBody::take(std::size_t n) {
  n = std::min(n, buffer_.size() - head_);
  std::string out = buffer_.substr(head_, n);
  head_ += n;
  if (head_ == buffer_.size()) {
    buffer_.clear();
    head_ = 0;
  }
  if (over_high_water_ && buffer_.size() - head_ <= high_water_ / 2) {
    over_high_water_ = false;
    drained_pending_ = true;
  }
  return out;
}

std::optional<std::string> WSGIBody::read(std::ptrdiff_t n, bool block) {
  std::string out;
  std::function<void()> notify;
  {
    std::unique_lock lock(mutex_);
    if (n < 0) {
      // All of it: take what is there as it comes, so the buffer never holds more than the
      // high-water mark while this reader collects.
      if (!block && !ended_) return std::nullopt;
      for (;;) {
        out += take(buffer_.size() - head_);
        if (drained_pending_ && on_drained_) {
          drained_pending_ = false;
          auto cb = on_drained_;
          lock.unlock();
          cb();
          lock.lock();
        }
        if (ended_ && head_ == buffer_.size()) break;
        wait(lock, true, [&] { return buffer_.size() > head_; });
        if (ended_ && head_ == buffer_.size()) break;
      }
    } else {
      auto want = static_cast<std::size_t>(n);
      if (!wait(lock, block, [&] { return buffer_.size() - head_ >= want; })) return std::nullopt;
      out = take(want);
    }
    if (drained_pending_ && on_drained_) {
      drained_pending_ = false;
      notify = on_drained_;
    }
  }
  if (notify) notify();
  return out;
}

std::optional<std::string> WSGIBody::readline(std::ptrdiff_t limit, bool block) {
  std::string out;
  std::function<void()> notify;
  {
    std::unique_lock lock(mutex_);
    std::size_t end = std::string::npos;
    auto ready = [&] {
      std::size_t avail = buffer_.size() - head_;
      std::size_t nl = buffer_.find('\n', head_);
      if (nl != std::string::npos) {
        end = nl + 1 - head_;
        if (limit >= 0) end = std::min(end, static_cast<std::size_t>(limit));
        return true;
      }
      if (limit >= 0 && avail >= static_cast<std::size_t>(limit)) {
        end = static_cast<std::size_t>(limit);
        return true;
      }
      // A line longer than the buffer limit would stall a paused socket forever.
      if (avail > high_water_) {
        end = avail;
        return true;
      }
      return false;
    };
    if (!wait(lock, block, ready)) return std::nullopt;
    if (end == std::string::npos && !ready()) end = buffer_.size() - head_;
    out = take(end);
    if (drained_pending_ && on_drained_) {
      drained_pending_ = false;
      notify = on_drained_;
    }
  }
  if (notify) notify();
  return out;
}

}  // namespace tronada
