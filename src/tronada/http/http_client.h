// AsyncHTTPClient: non-blocking HTTP/1.1 fetches over a keep-alive connection pool, as
// Tornado's tornado.httpclient.AsyncHTTPClient.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "tronada/async/future.h"
#include "tronada/http/connection_pool.h"
#include "tronada/http/http_client_request.h"

namespace tronada {

/// Settings of one client.
struct AsyncHTTPClientOptions {
  /// Connections open at once over all hosts (Tornado's max_clients); fetches beyond it
  /// wait in a FIFO queue (bounded by max_queued) within their connect_timeout.
  std::size_t max_clients = 10;
  /// Connections per host; 0: max_clients.
  std::size_t max_per_host = 0;
  std::size_t max_queued = 1024;
  /// Kept-alive connections per host and how long they may sit unused.
  std::size_t max_idle_per_host = 10;
  Duration idle_timeout = std::chrono::seconds(60);
  std::size_t max_header_size = 64 * 1024;
  /// Default for HTTPRequest::max_body_size (Tornado's 100 MiB).
  std::size_t max_body_size = 100 * 1024 * 1024;
  std::string user_agent = "tronada";
};

/// Fetches URLs without blocking the loop.
///
///   HTTPResponse r = co_await AsyncHTTPClient::instance().fetch("http://example.com/");
///
/// Each fetch takes a connection from the pool (reusing a kept-alive one to the same
/// scheme, host and port when it can), sends the request, reads the response (chunked,
/// Content-Length or close-delimited; gzip inflated), follows redirects and gives the
/// connection back when the server keeps it alive. A kept-alive connection that the
/// server closed just before we reused it is retried once on a new connection, for
/// idempotent requests without a body producer.
///
/// Errors (the future's exception, or HTTPResponse::error in the callback form):
///   - HTTPClientError with the status for a response outside 2xx, when raise_error
///     (the default); its `response` is the response. Without raise_error such
///     responses are returned with `error` set.
///   - HTTPTimeoutError (599): request_timeout or connect_timeout passed.
///   - HTTPStreamClosedError (599): the server closed before the response was complete.
///   - HTTPClientError (599): a malformed response, a body over max_body_size, bad gzip.
///   - std::system_error from connecting (UV_ECONNREFUSED, UV_EAI_NONAME...),
///     SSLHandshakeError (certificate rejected), std::invalid_argument (a bad URL,
///     method or header), PoolFullError. These are raised whatever raise_error says,
///     as in Tornado.
///
/// Lifetime: the client owns its ConnectionPool; fetches in flight own their connection
/// and hold the pool weakly, so destroying the client (on the loop thread) fails queued
/// fetches, closes idle connections and lets running exchanges end on their own.
/// `instance()` clients live until `close_instance()`; call it before closing the loop.
class AsyncHTTPClient {
 public:
  explicit AsyncHTTPClient(AsyncHTTPClientOptions options = {}, IOLoop* loop = nullptr);
  ~AsyncHTTPClient();
  AsyncHTTPClient(const AsyncHTTPClient&) = delete;
  AsyncHTTPClient& operator=(const AsyncHTTPClient&) = delete;

  /// The shared client of `loop` (the current one by default), created on first use
  /// with default options, as Tornado's instance cache.
  static AsyncHTTPClient& instance(IOLoop* loop = nullptr);
  /// Destroys the shared client of `loop`, if any.
  static void close_instance(IOLoop* loop = nullptr);

  Future<HTTPResponse> fetch(HTTPRequest request, bool raise_error = true);
  Future<HTTPResponse> fetch(std::string url, bool raise_error = true);
  /// The callback form: `callback` always runs (from the loop) with the response; on
  /// failure its code is 599 (or the status) and `error` holds the exception.
  void fetch(HTTPRequest request, std::function<void(HTTPResponse)> callback);

  /// The pool, for callers that speak HTTP themselves on its connections (the proxy).
  ConnectionPool& pool() { return *pool_; }
  const AsyncHTTPClientOptions& options() const { return options_; }
  IOLoop& loop() { return *loop_; }

 private:
  IOLoop* loop_;
  AsyncHTTPClientOptions options_;
  std::unique_ptr<ConnectionPool> pool_;
  // Held by fetches weakly: tells them the client (and its pool) still exists.
  std::shared_ptr<AsyncHTTPClient*> alive_;
};

}  // namespace tronada
