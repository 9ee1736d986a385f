// ConnectionPool: kept-alive client connections per endpoint, with limits and a FIFO
// queue of waiters. Shared by the HTTP client and the reverse proxy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "tronada/async/future.h"
#include "tronada/loop/io_loop.h"
#include "tronada/net/iostream.h"

namespace tronada {

class SSLContext;

namespace detail {
struct PoolState;
}

/// Where a pooled connection goes. Two endpoints share connections exactly when their
/// key() is equal: scheme, host, port, Unix path, and for TLS the context (by identity)
/// and the server name.
struct Endpoint {
  std::string scheme = "http";
  std::string host;
  int port = 80;
  /// Non-empty: connect to this Unix socket instead of host:port.
  std::string unix_path;
  /// A client context for TLS; null for plaintext.
  std::shared_ptr<SSLContext> ssl;
  /// SNI and certificate name; empty: host.
  std::string server_hostname;

  std::string key() const;
  /// "host:port" or the Unix path, for messages.
  std::string describe() const;
};

/// Limits of a pool. Every one is enforced; none is unbounded.
struct ConnectionPoolOptions {
  /// Connections per endpoint, checked out, connecting and idle together.
  std::size_t max_per_endpoint = 10;
  /// Connections in the whole pool. When reached, an idle connection of another endpoint
  /// is closed to make room (the longest idle first), else the request waits.
  std::size_t max_total = 100;
  /// Idle connections kept per endpoint; more are closed on release.
  std::size_t max_idle_per_endpoint = 10;
  /// An idle connection unused this long is closed.
  Duration idle_timeout = std::chrono::seconds(60);
  /// Requests waiting for a connection; beyond this acquire() fails with PoolFullError.
  std::size_t max_waiters = 1024;
  IOStreamOptions stream_options;
};

/// acquire() found max_waiters requests already queued.
class PoolFullError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A connection checked out of a ConnectionPool; move-only. The holder uses stream()
/// for one exchange at a time, then gives the connection back with release() when the
/// exchange ended cleanly (the whole response read, the whole request written, both
/// sides willing to keep the connection), or discard() otherwise. Destroying it without
/// either discards it. After release/discard the object is empty.
///
/// While checked out, the stream's data handler, close callback and reads belong to the
/// holder; release() takes them back (the holder must not touch the stream after). A
/// checked-out stream still has the pool's idle watcher as its data handler (it closes
/// the stream on any byte): the holder replaces it with its own before sending, and on
/// release leaves its handler for the pool to replace, so reads never stop and restart.
/// release() and discard() always clear or replace both of the holder's callbacks, so a
/// holder may capture a raw pointer to itself in them.
class PooledConnection {
 public:
  PooledConnection() = default;
  ~PooledConnection() { discard(); }
  PooledConnection(PooledConnection&& other) noexcept { *this = std::move(other); }
  PooledConnection& operator=(PooledConnection&& other) noexcept;
  PooledConnection(const PooledConnection&) = delete;
  PooledConnection& operator=(const PooledConnection&) = delete;

  explicit operator bool() const { return static_cast<bool>(stream_); }
  IOStream& stream() const { return *stream_; }
  const std::shared_ptr<IOStream>& stream_ptr() const { return stream_; }
  /// True if the connection served an earlier exchange and sat idle. Such a connection
  /// may have been closed by the server in the meantime without us seeing it yet: a
  /// failure before any response byte arrived is then worth one retry on a fresh
  /// connection (acquire with reuse_idle false) for idempotent requests.
  bool reused() const { return reused_; }
  const std::string& key() const { return key_; }

  /// Returns the connection to the idle list (or to the next waiter for its endpoint).
  /// A closed stream is discarded instead.
  void release();
  /// Closes the connection and frees its slot.
  void discard();
  /// Takes the stream out of the pool for good (the connection switched protocols):
  /// its slot is freed and the caller owns, and must close, the stream.
  std::shared_ptr<IOStream> take();

 private:
  friend struct detail::PoolState;
  PooledConnection(std::weak_ptr<detail::PoolState> pool, std::shared_ptr<IOStream> stream,
                   std::string key, bool reused)
      : pool_(std::move(pool)), stream_(std::move(stream)), key_(std::move(key)), reused_(reused) {}
  void give_back(bool reusable);

  std::weak_ptr<detail::PoolState> pool_;
  std::shared_ptr<IOStream> stream_;
  std::string key_;
  bool reused_ = false;
};

/// Kept-alive connections to many endpoints, as Tornado's simple client's queue and
/// nginx's upstream keepalive together.
///
/// acquire() hands out an idle connection of the endpoint (most recently used first,
/// after dropping any the peer closed), else opens one if the per-endpoint and total
/// limits allow, else queues the request. Waiters are served in arrival order as
/// connections are released or closed. An idle connection is watched: bytes or EOF from
/// the server while idle close it, so a stale connection is rarely handed out (the
/// remaining race is what PooledConnection::reused() is for).
///
/// Errors acquire() can carry: TimeoutError (no connection within `timeout`, queueing
/// and connecting together), PoolFullError, StreamClosedError (the pool was closed), and
/// whatever TCPClient::connect fails with (std::system_error such as UV_ECONNREFUSED,
/// TimeoutError, SSLHandshakeError).
///
/// Lifetime: the ConnectionPool owns the shared state; idle streams are owned by the
/// state, checked-out streams by their PooledConnection. Streams' callbacks, timers and
/// connects in flight hold the state weakly, so destroying the pool (which closes idle
/// connections and fails waiters) is safe at any time on the loop thread; connections
/// still checked out are closed when their holders give them back. Destroy the pool
/// before its loop is closed.
class ConnectionPool {
 public:
  explicit ConnectionPool(ConnectionPoolOptions options = {}, IOLoop* loop = nullptr);
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  /// A connection to `endpoint` within `timeout` (zero: no limit). With `reuse_idle`
  /// false a new connection is opened even if idle ones exist (for the stale retry).
  Future<PooledConnection> acquire(const Endpoint& endpoint, Duration timeout,
                                   bool reuse_idle = true);
  /// Closes idle connections and fails waiters; later acquires fail. Idempotent.
  void close();

  struct Stats {
    std::size_t checked_out = 0;  // including connections being opened
    std::size_t idle = 0;
    std::size_t waiting = 0;
    std::uint64_t opened = 0;  // connections opened successfully, ever
    std::uint64_t reused = 0;  // checkouts of an idle connection, ever
  };
  Stats stats() const;
  /// Idle connections kept for `endpoint`.
  std::size_t idle_count(const Endpoint& endpoint) const;
  /// Closes the idle connections of `endpoint` (an upstream leaving its group) and
  /// returns how many; connections checked out are untouched. Returns 0 for an endpoint
  /// the pool does not know.
  std::size_t close_idle(const Endpoint& endpoint);
  const ConnectionPoolOptions& options() const;

 private:
  std::shared_ptr<detail::PoolState> state_;
};

}  // namespace tronada
