// RateLimiter: a route's rate limit (requests per period per key) over a memory or a
// Redis store, with what to do when the shared store fails.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cli/rate_limit_options.h"
#include "cli/redis_rate_store.h"
#include "tronada/gateway/memory_rate_store.h"
#include "tronada/gateway/rate_window.h"
#include "tronada/http/http_headers.h"

namespace tronada {
class HTTPServerRequest;
namespace metrics {
struct RouteSeries;
}  // namespace metrics
}  // namespace tronada

namespace tronada::cli {

/// What a limit decided for one request.
struct RateOutcome {
  bool allowed = true;
  /// The store failed and on_store_error decided (no headers then: the budget is unknown).
  bool store_error = false;
  RateDecision decision;
};

/// The limit of one route in one process. check() decides from the memory store at once
/// or asks Redis without blocking; the answer comes to a callback either way. Store
/// errors are logged at most once per 10 s (with how many were not logged) and counted
/// in the route's metrics (tronada_rate_limit_store_errors_total), as refusals are
/// (tronada_rate_limited_total).
///
/// Lifetime: held by shared_ptr; an answer from Redis that arrives after the limiter is
/// gone (a reload) still reaches its callback, without being counted.
class RateLimiter : public std::enable_shared_from_this<RateLimiter> {
 public:
  using Done = std::function<void(const RateOutcome&)>;

  /// `name` identifies the route in Redis keys and log lines (e.g. "example.com/api").
  /// A Redis host that is a name is resolved here, once (getaddrinfo: call it at start
  /// or reload, not per request). Throws std::invalid_argument for bad options.
  static std::shared_ptr<RateLimiter> create(RateLimitOptions options, std::string name,
                                             metrics::RouteSeries* series);
  ~RateLimiter();

  const RateLimitOptions& options() const { return options_; }

  /// The request's key under this limit.
  std::string key_of(const HTTPServerRequest& request) const;
  /// Decides one request; `done` runs exactly once, maybe before check() returns.
  void check(std::string_view key, Done done);

  /// RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset and RateLimit-Policy
  /// (draft-ietf-httpapi-ratelimit-headers), plus Retry-After when refused.
  void add_headers(const RateOutcome& outcome, HTTPHeaders& fields) const;

 private:
  RateLimiter(RateLimitOptions options, std::string name, metrics::RouteSeries* series);
  void store_failed(std::string_view why);

  RateLimitOptions options_;
  std::string name_;
  metrics::RouteSeries* series_;
  std::string header_name_;   // for "header:NAME"
  std::string policy_value_;  // RateLimit-Policy: "100;w=1"
  std::unique_ptr<MemoryRateStore> memory_;
  std::unique_ptr<RedisRateStore> redis_;
  TimePoint next_log_{};
  std::uint64_t unlogged_errors_ = 0;
};

}  // namespace tronada::cli
