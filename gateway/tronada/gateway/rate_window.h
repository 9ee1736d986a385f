// RateWindow: the arithmetic of a sliding-window rate limit (requests per period), with
// no clock and no storage of its own. Both rate-limit stores (memory, Redis) feed it the
// counts they keep, so one instance and a fleet sharing Redis decide the same way.
#pragma once

#include <cstdint>

namespace tronada {

/// The answer for one request: whether it may pass, and what the RateLimit-* headers
/// (draft-ietf-httpapi-ratelimit-headers) and Retry-After say.
struct RateDecision {
  bool allowed = true;
  std::int64_t limit = 0;
  std::int64_t remaining = 0;  // requests left in the window after this one
  /// Milliseconds until the budget frees up: the current window's end when allowed,
  /// when at least one request will pass again when refused. Never negative.
  std::int64_t reset_ms = 0;
  /// reset_ms in whole seconds, rounded up and at least 1 (Retry-After and
  /// RateLimit-Reset are delta-seconds; 0 would invite an immediate retry).
  std::int64_t reset_seconds() const { return reset_ms <= 0 ? 1 : (reset_ms + 999) / 1000; }
};

/// The sliding-window counter (as Cloudflare and nginx-plus describe it): time is cut
/// into fixed windows of `period_ms`; a request's estimate is the current window's count
/// plus the previous window's count weighted by how much of the previous window the
/// sliding window still covers. That is a good approximation of a true sliding log at
/// the cost of two integers per key, and unlike a fixed window it lets no burst of 2x
/// the limit through at a window edge.
///
/// Time is milliseconds on any clock; the stores pass the wall clock for Redis (the
/// window numbers must agree across hosts) and the steady clock in memory. A clock that
/// steps back is the caller's to notice (a window number lower than the one stored);
/// everything here stays in range for any `now_ms`, negative included.
class RateWindow {
 public:
  /// `limit` >= 1 requests per `period_ms` >= 1.
  RateWindow(std::int64_t limit, std::int64_t period_ms);

  std::int64_t limit() const { return limit_; }
  std::int64_t period_ms() const { return period_ms_; }

  /// The number of the fixed window `now_ms` falls in (floor division, so times before
  /// the epoch of the clock still map to consecutive windows).
  std::int64_t window(std::int64_t now_ms) const;
  /// Milliseconds from `now_ms` to the end of its window: 1..period_ms.
  std::int64_t until_window_end(std::int64_t now_ms) const;
  /// The previous window's count still in view: floor(previous * (period - elapsed) /
  /// period), elapsed being how far `now_ms` is into its own window.
  std::int64_t weighted_previous(std::int64_t previous, std::int64_t now_ms) const;
  /// The sliding estimate before this request: current + weighted_previous.
  std::int64_t estimate(std::int64_t previous, std::int64_t current, std::int64_t now_ms) const;

  /// Decides one request given the counts *before* it. When allowed, the store adds one
  /// to the current window's count (and only then: refused requests do not count, so a
  /// client that keeps hammering is let through again as soon as the window slides).
  RateDecision decide(std::int64_t previous, std::int64_t current, std::int64_t now_ms) const;

 private:
  std::int64_t limit_;
  std::int64_t period_ms_;
};

}  // namespace tronada
