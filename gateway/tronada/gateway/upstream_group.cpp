#include "tronada/gateway/upstream_group.h"

#include <limits>
#include <stdexcept>

#include "tronada/http/http_client_request.h"

namespace tronada {

Upstream parse_upstream(std::string_view url) {
  Upstream u;
  u.url = std::string(url);
  if (url.starts_with("unix:")) {
    std::string_view path = url.substr(5);
    if (path.empty() || path[0] != '/') {
      throw std::invalid_argument("upstream '" + u.url + "': unix: needs an absolute path");
    }
    u.endpoint.scheme = "http";
    u.endpoint.unix_path = std::string(path);
    u.endpoint.host = "localhost";
    u.host_header = "localhost";
    return u;
  }
  if (url.find('?') != std::string_view::npos || url.find('#') != std::string_view::npos) {
    throw std::invalid_argument("upstream '" + u.url + "': a query or fragment cannot be a prefix");
  }
  ClientURL parsed = parse_client_url(url);
  if (!parsed.username.empty()) {
    throw std::invalid_argument("upstream '" + u.url + "': user info is not supported");
  }
  u.endpoint.scheme = parsed.scheme;
  u.endpoint.host = parsed.host;
  u.endpoint.port = parsed.port;
  u.endpoint.unix_path = parsed.unix_path;
  u.host_header = parsed.host_header();
  if (parsed.path != "/") {
    u.path_prefix = parsed.path;
    // "http://a/api/" and "http://a/api" both prefix "/api": the request path brings
    // its own leading slash.
    while (!u.path_prefix.empty() && u.path_prefix.back() == '/') u.path_prefix.pop_back();
  }
  return u;
}

BalancePolicy parse_balance_policy(std::string_view name) {
  if (name == "round_robin") return BalancePolicy::round_robin;
  if (name == "least_conn") return BalancePolicy::least_conn;
  throw std::invalid_argument("unknown balancing policy '" + std::string(name) +
                              "' (round_robin or least_conn)");
}

UpstreamGroup::UpstreamGroup(std::vector<Upstream> upstreams, UpstreamGroupOptions options)
    : upstreams_(std::move(upstreams)), options_(options) {
  if (upstreams_.empty()) throw std::invalid_argument("a proxy needs at least one upstream");
}

Upstream* UpstreamGroup::pick(TimePoint now, const std::vector<const Upstream*>& tried) {
  auto was_tried = [&](const Upstream& u) {
    for (const Upstream* t : tried) {
      if (t == &u) return true;
    }
    return false;
  };
  const std::size_t n = upstreams_.size();
  Upstream* best = nullptr;
  std::size_t best_at = 0;
  for (std::size_t k = 0; k < n; ++k) {
    std::size_t i = (next_ + k) % n;
    Upstream& u = upstreams_[i];
    if (was_tried(u) || u.down(now)) continue;
    if (options_.policy == BalancePolicy::round_robin) {
      best = &u;
      best_at = i;
      break;
    }
    if (!best || u.active < best->active) {
      best = &u;
      best_at = i;
    }
  }
  if (best) {
    next_ = (best_at + 1) % n;
    return best;
  }
  // Everything untried is down: the one due back first, rather than no answer at all.
  for (Upstream& u : upstreams_) {
    if (was_tried(u)) continue;
    if (!best || (!u.health_check_down && best->health_check_down) ||
        (u.health_check_down == best->health_check_down && u.down_until < best->down_until)) {
      best = &u;
    }
  }
  return best;
}

void UpstreamGroup::report_failure(Upstream& u, TimePoint now) {
  if (options_.max_fails == 0) return;
  if (u.failures == 0 || now - u.first_failure > options_.fail_timeout) {
    u.failures = 0;
    u.first_failure = now;
  }
  if (++u.failures >= options_.max_fails) {
    u.down_until = now + options_.fail_timeout;
    u.failures = 0;
  }
}

void UpstreamGroup::report_success(Upstream& u) {
  u.failures = 0;
  u.down_until = TimePoint{};
}

}  // namespace tronada
