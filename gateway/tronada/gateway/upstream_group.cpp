#include "tronada/gateway/upstream_group.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
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

bool has_host_name(const Upstream& u) {
  if (!u.endpoint.unix_path.empty() || u.endpoint.host.empty()) return false;
  unsigned char buf[sizeof(in6_addr)];
  const char* host = u.endpoint.host.c_str();
  return inet_pton(AF_INET, host, buf) != 1 && inet_pton(AF_INET6, host, buf) != 1;
}

UpstreamGroup::UpstreamGroup(std::vector<Upstream> upstreams, UpstreamGroupOptions options)
    : sources_(std::move(upstreams)), options_(options) {
  if (sources_.empty()) throw std::invalid_argument("a proxy needs at least one upstream");
  for (std::size_t i = 0; i < sources_.size(); ++i) {
    sources_[i].source = i;
    upstreams_.push_back(std::make_shared<Upstream>(sources_[i]));
  }
}

std::shared_ptr<Upstream> UpstreamGroup::pick(TimePoint now, const Tried& tried) {
  auto was_tried = [&](const Upstream& u) {
    for (const auto& t : tried) {
      if (t.get() == &u) return true;
    }
    return false;
  };
  const std::size_t n = upstreams_.size();
  if (n == 0) return nullptr;
  std::shared_ptr<Upstream> best;
  std::size_t best_at = 0;
  for (std::size_t k = 0; k < n; ++k) {
    std::size_t i = (next_ + k) % n;
    const auto& u = upstreams_[i];
    if (was_tried(*u) || u->down(now)) continue;
    if (options_.policy == BalancePolicy::round_robin) {
      best = u;
      best_at = i;
      break;
    }
    if (!best || u->active < best->active) {
      best = u;
      best_at = i;
    }
  }
  if (best) {
    next_ = (best_at + 1) % n;
    return best;
  }
  // Everything untried is down: the one due back first, rather than no answer at all.
  for (const auto& u : upstreams_) {
    if (was_tried(*u)) continue;
    if (!best || (!u->health_check_down && best->health_check_down) ||
        (u->health_check_down == best->health_check_down && u->down_until < best->down_until)) {
      best = u;
    }
  }
  return best;
}

std::vector<std::shared_ptr<Upstream>> UpstreamGroup::set_addresses(
    std::size_t source, const std::vector<std::string>& addresses) {
  std::vector<std::shared_ptr<Upstream>> removed;
  if (addresses.empty() || source >= sources_.size()) return removed;
  std::vector<std::string> missing = addresses;
  std::erase_if(upstreams_, [&](const std::shared_ptr<Upstream>& u) {
    if (u->source != source) return false;
    auto it =
        u->address.empty() ? missing.end() : std::find(missing.begin(), missing.end(), u->address);
    if (it != missing.end()) {
      missing.erase(it);  // stays
      return false;
    }
    u->removed = true;
    removed.push_back(u);
    return true;
  });
  const Upstream& from = sources_[source];
  for (const std::string& address : missing) {
    auto u = std::make_shared<Upstream>(from);
    u->address = address;
    u->endpoint.host = address;
    // TLS still names (SNI) and verifies the configured host, not the address.
    if (u->endpoint.ssl && u->endpoint.server_hostname.empty()) {
      u->endpoint.server_hostname = from.endpoint.host;
    }
    u->url = from.url + " (" + address + ")";
    upstreams_.push_back(std::move(u));
  }
  if (!upstreams_.empty()) next_ %= upstreams_.size();
  return removed;
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
