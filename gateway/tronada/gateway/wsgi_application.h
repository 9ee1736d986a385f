// WSGIApplication: a loaded WSGI app with the worker threads that run it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tronada/gateway/wsgi_environ.h"
#include "tronada/http/http_server_request.h"

namespace tronada {

namespace metrics {
struct WSGISeries;
}  // namespace metrics

class WorkerStatus;
class WSGICaller;
class WSGIExchange;
class WSGIWorkerPool;

struct WSGIOptions {
  /// Threads running the app (each takes the GIL for its request).
  int threads = 1;
  /// Requests waiting for a thread before new ones get 503 with Retry-After.
  std::size_t max_queue = 1024;
  /// Prepended to sys.path, in order.
  std::vector<std::string> python_path;
  /// wsgi.multiprocess: true when several worker processes serve the app.
  bool multiprocess = false;
  /// Request body bytes buffered for the app before the socket is paused.
  std::size_t body_buffer = 1024 * 1024;
  /// Largest request body; 0 for none (the app decides, as with gunicorn).
  std::uint64_t max_body_size = 0;
  /// SERVER_NAME/PORT for requests whose connection cannot tell its local address
  /// (otherwise they name the socket the request arrived on).
  WSGIServerInfo server;
  /// A request that waited longer than this for a thread is logged as a warning.
  std::chrono::milliseconds slow_queue = std::chrono::milliseconds(1000);
  /// A request that waited longer than this for a thread gets 503 with Retry-After
  /// instead of running the app (FrankenPHP's max_wait_time); 0: it waits its turn.
  std::chrono::milliseconds max_wait{0};
  /// In a supervised worker: where each thread publishes when its current app call
  /// began (for --timeout) and counts requests (for --max-requests). Not owned.
  WorkerStatus* worker_status = nullptr;
};

/// An app loaded from MODULE:CALLABLE and the pool of threads that call it. The loop
/// thread never runs Python: handle() builds the CGI environ, queues the call, and the
/// response comes back through the request's WSGIExchange.
///
/// Lifetime: shared by every WSGIContainer mounted on it; stop() (or the destructor)
/// lets queued calls finish and joins the threads. Create and destroy it on the loop
/// thread of the server it serves.
class WSGIApplication {
 public:
  /// Starts Python if needed, imports the app and starts the threads. Throws
  /// WSGIAppError with the traceback when the app cannot be loaded.
  static std::shared_ptr<WSGIApplication> load(std::string_view spec, WSGIOptions options = {});
  ~WSGIApplication();
  WSGIApplication(const WSGIApplication&) = delete;
  WSGIApplication& operator=(const WSGIApplication&) = delete;

  const WSGIOptions& options() const { return options_; }
  /// Starts one request mounted under `script_name`. The body (if any) is fed through
  /// the returned exchange; `on_done(status)` runs on the loop when the response ended.
  std::shared_ptr<WSGIExchange> start(const std::shared_ptr<HTTPServerRequest>& request,
                                      std::string_view script_name,
                                      std::function<void(int status)> on_done);
  /// Aborts requests still in flight (their workers stop waiting on the client), lets
  /// the threads finish and joins them.
  void stop();

 private:
  explicit WSGIApplication(WSGIOptions options);
  /// Finds this app's metrics series (label: spec_) once this process has metrics.
  metrics::WSGISeries* metrics_series();

  WSGIOptions options_;
  std::string spec_;  // MODULE:CALLABLE as configured: the metrics label
  metrics::WSGISeries* series_ = nullptr;
  bool series_looked_up_ = false;
  std::unique_ptr<WSGICaller> caller_;
  std::unique_ptr<WSGIWorkerPool> pool_;
  // Requests started and perhaps not ended (loop thread only), so that stop() can
  // release workers blocked on a client that will never be served now.
  std::vector<std::weak_ptr<WSGIExchange>> live_;
  std::size_t prune_at_ = 64;
};

}  // namespace tronada
