// RedisRateStore: rate-limit counters in Redis, so that every instance of a server
// shares one budget per key.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "tronada/db/redis_client.h"
#include "tronada/gateway/rate_window.h"
#include "tronada/loop/io_loop.h"

namespace tronada::cli {

/// Counts each key's sliding window (RateWindow) in two Redis keys, one per fixed
/// window ("PREFIX{KEY}:WINDOW"), read and bumped by one Lua script (EVALSHA, EVAL the
/// first time), so concurrent instances never race between reading and counting. The
/// script INCRs the current window's key only when the request passes and gives it a
/// PEXPIRE of two periods: the previous window must still be readable during the next.
///
/// Window numbers come from the wall clock, which all hosts share (NTP); a host whose
/// clock is off by a fraction of the period only shifts its own view of the window.
///
/// Never blocks the loop: every call is one asynchronous command with a deadline
/// (`timeout`). When Redis fails, times out or is backing off, `done` gets nullopt at
/// once and the caller decides locally. After a failure the store does not ask Redis
/// again for `backoff`, so a dead Redis costs no connection attempt per request.
class RedisRateStore {
 public:
  using Done = std::function<void(std::optional<RateDecision>, std::string_view error)>;

  struct Options {
    redis::ConnectOptions connect;  // host must be an IP address (hiredis resolves blocking)
    Duration timeout = std::chrono::milliseconds(100);
    Duration backoff = std::chrono::seconds(1);
    std::string prefix = "tronada:rl:";
  };

  RedisRateStore(RateWindow window, Options options);
  ~RedisRateStore();

  /// Decides one request for `key` at wall-clock `now_ms`; `done` runs exactly once,
  /// maybe before hit() returns (a store backing off, a connection known to be down).
  void hit(std::string_view key, std::int64_t now_ms, Done done);

  const RateWindow& window() const { return window_; }

  /// The script, for tests and for operators who want to SCRIPT LOAD it themselves.
  static const std::string& script();

 private:
  struct State;
  RateWindow window_;
  Options options_;
  std::shared_ptr<State> state_;  // shared with replies still on their way
};

}  // namespace tronada::cli
