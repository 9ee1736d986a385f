// ProxyHandler: a RequestHandler that passes requests to HTTP upstreams, as nginx's
// proxy_pass and Caddy's reverse_proxy.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tronada/gateway/gateway_handler.h"
#include "tronada/gateway/proxy_headers.h"
#include "tronada/gateway/upstream_discovery.h"
#include "tronada/gateway/upstream_group.h"
#include "tronada/http/connection_pool.h"

namespace tronada {

namespace metrics {
struct UpstreamSeries;
}  // namespace metrics

class TimeoutList;
class PeriodicCallback;

/// Settings of one proxy route.
struct ProxyOptions {
  /// Connecting (or waiting for a pooled connection) to one upstream.
  Duration connect_timeout = std::chrono::seconds(10);
  /// Between two reads from the upstream while a response is due (nginx's
  /// proxy_read_timeout): a stuck upstream gets 504.
  Duration read_timeout = std::chrono::seconds(60);
  /// For the upstream to take request bytes we queued (proxy_send_timeout).
  Duration write_timeout = std::chrono::seconds(60);
  /// A tunnelled (Upgrade) connection with no byte either way for this long closes.
  Duration tunnel_idle_timeout = std::chrono::minutes(10);
  /// Upstreams tried per request (connect failures and, for idempotent requests,
  /// failures before any response byte). 0: each upstream once.
  std::size_t max_tries = 0;
  std::size_t max_response_header_size = 64 * 1024;
  /// Client body bytes held while the upstream is slower before the client is paused.
  std::size_t body_buffer = 256 * 1024;
  /// Request body limit; 0: none (the upstream decides, as Caddy does).
  std::uint64_t max_body_size = 0;
  ProxyHeaderOptions headers;
  UpstreamGroupOptions balance;
  /// https:// upstreams: verify their certificates (against `upstream_ca_file`, or the
  /// system's CAs when empty) and names. Off only for upstreams pinned by other means.
  bool upstream_verify = true;
  std::string upstream_ca_file;
  ConnectionPoolOptions pool = default_pool_options();
  /// Active health checks: GET this path on every upstream each interval; a non-2xx/3xx
  /// answer or none within health_timeout marks it down until a check passes. Empty:
  /// passive checks only.
  std::string health_uri;
  Duration health_interval = std::chrono::seconds(10);
  /// Zero: min(5 s, health_interval), so a round of checks ends before the next begins.
  Duration health_timeout = Duration::zero();
  /// Upstreams named by a host name are looked up again this often (their DNS TTL may
  /// make it sooner, never below 1 s): each address becomes a member of the group,
  /// addresses that vanish are drained. Zero: the name is resolved at each connect, as
  /// the system resolver answers, and the group never changes.
  Duration resolve_interval = Duration::zero();
  /// DNS servers for those lookups, as nginx's `resolver` ("127.0.0.1:5353",
  /// "10.0.0.2,10.0.0.3"); empty: /etc/resolv.conf.
  std::string resolver;
  /// The route label of the per-upstream metrics (tronada_upstream_*), from the config;
  /// each upstream is labelled with its URL as configured. Measured only when this
  /// process publishes metrics (metrics::current()).
  std::string metrics_route = "/";

  static ConnectionPoolOptions default_pool_options() {
    ConnectionPoolOptions o;
    o.max_per_endpoint = 1024;
    o.max_total = 4096;
    o.max_idle_per_endpoint = 128;
    o.idle_timeout = std::chrono::seconds(60);
    return o;
  }
};

/// One proxy route: its upstreams, their pool and health. Shared by the route's
/// handlers. The loop-bound parts (pool, timeout lists, health checks) are made on first
/// use, on the loop that serves the route, so a route built before fork() works in each
/// worker.
///
/// Lifetime: destroy it on the loop thread before the loop closes (it closes its pool
/// and timers); exchanges in flight hold it shared. Tunnels (upgraded connections) do
/// not: a reload must not keep a dropped route's pool and health checks running for as
/// long as a WebSocket stays open, so they hold only what they use, the timeout list.
class ProxyRoute {
 public:
  /// Throws std::invalid_argument for a bad or empty upstream list.
  ProxyRoute(const std::vector<std::string>& upstream_urls, ProxyOptions options = {});
  ~ProxyRoute();
  ProxyRoute(const ProxyRoute&) = delete;
  ProxyRoute& operator=(const ProxyRoute&) = delete;

