// The counters of one WSGI app (its MODULE:CALLABLE as configured) in one process: its
// threads and queue, written by the loop and the app's threads as calls come and go.
#pragma once

#include <atomic>
#include <cstdint>

#include "tronada/metrics/route_series.h"

namespace tronada::metrics {

/// Per-app counters of one process, in shared memory as RouteSeries are. The gauges are
/// moved up and down as calls queue, start and end (relaxed adds from several threads of
/// the one owning process), so they need no publisher; a dead process's are dropped.
struct WSGISeries {
  std::atomic<std::int64_t> threads;  // configured
  std::atomic<std::int64_t> busy;     // threads running a call now
  std::atomic<std::int64_t> queued;   // calls waiting for a thread now
  /// Time calls waited in the queue for a thread.
  std::atomic<std::uint64_t> wait_buckets[kBuckets];
  std::atomic<std::uint64_t> wait_ns;
  /// Requests refused with 503 because the queue was full.
  std::atomic<std::uint64_t> rejected;

  void record_wait(std::uint64_t ns) {
    wait_buckets[duration_bucket(ns)].fetch_add(1, std::memory_order_relaxed);
    wait_ns.fetch_add(ns, std::memory_order_relaxed);
  }
};

}  // namespace tronada::metrics
