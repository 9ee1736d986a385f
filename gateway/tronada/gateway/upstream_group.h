// UpstreamGroup: the servers a proxy route balances over, with passive health checks.
// Sans-I/O: it decides and counts; the proxy handler does the connecting.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tronada/http/connection_pool.h"
#include "tronada/loop/io_loop.h"

namespace tronada {

/// One upstream server of a proxy route.
struct Upstream {
  /// As configured: "http://10.0.0.1:8080", "https://api.internal", "unix:/run/app.sock".
  std::string url;
  Endpoint endpoint;
  /// A path prefix from the URL ("http://a:8080/api" -> "/api"); requests go to
  /// prefix + their own path, as nginx's proxy_pass with a URI part. Empty: none.
  std::string path_prefix;
  /// The Host header the upstream would expect ("a:8080"), for X-Forwarded-Host checks
  /// and when the route does not keep the client's Host.
  std::string host_header;

  /// Which configured upstream this one comes from (its index in the group's sources).
  /// Several share one when a host name resolved to several addresses.
  std::size_t source = 0;
  /// The address a discovered upstream connects to ("10.0.0.7"; endpoint.host holds
  /// it too); empty: connects to endpoint.host as configured (a literal, a Unix path, or
  /// a name resolved at each connect).
  std::string address;

  // --- state, kept by UpstreamGroup ---
  /// Left the group (its name stopped resolving to it): it finishes what it has in
  /// flight and gets nothing new; its connections are not kept for reuse.
  bool removed = false;
  std::size_t active = 0;     // exchanges in flight
  std::size_t failures = 0;   // consecutive failures within fail_timeout
  TimePoint first_failure{};  // when the current run of failures began
  TimePoint down_until{};     // marked down (passively or by a health check) until then
  bool health_check_down = false;
  /// A health check of this member is in flight: the next round skips it rather than
  /// piling checks up on a host that does not answer (health_timeout > health_interval).
  bool health_checking = false;
  std::uint64_t requests = 0;  // picked, ever
  /// Refused or failed connects not logged yet: they are logged at most once a second
  /// per upstream, with how many were folded in.
  std::size_t connect_errors_unlogged = 0;
  TimePoint connect_error_logged{};

  bool down(TimePoint now) const { return health_check_down || now < down_until; }
};

/// Whether `u` names its server by a host name (not an address literal or a Unix
/// socket): only those can be looked up again.
bool has_host_name(const Upstream& u);

/// Parses an upstream URL: http:// or https:// with an optional path prefix, or
/// unix:PATH (plain HTTP over a Unix socket). Throws std::invalid_argument naming the
/// problem (queries and fragments are refused: they cannot be prefixes).
Upstream parse_upstream(std::string_view url);

/// How a group picks among its healthy upstreams.
enum class BalancePolicy {
  round_robin,  // in turn, as nginx's default
  least_conn,   // the fewest exchanges in flight; ties in turn
};

/// Parses "round_robin" or "least_conn"; std::invalid_argument otherwise.
BalancePolicy parse_balance_policy(std::string_view name);

struct UpstreamGroupOptions {
  BalancePolicy policy = BalancePolicy::round_robin;
  /// nginx's max_fails / fail_timeout: this many failures (connect errors, timeouts,
  /// resets) within fail_timeout mark the upstream down for fail_timeout. 0: never.
  std::size_t max_fails = 1;
  Duration fail_timeout = std::chrono::seconds(10);
};

/// The upstreams of one proxy route and how requests spread over them.
///
/// pick() skips upstreams that are down and those already tried for this request;
/// when every untried one is down it still returns the one that comes back first, as
/// nginx does, so a group whose servers all failed recently is retried rather than
/// answering 502 without trying.
///
/// Members can change while requests are in flight (set_addresses, for upstreams found
/// by DNS): each is held by shared_ptr, so a request that picked one keeps it valid
/// until it ends, whatever the group does meanwhile.
class UpstreamGroup {
 public:
  using Tried = std::vector<std::shared_ptr<Upstream>>;

  /// `upstreams` are the configured sources; each starts as one member. Throws
  /// std::invalid_argument for an empty list.
  UpstreamGroup(std::vector<Upstream> upstreams, UpstreamGroupOptions options = {});

  /// The next upstream for a request, or null when all were tried.
  std::shared_ptr<Upstream> pick(TimePoint now, const Tried& tried);
  void begin(Upstream& u) {
    ++u.active;
    ++u.requests;
  }
  void end(Upstream& u) {
    if (u.active > 0) --u.active;
  }
  /// A connect error, timeout or broken response from `u`.
  void report_failure(Upstream& u, TimePoint now);
  /// A complete response from `u`: clears its failure count.
  void report_success(Upstream& u);

  /// Makes the members that come from source `source` one per address in `addresses`
  /// (numeric): members whose address stays keep their state (failures, health), new
  /// ones join, and the others (including the member that connected by name) leave,
  /// marked removed. Returns the ones that left, for their idle connections to be
  /// closed. An empty list changes nothing (a failed lookup keeps the last good set).
  std::vector<std::shared_ptr<Upstream>> set_addresses(std::size_t source,
                                                       const std::vector<std::string>& addresses);

  /// The members now (not those removed).
  std::vector<std::shared_ptr<Upstream>>& upstreams() { return upstreams_; }
  const std::vector<std::shared_ptr<Upstream>>& upstreams() const { return upstreams_; }
  /// The configured upstreams, as given to the constructor.
  const std::vector<Upstream>& sources() const { return sources_; }
  const UpstreamGroupOptions& options() const { return options_; }

 private:
  std::vector<Upstream> sources_;
  std::vector<std::shared_ptr<Upstream>> upstreams_;
  UpstreamGroupOptions options_;
  std::size_t next_ = 0;
};

}  // namespace tronada
