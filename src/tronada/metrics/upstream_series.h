// The counters of one upstream of one route in one process (a proxy URL, or a FastCGI
// responder's address, as written in the config): what each try at it adds, and the
// gauges its route (or FastCGI pool) publishes each second.
#pragma once

#include <atomic>
#include <cstdint>

#include "tronada/metrics/route_series.h"

namespace tronada::metrics {

/// How one try at an upstream ended.
enum class UpstreamOutcome : std::size_t {
  response = 0,       // a whole response came back (whatever its status)
  connect_error = 1,  // refused, unreachable, TLS failed: nothing was sent
  timeout = 2,        // connecting or the response timed out
  error = 3,          // reset, closed or malformed after connecting
  rejected = 4,       // our own pool refused it (queue full, max_wait): nothing was sent
};
inline constexpr std::size_t kUpstreamOutcomes = 5;

/// Per-upstream counters of one process, in shared memory as RouteSeries are. Counters
/// only grow; the gauges (healthy, idle, busy, addresses) are stored by the owning
/// process's route once a second and summed over live processes only.
struct UpstreamSeries {
  std::atomic<std::uint64_t> tries[kUpstreamOutcomes];
  /// Tries that retried a request which failed on an earlier try (FastCGI: a request
  /// sent again on a fresh connection after the responder closed a kept-alive one).
  std::atomic<std::uint64_t> retries;
  /// Connecting (or taking a pooled connection), for tries that got a connection.
  std::atomic<std::uint64_t> connect_buckets[kBuckets];
  std::atomic<std::uint64_t> connect_ns;
  /// From the start of a try to the response's last byte (nginx's
  /// $upstream_response_time), for tries that got a whole response.
  std::atomic<std::uint64_t> response_buckets[kBuckets];
  std::atomic<std::uint64_t> response_ns;
  /// DNS discovery of the upstream's host name (zeros without it): lookups answered,
  /// lookups failed, and the addresses it resolves to now (gauge).
  std::atomic<std::uint64_t> dns_lookups;
  std::atomic<std::uint64_t> dns_failures;
  std::atomic<std::int64_t> dns_addresses;
  /// Gauges: the members of this upstream that this process counts down (health check or
  /// passive mark), members in all (0: no health is tracked, as for FastCGI), connections
  /// idle in the pool and exchanges busy.
  std::atomic<std::int64_t> members_down;
  std::atomic<std::int64_t> members;
  std::atomic<std::int64_t> idle;
  std::atomic<std::int64_t> busy;
  /// Set once the owning process published the gauges (so an upstream no live process
  /// has started yet is not reported healthy or not).
  std::atomic<std::uint32_t> published;

  void record_try(UpstreamOutcome outcome) {
    tries[static_cast<std::size_t>(outcome)].fetch_add(1, std::memory_order_relaxed);
  }
  void record_connect(std::uint64_t ns) {
    connect_buckets[duration_bucket(ns)].fetch_add(1, std::memory_order_relaxed);
    connect_ns.fetch_add(ns, std::memory_order_relaxed);
  }
  void record_response(std::uint64_t ns) {
    response_buckets[duration_bucket(ns)].fetch_add(1, std::memory_order_relaxed);
    response_ns.fetch_add(ns, std::memory_order_relaxed);
  }
};

}  // namespace tronada::metrics
