// The metrics of every process of one server, in one MAP_SHARED mapping created before
// fork: each process writes its own slot, the master (or the only process) sums them.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tronada/metrics/route_series.h"
#include "tronada/metrics/upstream_series.h"
#include "tronada/metrics/worker_restarts.h"
#include "tronada/metrics/wsgi_series.h"

namespace tronada::metrics {

/// Connections counted by protocol (gauges).
enum class Protocol : std::size_t { http1 = 0, h2 = 1, websocket = 2 };
inline constexpr std::size_t kProtocols = 3;
/// Distinct (route, backend) series a region holds; more routes are not measured (a
/// warning says so). Label values come from the config, so this bounds a config, not
/// traffic.
inline constexpr std::size_t kMaxSeries = 128;
inline constexpr std::size_t kRouteLabelBytes = 112;
inline constexpr std::size_t kBackendLabelBytes = 16;
/// Distinct (route, upstream) series: proxy upstreams as written in the config.
inline constexpr std::size_t kMaxUpstreamSeries = 128;
inline constexpr std::size_t kUpstreamLabelBytes = 128;
/// Distinct WSGI apps (MODULE:CALLABLE as configured).
inline constexpr std::size_t kMaxWSGISeries = 32;
inline constexpr std::size_t kAppLabelBytes = 112;

/// The state one serving process publishes besides its counters.
struct SlotState {
  std::atomic<pid_t> pid;                // owner; 0 = never used
  std::atomic<std::uint32_t> ready;      // serving (listening, loop running)
  std::atomic<std::uint32_t> draining;   // a drain has started
  std::atomic<std::uint64_t> heartbeat;  // CLOCK_MONOTONIC ns of the loop's last turn
  std::atomic<std::int64_t> connections[kProtocols];
  /// TLS handshakes of client connections (server side) that completed / failed.
  /// Counters: kept when a new process takes the slot.
  std::atomic<std::uint64_t> tls_handshakes;
  std::atomic<std::uint64_t> tls_handshake_failures;
};

/// Everything summed over the slots at one moment (counters of processes that exited
/// included, gauges of live ones only).
struct Snapshot {
  struct Series {
    std::string route;
    std::string backend;
    std::uint64_t requests[kStatusClasses] = {};
    std::uint64_t buckets[kBuckets] = {};
    std::uint64_t duration_ns = 0;
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
    std::uint64_t rate_limited = 0;
    std::uint64_t rate_limit_store_errors = 0;
  };
  std::vector<Series> series;  // in the order routes were first registered
  struct Upstream {
    std::string route;
    std::string upstream;
    std::uint64_t tries[kUpstreamOutcomes] = {};
    std::uint64_t retries = 0;
    std::uint64_t connect_buckets[kBuckets] = {};
    std::uint64_t connect_ns = 0;
    std::uint64_t response_buckets[kBuckets] = {};
    std::uint64_t response_ns = 0;
    std::uint64_t dns_lookups = 0;
    std::uint64_t dns_failures = 0;
    // Gauges over live processes that published them: `publishers` of them, of which
    // `down` counted every member of the upstream down; addresses, idle and busy summed (addresses
    // is a per-process view of the same name, so the largest is kept, not the sum).
    int publishers = 0;
    int down = 0;
    // Of the publishers, those that track the upstream's health (members > 0); a
    // FastCGI pool has none, and then no tronada_upstream_healthy is reported.
    int health_publishers = 0;
    std::int64_t dns_addresses = 0;
    std::int64_t idle = 0;
    std::int64_t busy = 0;
  };
  std::vector<Upstream> upstreams;  // in the order first registered
  struct WSGIApp {
    std::string app;
    std::int64_t threads = 0;  // live processes only, as busy and queued
    std::int64_t busy = 0;
    std::int64_t queued = 0;
    std::uint64_t wait_buckets[kBuckets] = {};
    std::uint64_t wait_ns = 0;
    std::uint64_t rejected = 0;
  };
  std::vector<WSGIApp> wsgi_apps;  // in the order first registered
  std::int64_t connections[kProtocols] = {};
  std::uint64_t tls_handshakes = 0;
  std::uint64_t tls_handshake_failures = 0;
  /// Workers the master replaced, by cause (counted by the master, not per slot).
  std::uint64_t worker_restarts[kRestartCauses] = {};
  int live = 0;             // processes holding a slot and still running
  int ready = 0;            // of those, serving and not draining
  int draining = 0;         // of those, draining
  int stalled = 0;          // of those, whose loop has not turned for the stall threshold
  std::vector<pid_t> pids;  // the live ones
};

/// The shared mapping. Create it in the process that forks (or the only one), before
/// fork; each serving process then calls attach() once. Reading (snapshot) takes no lock
/// and never waits on a worker.
class SharedRegion {
 public:
  /// Maps room for `slots` processes (a recycled worker and its replacement overlap, so
  /// give about twice the workers). Throws std::system_error if mmap fails.
  static std::unique_ptr<SharedRegion> create(std::size_t slots);
  ~SharedRegion();
  SharedRegion(const SharedRegion&) = delete;
  SharedRegion& operator=(const SharedRegion&) = delete;

  /// Claims a free slot (never used, or its process is gone) for the calling process and
  /// makes this region the process's current() one. Counters a dead process left in the
  /// slot are kept (they only grow); its gauges are reset. Returns false when every slot
  /// is held by a live process.
  bool attach();
  /// This process's counters for (route, backend), registering the labels the first
  /// time any process asks; nullptr when not attached or when kMaxSeries are taken.
  /// Labels longer than the room for them are cut.
  RouteSeries* series(std::string_view route, std::string_view backend);
  /// The same for a proxy upstream of a route (its URL as configured).
  UpstreamSeries* upstream_series(std::string_view route, std::string_view upstream);
  /// The same for a WSGI app (its MODULE:CALLABLE).
  WSGISeries* wsgi_series(std::string_view app);
  /// Counts one worker replaced by the master for `cause`. Called in the master, which
  /// holds no slot; any process may call it.
  void count_worker_restart(RestartCause cause);
  /// This process's slot, or nullptr when not attached.
  SlotState* own() const { return own_; }

  /// Sums every slot. A slot's loop counts as stalled when its heartbeat is older than
  /// `stall_ns`.
  Snapshot snapshot(std::uint64_t stall_ns) const;
  std::size_t slots() const { return slots_; }

 private:
  SharedRegion(void* base, std::size_t bytes, std::size_t slots);
  struct Layout;
  void* base_;
  std::size_t bytes_;
  std::size_t slots_;
  SlotState* own_ = nullptr;
  std::size_t own_index_ = 0;
};

/// The region this process attached to, or nullptr when metrics are off.
SharedRegion* current();

/// CLOCK_MONOTONIC in nanoseconds (the same clock in every process).
std::uint64_t monotonic_ns();

/// Marks the loop as turning (the health check reads it).
inline void heartbeat() {
  if (SharedRegion* r = current())
    r->own()->heartbeat.store(monotonic_ns(), std::memory_order_relaxed);
}

}  // namespace tronada::metrics
