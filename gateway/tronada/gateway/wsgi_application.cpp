#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "tronada/gateway/wsgi_application.h"

#include <atomic>

#include "tronada/base/log.h"
#include "tronada/gateway/wsgi_busy_clock.h"
#include "tronada/gateway/wsgi_call.h"
#include "tronada/gateway/wsgi_exchange.h"
#include "tronada/gateway/wsgi_interpreter.h"
#include "tronada/gateway/wsgi_worker_pool.h"
#include "tronada/metrics/shared_region.h"

namespace tronada {

namespace {
thread_local PythonThread* t_python = nullptr;
}  // namespace

WSGIApplication::WSGIApplication(WSGIOptions options) : options_(std::move(options)) {}

std::shared_ptr<WSGIApplication> WSGIApplication::load(std::string_view spec, WSGIOptions options) {
  PythonInterpreter::initialize(options.python_path);
  std::shared_ptr<WSGIApplication> self(new WSGIApplication(std::move(options)));
  self->spec_ = std::string(spec);
  {
    GILHolder gil;
    PyObject* app = load_wsgi_app(spec);  // throws WSGIAppError
    self->caller_ =
        std::make_unique<WSGICaller>(app, self->options_.threads > 1, self->options_.multiprocess);
    Py_DECREF(app);
  }
  // Each thread gets its own busy clock (0..threads-1) in the worker's status block.
  auto next_thread = std::make_shared<std::atomic<int>>(0);
  WorkerStatus* status = self->options_.worker_status;
  self->pool_ =
      std::make_unique<WSGIWorkerPool>(self->options_.threads, self->options_.max_queue,
                                       [next_thread, status](const std::function<void()>& run) {
                                         bind_busy_clock(status, next_thread->fetch_add(1));
                                         PythonThread python;
                                         t_python = &python;
                                         run();
                                         t_python = nullptr;
                                         bind_busy_clock(nullptr, -1);
                                       });
  return self;
}

WSGIApplication::~WSGIApplication() {
  stop();
  if (series_) series_->threads.fetch_sub(options_.threads, std::memory_order_relaxed);
}

void WSGIApplication::stop() {
  for (auto& weak : live_) {
    if (auto ex = weak.lock()) ex->connection_closed();
  }
  live_.clear();
  if (pool_) {
    pool_->stop();
    pool_.reset();
  }
  if (caller_ && PythonInterpreter::initialized()) {
    GILHolder gil;
    caller_.reset();
  }
}

metrics::WSGISeries* WSGIApplication::metrics_series() {
  // Looked up on the first request, not at load: a worker attaches to the metrics
  // region after it forked, and `tronada wsgi` may load the app before it does.
  if (series_looked_up_) return series_;
  metrics::SharedRegion* region = metrics::current();
  if (!region) return nullptr;
  series_looked_up_ = true;
  series_ = region->wsgi_series(spec_);
  // Several tables may share this app's series (a reload loads it again only when its
  // settings changed); the thread count is this app's.
  if (series_) series_->threads.fetch_add(options_.threads, std::memory_order_relaxed);
  return series_;
}

std::shared_ptr<WSGIExchange> WSGIApplication::start(
    const std::shared_ptr<HTTPServerRequest>& request, std::string_view script_name,
    std::function<void(int)> on_done) {
  IOLoop& loop = IOLoop::current();
  auto exchange = WSGIExchange::create(loop, request, options_.body_buffer, std::move(on_done));
  // The environ's strings are built here, in C++, so the worker never reads the request.
  auto environ = std::make_shared<WSGIEnviron>(
      build_wsgi_environ(*request, script_name, wsgi_server_info(*request, options_.server)));
  bool head = request->method == "HEAD";
  bool https = request->protocol == "https";
  WSGICaller* caller = caller_.get();
  std::chrono::milliseconds slow = options_.slow_queue;
  metrics::WSGISeries* series = metrics_series();
  constexpr auto relaxed = std::memory_order_relaxed;
  if (series) series->queued.fetch_add(1, relaxed);
  std::chrono::milliseconds max_wait = options_.max_wait;
  bool queued = pool_ && pool_->submit([exchange, environ, caller, head, https, slow, series,
                                        max_wait](Duration waited) mutable {
    if (series) {
      series->queued.fetch_sub(1, relaxed);
      series->record_wait(static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(waited).count()));
    }
    if (max_wait.count() > 0 && waited > max_wait) {
      // Its client has waited long enough: a quick 503 it can retry (elsewhere) beats
      // running the app for someone who may have given up. No Python, no GIL.
      log::warning("wsgi",
                   "request waited " +
                       std::to_string(
                           std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()) +
                       " ms for a free thread, over max_wait: 503");
      if (series) series->rejected.fetch_add(1, relaxed);
      WSGIResponseHead h;
      h.status = 503;
      std::string body = "503 Service Unavailable: all WSGI threads are busy\n";
      h.headers.add("Content-Type", "text/plain; charset=utf-8");
      h.headers.add("Retry-After", "1");
      h.headers.add("Content-Length", std::to_string(body.size()));
      exchange->finish(&h, head ? std::string() : std::move(body));
      environ.reset();
      WSGIExchange::complete(std::move(exchange));
      return;
    }
    if (series) series->busy.fetch_add(1, relaxed);
    if (waited > slow) {
      log::warning("wsgi",
                   "request waited " +
                       std::to_string(
                           std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()) +
                       " ms for a free thread; consider more --threads or workers");
    }
    t_python->acquire();
    if (!exchange->client_gone()) {
      BusyClock busy;
      caller->call(*environ, exchange->body(), head, https, *exchange);
    } else {
      exchange->abort();
    }
    // Python objects die here, under the GIL; the environ strings need no GIL.
    t_python->release();
    environ.reset();
    if (series) series->busy.fetch_sub(1, relaxed);
    WSGIExchange::complete(std::move(exchange));
  });
  if (live_.size() >= prune_at_) {
    std::erase_if(live_, [](const std::weak_ptr<WSGIExchange>& w) { return w.expired(); });
    prune_at_ = std::max<std::size_t>(64, live_.size() * 2);
  }
  live_.push_back(exchange);
  if (!queued) {
    if (series) {
      series->queued.fetch_sub(1, relaxed);
      series->rejected.fetch_add(1, relaxed);
    }
    log::warning("wsgi", "queue full (" + std::to_string(options_.max_queue) +
                             " requests waiting): 503 for " + request->method + " " + request->uri);
    exchange->reject(503, "1");
  }
  return exchange;
}

}  // namespace tronada
