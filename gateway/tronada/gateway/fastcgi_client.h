// FastCGI connections to one responder (php-fpm...): an address, and a pool that lends
// connections for one request at a time and keeps them open with FCGI_KEEP_CONN.
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tronada/async/future.h"
#include "tronada/async/task.h"
#include "tronada/gateway/upstream_discovery.h"
#include "tronada/loop/io_loop.h"
#include "tronada/net/iostream.h"

namespace tronada {
class PeriodicCallback;
namespace metrics {
struct UpstreamSeries;
}
}  // namespace tronada

namespace tronada::fastcgi {

/// Where a responder listens: `unix:PATH`, `HOST:PORT` or `[V6]:PORT`.
struct Address {
  bool is_unix = false;
  std::string host;
  int port = 0;
  std::string path;

  /// Throws std::invalid_argument with the reason for anything else.
  static Address parse(std::string_view text);
  std::string to_string() const;
};

struct PoolOptions {
  /// Most connections open to the backend at once; further requests queue (FIFO). With
  /// keep-alive this must not exceed the responder's workers (php-fpm's pm.max_children):
  /// each php-fpm child serves one connection at a time, so a connection beyond them
  /// waits in its listen queue until another closes.
  std::size_t max_connections = 5;  // Debian's php-fpm pool default pm.max_children
  /// Requests waiting for a connection beyond these are refused (503).
  std::size_t max_queue = 1024;
  /// Limit on connecting, and on waiting in the queue for a connection (504).
  Duration connect_timeout = std::chrono::seconds(10);
  /// When set (> 0), a request that waited this long in the queue for a connection is
  /// refused with 503 (PoolOverloadedError) instead of waiting up to connect_timeout.
  Duration max_wait{0};
  /// Limit on each wait for the backend's next bytes (504): nginx's fastcgi_read_timeout.
  Duration read_timeout = std::chrono::seconds(60);
  /// Idle kept-alive connections are closed after this, so that they stop holding
  /// php-fpm children that other clients (other worker processes) may need.
  Duration idle_timeout = std::chrono::seconds(10);
  /// Ask the responder to keep connections open (FCGI_KEEP_CONN) and reuse them.
  bool keep_conn = true;
};

/// A request could not get a connection in time (answered with 504).
class PoolTimeoutError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
/// The queue of waiting requests is full (answered with 503).
class PoolOverloadedError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A connection lent for one request.
struct Lease {
  std::shared_ptr<IOStream> stream;
  /// It served a request before: if it fails before any response byte, the request may
  /// be retried on a fresh connection (the responder may have closed it meanwhile).
  bool reused = false;
};

/// Connections to one responder. acquire() lends an idle connection, opens a new one
/// while fewer than max_connections exist, or queues the caller (first come, first
/// served) until one is released. Every lease must be returned with release().
///
/// Lifetime: held by shared_ptr by every handler that uses it; owns its idle streams
/// (closed when the pool is destroyed) and the waiters' timers. Lent streams are owned
/// by their lease until released.
class Pool : public std::enable_shared_from_this<Pool> {
 public:
  explicit Pool(Address address, PoolOptions options = {}, IOLoop* loop = nullptr);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  /// Throws PoolTimeoutError, PoolOverloadedError, or the connect error
  /// (std::system_error, TimeoutError) for a backend that cannot be reached.
  Task<Lease> acquire();
  /// Returns a lent connection. `reusable`: the request ended cleanly (END_REQUEST, no
  /// stray bytes) on a kept-alive connection; otherwise the stream is closed.
  void release(std::shared_ptr<IOStream> stream, bool reusable);

  /// Looks the address's host name up every `interval` (its TTL may make it sooner)
  /// with the DNS servers `resolver` (empty: /etc/resolv.conf), and spreads new
  /// connections over every address it resolves to, in turn. An address that vanishes
  /// is drained: its idle connections close, lent ones close when released. A failed
  /// lookup keeps the last addresses. Until the first answer, connections go to the
  /// name as before. Nothing for a literal address or a Unix socket. Call once, on the
  /// loop thread; throws std::invalid_argument for a bad resolver list.
  void resolve_every(Duration interval, std::string resolver);
  /// The addresses new connections go to (empty: the configured host).
  const std::vector<std::string>& resolved_addresses() const { return resolved_; }

  /// Measures this pool as upstream `upstream` (the address as configured) of route
  /// `route` (tronada_upstream_*): once the process has a metrics region, series()
  /// returns its counters and the pool publishes its gauges (connections idle and busy,
  /// DNS discovery) once a second. Label values come from the config, never from
  /// requests. Call once, on the loop thread; without a region it does nothing.
  void measure(std::string route, std::string upstream);
  /// This process's counters for the pool, or nullptr (not measured, or metrics off).
  metrics::UpstreamSeries* series() {
    if (!metrics_started_) start_metrics();
    return series_;
  }

  const Address& address() const { return address_; }
  const PoolOptions& options() const { return options_; }
  std::size_t open_connections() const { return open_; }
  std::size_t idle_connections() const { return idle_.size(); }
  std::size_t waiting() const { return waiters_.size(); }

 private:
  struct Waiter {
    Promise<std::shared_ptr<IOStream>> promise;
    TimeoutHandle timer;
  };
  /// A queued request gets `stream` (an idle connection) or, when null, the right to
  /// open one. False if nobody waits.
  bool hand_to_waiter(std::shared_ptr<IOStream> stream);
  /// Opens a connection to `to` (a resolved address), or to the configured address when
  /// empty.
  Task<std::shared_ptr<IOStream>> connect(std::string to);
  /// A usable idle connection (to the resolved address `to` unless empty), or null;
  /// closes the dead ones it finds.
  std::shared_ptr<IOStream> take_idle(const std::string& to);
  /// True if an idle stream still looks open (no EOF or stray bytes readable).
  static bool idle_stream_usable(IOStream& stream);

  /// The name now resolves to `addresses` (sorted).
  void addresses_changed(const std::vector<std::string>& addresses);
  /// Where the next request goes: the resolved addresses in turn; empty before the first
  /// answer (and without discovery): the configured address.
  std::string next_host();
  bool drained(const IOStream* stream) const;
  /// Finds this process's series (once the region is attached) and starts publishing.
  void start_metrics();
  void publish_metrics();

  Address address_;
  PoolOptions options_;
  std::unique_ptr<UpstreamDiscovery> discovery_;
  std::vector<std::string> resolved_;
  std::size_t next_address_ = 0;
  /// The address each open connection to a resolved address went to, for draining.
  std::unordered_map<const IOStream*, std::string> connected_to_;
  IOLoop* loop_;
  std::size_t open_ = 0;  // connections open or being opened, lent or idle
  struct Idle {
    std::shared_ptr<IOStream> stream;
    TimePoint since;
  };
  /// Closes connections idle for longer than idle_timeout; re-arms while any are idle.
  void sweep_idle();
  void arm_sweep(Duration delay);

  std::string metrics_route_;     // empty: not measured
  std::string metrics_upstream_;  // the address as configured
  bool metrics_started_ = true;   // measure() clears it
  metrics::UpstreamSeries* series_ = nullptr;
  std::unique_ptr<PeriodicCallback> metrics_publisher_;
  UpstreamDiscovery::Stats published_dns_;  // what publish_metrics() counted so far

  std::vector<Idle> idle_;  // oldest first; reuse takes the newest
  TimeoutHandle sweep_timer_;
  std::list<Waiter> waiters_;
};

}  // namespace tronada::fastcgi
