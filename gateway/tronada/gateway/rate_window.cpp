#include "tronada/gateway/rate_window.h"

#include <algorithm>
#include <stdexcept>

namespace tronada {

RateWindow::RateWindow(std::int64_t limit, std::int64_t period_ms)
    : limit_(limit), period_ms_(period_ms) {
  if (limit < 1) throw std::invalid_argument("a rate limit needs at least 1 request");
  if (period_ms < 1) throw std::invalid_argument("a rate limit's period must be at least 1ms");
}

std::int64_t RateWindow::window(std::int64_t now_ms) const {
  std::int64_t w = now_ms / period_ms_;
  // C++ division truncates toward zero; windows before 0 must not share window 0.
  if (now_ms % period_ms_ < 0) --w;
  return w;
}

std::int64_t RateWindow::until_window_end(std::int64_t now_ms) const {
  return (window(now_ms) + 1) * period_ms_ - now_ms;
}

std::int64_t RateWindow::weighted_previous(std::int64_t previous, std::int64_t now_ms) const {
  if (previous <= 0) return 0;
  // The part of the previous window the sliding window still covers: all of it at the
  // start of this window, none at its end. In 128 bits: previous * period may not fit.
  __int128 covered = until_window_end(now_ms);
  return static_cast<std::int64_t>(static_cast<__int128>(previous) * covered / period_ms_);
}

std::int64_t RateWindow::estimate(std::int64_t previous, std::int64_t current,
                                  std::int64_t now_ms) const {
  return std::max<std::int64_t>(current, 0) + weighted_previous(previous, now_ms);
}

RateDecision RateWindow::decide(std::int64_t previous, std::int64_t current,
                                std::int64_t now_ms) const {
  RateDecision d;
  d.limit = limit_;
  current = std::max<std::int64_t>(current, 0);
  previous = std::max<std::int64_t>(previous, 0);
  std::int64_t used = estimate(previous, current, now_ms);
  std::int64_t end = until_window_end(now_ms);
  if (used < limit_) {
    d.allowed = true;
    d.remaining = std::max<std::int64_t>(limit_ - used - 1, 0);
    d.reset_ms = end;
    return d;
  }
  d.allowed = false;
  d.remaining = 0;
  if (current >= limit_) {
    // This window alone is full: nothing passes before the next one begins, and there
    // the estimate is floor(current * r / period), r being the ms left in that window;
    // it drops below the limit once r <= ceil(limit * period / current) - 1.
    __int128 r_max = (static_cast<__int128>(limit_) * period_ms_ + current - 1) / current - 1;
    std::int64_t t = period_ms_ - static_cast<std::int64_t>(std::min<__int128>(r_max, period_ms_));
    d.reset_ms = end + std::clamp<std::int64_t>(t, 0, period_ms_);
    return d;
  }
  // Within this window the previous window's weight shrinks by one request every
  // period / previous ms; wait until the estimate drops below the limit:
  // current + floor(previous * r / period) < limit, r = ms left in the window.
  std::int64_t room = limit_ - current;  // >= 1 here
  // Largest r with floor(previous * r / period) <= room - 1: r < room * period / previous.
  __int128 r_max = (static_cast<__int128>(room) * period_ms_ + previous - 1) / previous - 1;
  std::int64_t wait = end - static_cast<std::int64_t>(std::min<__int128>(r_max, end));
  d.reset_ms = std::clamp<std::int64_t>(wait, 1, end);
  return d;
}

}  // namespace tronada
