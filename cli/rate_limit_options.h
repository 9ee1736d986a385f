// A route's `rate_limit = {...}` as the config says it, and the checks of its key and
// store: apart from RateLimiter so that reading a config needs no Redis client.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tronada::cli {

/// What a route's `rate_limit = {...}` says.
struct RateLimitOptions {
  std::int64_t requests = 0;  // per `per`, >= 1
  std::chrono::milliseconds per{1000};
  /// "remote_ip" (the client's address; with xheaders, the forwarded one), or
  /// "header:NAME" (an API key, a tenant; requests without it are keyed by address).
  std::string key = "remote_ip";
  /// "memory" (this process only) or "redis://HOST:PORT" (shared by every instance).
  std::string store = "memory";
  /// When the store fails or misses its deadline: let the request through (true), or
  /// refuse it with 503.
  bool allow_on_store_error = true;
  std::size_t max_keys = 100'000;            // memory store
  std::chrono::milliseconds timeout{100};    // Redis: deadline per decision
  std::string redis_prefix = "tronada:rl:";  // Redis: key prefix (the route is added)
};

/// Where a limit's store lives, parsed from `store`.
struct RateStoreAddress {
  bool redis = false;
  std::string host;  // as written
  int port = 6379;
};

/// Parses `store`; std::invalid_argument naming the problem.
RateStoreAddress parse_rate_store(std::string_view store);
/// Checks `key`: "remote_ip" or "header:NAME"; std::invalid_argument otherwise.
void check_rate_key(std::string_view key);

}  // namespace tronada::cli
