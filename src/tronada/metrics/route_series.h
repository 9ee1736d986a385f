// The counters of one route in one process: what a request adds when it ends.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace tronada::metrics {

/// Upper bounds (seconds) of the request duration histogram: from a 50 µs static hit to
/// a 30 s upload; anything longer lands in +Inf.
inline constexpr std::array<double, 18> kDurationBounds = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,    0.1,    0.25,    0.5,    1.0,   2.5,    5.0,   10.0, 30.0};
/// The same bounds in nanoseconds, compared per request (integers, no division).
inline constexpr std::array<std::uint64_t, 18> kDurationBoundsNs = {
    50'000,      100'000,       250'000,       500'000,       1'000'000,      2'500'000,
    5'000'000,   10'000'000,    25'000'000,    50'000'000,    100'000'000,    250'000'000,
    500'000'000, 1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000, 30'000'000'000};
/// One bucket per bound plus +Inf.
inline constexpr std::size_t kBuckets = kDurationBounds.size() + 1;
/// Status classes counted: 1xx..5xx, and index 0 for anything else.
inline constexpr std::size_t kStatusClasses = 6;

/// The index of a status's class: 1..5 for 1xx..5xx, 0 otherwise.
constexpr std::size_t status_class(int status) {
  return status >= 100 && status < 600 ? static_cast<std::size_t>(status / 100) : 0;
}

/// The bucket a duration falls in (non-cumulative; the exposition sums them up).
constexpr std::size_t duration_bucket(std::uint64_t ns) {
  std::size_t i = 0;
  while (i < kDurationBoundsNs.size() && ns > kDurationBoundsNs[i]) ++i;
  return i;
}

/// Per-route counters of one process, laid out in shared memory so the master sums
/// every worker's copy without asking it. Only the owning process writes (relaxed
/// adds: each value is a count on its own, no ordering between them is promised);
/// any process reads.
struct RouteSeries {
  std::atomic<std::uint64_t> requests[kStatusClasses];
  std::atomic<std::uint64_t> buckets[kBuckets];
  std::atomic<std::uint64_t> duration_ns;
  std::atomic<std::uint64_t> bytes_in;
  std::atomic<std::uint64_t> bytes_out;
  /// Requests a rate limit refused (429), and requests decided without the limit's
  /// shared store because it failed or was slow (on_store_error decided them).
  std::atomic<std::uint64_t> rate_limited;
  std::atomic<std::uint64_t> rate_limit_store_errors;

  /// What one finished request costs: four relaxed adds, no lock, no allocation.
  void record(int status, std::uint64_t ns, std::uint64_t in, std::uint64_t out) {
    requests[status_class(status)].fetch_add(1, std::memory_order_relaxed);
    buckets[duration_bucket(ns)].fetch_add(1, std::memory_order_relaxed);
    duration_ns.fetch_add(ns, std::memory_order_relaxed);
    if (in) bytes_in.fetch_add(in, std::memory_order_relaxed);
    if (out) bytes_out.fetch_add(out, std::memory_order_relaxed);
  }
};

static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "shared-memory counters need address-free (lock-free) atomics");

}  // namespace tronada::metrics