  const ProxyOptions& options() const { return options_; }
  UpstreamGroup& group() { return group_; }
  ConnectionPool& pool();
  TimeoutList& read_timeouts();
  TimeoutList& write_timeouts();
  /// Shared: each tunnel holds it, since tunnels outlive their request and the route.
  const std::shared_ptr<TimeoutList>& tunnel_timeouts();
  /// Starts the active health checks if configured (idempotent; the constructor
  /// schedules it on the current loop).
  void start_health_checks();
  /// Starts looking the upstreams' host names up again and again if resolve_interval
  /// asks (idempotent; the constructor schedules it on the current loop).
  void start_discovery();
  /// The first DNS lookups of discovery are still on their way: discovery_settled()
  /// would wait. False without discovery (then nothing is made per request).
  bool discovery_unsettled() const;
  /// Ready at once without discovery or once its first lookups ended; else completes
  /// when they do, or fails with TimeoutError after `timeout`.
  Future<void> discovery_settled(Duration timeout);
  /// The DNS lookups so far (zeros without discovery).
  UpstreamDiscovery::Stats discovery_stats() const;
  /// The health check timeout in effect (health_timeout, or its default).
  Duration health_timeout() const;

  /// Finds this route's upstreams' metrics series and publishes their gauges (health,
  /// connections, DNS) once a second, if this process has metrics (idempotent; started
  /// with the first request or the health checks).
  void start_metrics();
  /// The metrics series of `u`'s configured upstream, or null when not measured.
  metrics::UpstreamSeries* upstream_series(const Upstream& u) const {
    return u.source < series_.size() ? series_[u.source] : nullptr;
  }

  /// A config reload: members of this (new) route take the state of the members of
  /// `previous` with the same URL and address (passive failure marks and, when this
  /// route has active checks, their down flag), so a host found down before the reload
  /// is not offered requests again until it recovers. Members found later by DNS take
  /// theirs when they join. Call it before the route serves; a key already carried (from
  /// an earlier `previous`) is kept.
  void carry_state_from(const ProxyRoute& previous);

 private:
  void run_health_checks();
  void publish_metrics();
  void check_health(const std::shared_ptr<Upstream>& u);
  /// Source `source`'s name now resolves to `addresses`: the group follows, and the
  /// idle connections of the members that left are closed.
  void addresses_changed(std::size_t source, const std::vector<std::string>& addresses);
  /// Gives `u` the state carried for it from the previous route table, once.
  void apply_carried_state(Upstream& u);

  struct CarriedState {
    std::size_t failures = 0;
    TimePoint first_failure{};
    TimePoint down_until{};
    bool health_check_down = false;
  };

  ProxyOptions options_;
  UpstreamGroup group_;
  std::unique_ptr<ConnectionPool> pool_;
  std::unique_ptr<TimeoutList> read_timeouts_, write_timeouts_;
  std::shared_ptr<TimeoutList> tunnel_timeouts_;
  std::unique_ptr<PeriodicCallback> health_;
  std::unique_ptr<UpstreamDiscovery> discovery_;
  std::vector<std::size_t> discovered_sources_;          // discovery_'s index -> source
  std::map<std::string, CarriedState> carried_;          // by url + '\n' + address
  std::vector<metrics::UpstreamSeries*> series_;         // by source; empty: not measured
  std::vector<UpstreamDiscovery::Stats> published_dns_;  // by discovery index
  std::unique_ptr<PeriodicCallback> metrics_publisher_;
  bool metrics_started_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

/// Passes each request to an upstream of its route and the response back, both bodies
/// streamed with backpressure: a slow client slows the upstream down rather than making
/// us buffer its response, and a slow upstream pauses the client's upload.
///
/// Errors: 502 when no upstream could be reached or one answered with garbage, 504 when
/// one timed out, each logged with the upstream's address; an upstream failing after the
/// response head went out cuts the client's response (HTTP/1 closes, HTTP/2 resets).
/// Upgrade requests (WebSocket) become a tunnel once the upstream answers 101.
/// Mount it as Rule("/.*", handler<ProxyHandler>(route)).
class ProxyHandler : public GatewayHandler {
 public:
  ProxyHandler();
  ~ProxyHandler() override;
  void initialize(std::shared_ptr<ProxyRoute> route);

  void data_received(std::string_view chunk) override;
  std::optional<std::uint64_t> max_body_size() const override;
  void on_connection_close() override;

  /// For the access log: where the request's last try went (the upstream's URL as
  /// configured, or scheme://address:port for a member found by DNS); empty when none
  /// was tried.
  std::string upstream_address() const;
  /// That try's time from its start to the response's last byte, in seconds; negative
  /// when no whole response came.
  double upstream_seconds() const;

  class Exchange;

 private:
  Task<void> serve() override;
  std::shared_ptr<Exchange> make_exchange();

  std::shared_ptr<ProxyRoute> route_;
  std::shared_ptr<Exchange> exchange_;
};

}  // namespace tronada
