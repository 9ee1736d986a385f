// RoutePolicy: what a route enforces in front of its backend, whatever the backend is:
// CORS (preflights answered here, Access-Control-* added to responses) and a rate limit
// (429 with Retry-After and RateLimit-* headers).
#pragma once

#include <memory>

#include "cli/rate_limiter.h"
#include "tronada/gateway/cors_policy.h"
#include "tronada/http/http_connection.h"
#include "tronada/web/application.h"

namespace tronada::metrics {
struct RouteSeries;
}  // namespace tronada::metrics

namespace tronada::cli {

/// Starts a request on its route through the route's policies, then (if they let it)
/// through `app`'s router as usual:
///
/// 1. A CORS preflight is answered with 204 here (the backend never sees it), with the
///    Access-Control-Allow-* fields when allowed, without them when not. Preflights do
///    not count against the rate limit: a browser sends them on its own.
/// 2. The rate limit decides. From the memory store that is immediate; from Redis the
///    request waits without blocking the loop: its body is held (reading paused) and its
///    handler does not start until the answer (or the deadline) comes. A refused request
///    gets 429 (503 when the store failed and on_store_error is "deny").
/// 3. The response the backend (or the refusal) writes gets the CORS fields for the
///    request's Origin, `Vary: Origin` when the answer depends on it, and the RateLimit-*
///    fields. The backend's own Access-Control-Allow-Origin, -Credentials and
///    -Expose-Headers are replaced: on a route with `cors`, tronada answers CORS.
///
/// Answers made here go through `app` (Application::start_request_with), so they are
/// logged and counted with the route's series like the backend's.
class RoutePolicy {
 public:
  /// Either may be null (not configured). `series`: the route's counters, or nullptr.
  RoutePolicy(std::shared_ptr<const CorsPolicy> cors, std::shared_ptr<RateLimiter> limiter,
              metrics::RouteSeries* series);

  RequestStart start_request(Application& app, const std::shared_ptr<HTTPServerRequest>& request);

 private:
  std::shared_ptr<const CorsPolicy> cors_;
  std::shared_ptr<RateLimiter> limiter_;
  metrics::RouteSeries* series_;
};

}  // namespace tronada::cli
