#include "tronada/gateway/fastcgi_handler.h"

#include <cstdlib>
#include <deque>
#include <stdexcept>
#include <system_error>

#include "tronada/async/detail/pool_allocator.h"
#include "tronada/async/event.h"
#include "tronada/async/spawn.h"
#include "tronada/async/with_timeout.h"
#include "tronada/base/error.h"
#include "tronada/base/log.h"
#include "tronada/gateway/cgi_response.h"
#include "tronada/http/http_client_request.h"
#include "tronada/http/http_connection.h"
#include "tronada/http/url_codec.h"
#include "tronada/metrics/shared_region.h"
#include "tronada/net/iostream.h"

namespace tronada {

using fastcgi::Lease;

namespace {

constexpr std::uint16_t kRequestId = 1;
constexpr std::string_view kServerSoftware = "tronada/" TRONADA_VERSION;
// A body kept for a retry on a fresh connection at most this big; larger ones that hit
// a connection the responder closed get 502 (rare: the idle check catches most).
constexpr std::size_t kMaxRetainedBody = 1024 * 1024;
constexpr int kMaxAttempts = 3;
constexpr int kMaxLocalRedirects = 10;

std::string cgi_header_name(std::string_view name) {
  std::string out = "HTTP_";
  for (char c : name) {
    if (c == '-') {
      out += '_';
    } else if (c >= 'a' && c <= 'z') {
      out += static_cast<char>(c - 'a' + 'A');
    } else {
      out += c;
    }
  }
  return out;
}

/// A normalised (decoded) path as a URL path again, for redirects and StaticFiles.
std::string encode_path(std::string_view path) {
  return url_encode(path, "/!$&'()*+,;=:@");
}

/// How a failed try at the responder ended, for tronada_upstream_requests_total.
metrics::UpstreamOutcome failure_outcome(const std::exception_ptr& error, bool connected) {
  try {
    std::rethrow_exception(error);
  } catch (const fastcgi::PoolOverloadedError&) {
    return metrics::UpstreamOutcome::rejected;
  } catch (const fastcgi::PoolTimeoutError&) {
    return metrics::UpstreamOutcome::timeout;
  } catch (const TimeoutError&) {
    return metrics::UpstreamOutcome::timeout;
  } catch (...) {
  }
  return connected ? metrics::UpstreamOutcome::error : metrics::UpstreamOutcome::connect_error;
}

template <typename Connection>
void pause_client(Connection& c) {
  if constexpr (requires { c.pause_reading(); }) c.pause_reading();
}
template <typename Connection>
void resume_client(Connection& c) {
  if constexpr (requires { c.resume_reading(); }) c.resume_reading();
}

/// Collects a response's FCGI_STDOUT bytes and logs FCGI_STDERR.
class Sink final : public fastcgi::ResponseHandler {
 public:
  explicit Sink(std::string backend) : backend_(std::move(backend)) {}
  void on_stdout(std::string_view data) override { out.append(data); }
  void on_stderr(std::string_view data) override {
    // One log entry per line, as nginx's "FastCGI sent in stderr".
    while (!data.empty()) {
      std::size_t nl = data.find('\n');
      std::string_view line = data.substr(0, nl);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (!line.empty()) log::warning("fastcgi", backend_ + " stderr: " + std::string(line));
      if (nl == std::string_view::npos) break;
      data.remove_prefix(nl + 1);
    }
  }
  void on_end_request(std::uint32_t app_status, fastcgi::ProtocolStatus status) override {
    if (status != fastcgi::ProtocolStatus::request_complete) {
      throw fastcgi::ProtocolError("FastCGI request rejected with protocol status " +
                                   std::to_string(static_cast<int>(status)));
    }
    (void)app_status;
  }
  std::string out;

 private:
  std::string backend_;
};

}  // namespace

/// One request's conversation with the responder, shared by the handler and the task
/// that writes the request: the handler may be gone (client disconnected mid-body)
/// while the task still finishes or fails.
struct FastCGIHandler::Exchange {
  std::shared_ptr<const FastCGIConfig> config;
  std::shared_ptr<HTTPServerRequest> request;
  std::string params;   // the PARAMS stream, encoded once (each try sends it)
  std::string pending;  // body bytes received, not yet written to the responder
  bool body_complete = false;
  bool aborted = false;
  bool failed = false;  // writing the request failed: further body bytes are dropped
  bool client_paused = false;
  Event more;
  std::string retained;  // the body as sent, while a retry is still possible
  bool retain = true;
  Lease lease;
  bool reused = false;               // the last attempt's connection had served a request before
  bool connected = false;            // the last attempt got a connection
  std::uint64_t try_started_ns = 0;  // when the last attempt began (metrics clock)
  Promise<void> sent;                // params and the whole body written (or failed)

  /// Keeps body bytes for a retry while the body stays under kMaxRetainedBody.
  void keep_for_retry(std::string_view bytes) {
    if (!retain) return;
    retained.append(bytes);
    if (retained.size() > kMaxRetainedBody) {
      retain = false;
      std::string().swap(retained);
    }
  }

  void release(bool reusable) {
    if (lease.stream) config->pool->release(std::move(lease.stream), reusable);
    lease = {};
  }
};

namespace {

/// Writes BEGIN_REQUEST, PARAMS and the body (as it arrives) to a pooled connection.
Task<void> send_request(std::shared_ptr<FastCGIHandler::Exchange> ex) {
  ex->connected = false;
  ex->try_started_ns = metrics::monotonic_ns();
  try {
    ex->lease = co_await ex->config->pool->acquire();
    ex->reused = ex->lease.reused;
    ex->connected = true;
    if (metrics::UpstreamSeries* series = ex->config->pool->series()) {
      series->record_connect(metrics::monotonic_ns() - ex->try_started_ns);
    }
    const auto& options = ex->config->pool->options();
    std::string head;
    fastcgi::append_begin_request(head, kRequestId, fastcgi::Role::responder, options.keep_conn);
    head.append(ex->params);
    for (;;) {
      if (ex->aborted) throw StreamClosedError();
      if (ex->pending.empty() && !ex->body_complete) {
        if (!head.empty()) {
          Future<void> w = ex->lease.stream->write(std::move(head));
          head.clear();
          co_await with_timeout(options.read_timeout, std::move(w));
        }
        ex->more.clear();
        co_await ex->more.wait();
        continue;
      }
      std::string chunk;
      chunk.swap(ex->pending);
      if (ex->client_paused && ex->request && ex->request->connection) {
        ex->client_paused = false;
        resume_client(*ex->request->connection);
      }
      if (!chunk.empty()) {
        ex->keep_for_retry(chunk);
        fastcgi::append_stream(head, fastcgi::RecordType::stdin_, kRequestId, chunk);
      }
      bool last = ex->body_complete && ex->pending.empty();
      if (last) fastcgi::append_stream(head, fastcgi::RecordType::stdin_, kRequestId, "");
      Future<void> w = ex->lease.stream->write(std::move(head));
      head.clear();
      // A responder that stops reading our body is as stuck as one that stops writing.
      co_await with_timeout(options.read_timeout, std::move(w));
      if (last) break;
    }
    ex->sent.set_result();
  } catch (...) {
    // The connection is in an unknown state; nobody else may be left to return it.
    ex->release(false);
    // The rest of the body is dropped as it arrives, so the request can end and be
    // answered with the error; a paused client must flow again for that.
    ex->failed = true;
    ex->keep_for_retry(ex->pending);
    std::string().swap(ex->pending);
    if (ex->client_paused && ex->request && ex->request->connection) {
      ex->client_paused = false;
      resume_client(*ex->request->connection);
    }
    ex->sent.set_exception(std::current_exception());
  }
}

}  // namespace

std::shared_ptr<FastCGIConfig> make_fastcgi_config(std::string root, std::string_view address,
                                                   fastcgi::PoolOptions pool_options) {
  auto config = std::make_shared<FastCGIConfig>();
  StaticFileOptions sopts;
  sopts.root = root;
  sopts.index_files = {"index.html"};
  std::shared_ptr<StaticFiles> files;
  try {
    files = std::make_shared<StaticFiles>(sopts);  // checks the root
  } catch (const std::runtime_error&) {
    // StaticFiles says "static root": name what the user set, the document root.
    throw std::runtime_error("document root " + root +
                             " does not exist or is not a readable directory");
  }
  config->root = files->real_root();
  config->static_files = std::move(files);
  config->pool = std::make_shared<fastcgi::Pool>(fastcgi::Address::parse(address), pool_options);
  config->resolver = std::make_shared<FastCGIResolver>();
  return config;
}

FastCGIHandler::FastCGIHandler() = default;
FastCGIHandler::~FastCGIHandler() {
  if (exchange_ && !exchange_->body_complete) {
    exchange_->aborted = true;
    exchange_->more.set();
  }
}

void FastCGIHandler::initialize(std::shared_ptr<const FastCGIConfig> config) {
  config_ = std::move(config);
}

std::optional<std::uint64_t> FastCGIHandler::max_body_size() const {
  return config_->max_body_size;
}

void FastCGIHandler::on_connection_close() {
  if (exchange_) {
    exchange_->aborted = true;
    exchange_->more.set();
  }
}

void FastCGIHandler::write_error(int status, std::exception_ptr error) {
  // As WSGI's max_wait 503: the client (or a balancer in front) may retry shortly.
  if (status == 503 && pool_refused_) set_header("Retry-After", "1");
  RequestHandler::write_error(status, error);
}

void FastCGIHandler::start_exchange() {
  // From the per-thread pool, as the proxy's exchanges: one per request in flight.
  auto ex = std::allocate_shared<Exchange>(detail::PoolAllocator<Exchange>());
  ex->config = config_;
  ex->request = shared_request();
  const HTTPServerRequest& req = request();
  const FastCGITarget& t = *target_;
  // Views of the request's, the target's and the config's strings, encoded into one
  // PARAMS stream before this returns; only what is computed here is owned, in `made`,
  // whose strings stay where they are as it grows (a deque). A vector of owned pairs cost
  // a PHP request a dozen allocations.
  fastcgi::NameValueViews p;
  std::deque<std::string> made;
  auto own = [&made](std::string text) -> std::string_view {
    return made.emplace_back(std::move(text));
  };
  auto content_length = req.headers.get("Content-Length");
  p.reserve(32 + req.headers.size());
  p.emplace_back("SCRIPT_FILENAME", t.script_filename);
  p.emplace_back("QUERY_STRING", req.query);
  p.emplace_back("REQUEST_METHOD", req.method);
  p.emplace_back("CONTENT_TYPE", req.headers.get("Content-Type").value_or(""));
  p.emplace_back("CONTENT_LENGTH", content_length.value_or(""));
  p.emplace_back("SCRIPT_NAME", t.script_name);
  p.emplace_back("REQUEST_URI", req.uri);
  p.emplace_back("DOCUMENT_URI", t.path_info.empty() ? std::string_view(t.script_name)
                                                     : own(t.script_name + t.path_info));
  p.emplace_back("DOCUMENT_ROOT", config_->root);
  p.emplace_back("SERVER_PROTOCOL", req.version);
  p.emplace_back("REQUEST_SCHEME", req.protocol);
  if (req.protocol == "https") p.emplace_back("HTTPS", "on");
  p.emplace_back("GATEWAY_INTERFACE", "CGI/1.1");
  p.emplace_back("SERVER_SOFTWARE", kServerSoftware);
  p.emplace_back("REMOTE_ADDR", req.remote_ip);
  p.emplace_back("REMOTE_PORT", own(std::to_string(req.remote_port)));
  p.emplace_back("SERVER_ADDR", config_->server_addr);
  int port = config_->server_port;
  if (std::size_t colon = req.host.rfind(':');
      colon != std::string::npos && req.host.find(']', colon) == std::string::npos) {
    port = std::atoi(req.host.c_str() + colon + 1);
  }
  p.emplace_back("SERVER_PORT", own(std::to_string(port)));
  p.emplace_back("SERVER_NAME", req.host_name);
  p.emplace_back("REDIRECT_STATUS", "200");
  p.emplace_back("PATH_INFO", t.path_info);
  if (!t.path_info.empty()) p.emplace_back("PATH_TRANSLATED", own(config_->root + t.path_info));
  for (const auto& [name, value] : config_->env) p.emplace_back(name, value);
  for (const auto& field : req.headers) {
    // As nginx (underscores_in_headers off): a name with '_' could pose as another
    // header once dashes become underscores. Proxy is httpoxy's vector.
    if (field.name.find('_') != std::string::npos || detail::iequals(field.name, "Proxy")) {
      continue;
    }
    std::string name = cgi_header_name(field.name);
    bool merged = false;
    for (auto& [n, v] : p) {
      if (n == name) {
        std::string joined(v);
        joined += detail::iequals(field.name, "Cookie") ? "; " : ", ";
        joined += field.value;
        v = own(std::move(joined));
        merged = true;
        break;
      }
    }
    if (!merged) p.emplace_back(own(std::move(name)), field.value);
  }
  if (!content_length) {
    // The body is here whole (spooled, or none): its length is known now. p[4] is
    // CONTENT_LENGTH, empty without a body as nginx sends it.
    if (!spool_.empty()) {
      p[4].second = own(std::to_string(spool_.size()));
      ex->pending = std::move(spool_);
      spool_.clear();
    }
    ex->body_complete = true;
  }
  fastcgi::append_params(ex->params, kRequestId, p);
  exchange_ = std::move(ex);
  spawn_logged(send_request(exchange_), "fastcgi request");
}

Future<FastCGITarget> FastCGIHandler::resolve(std::string_view url_path) {
  if (config_->resolver) return config_->resolver->resolve(config_, url_path);
  FastCGIResolver uncached(FastCGIResolver::Options{.ttl = Duration::zero()});
  return uncached.resolve(config_, url_path);
}

void FastCGIHandler::data_received(std::string_view chunk) {
  if (target_) return take_body(chunk);
  // Where the body goes is being found off the loop: hold it until then, pausing a
  // client that sends more than body_buffer meanwhile.
  early_body_.append(chunk);
  if (!early_paused_ && early_body_.size() > config_->body_buffer) {
    early_paused_ = true;
    pause_client(*request().connection);
  }
  if (resolving_.valid()) return;
  resolving_ = resolve(request().path);
  std::weak_ptr<bool> alive = alive_;
  resolving_.add_done_callback([this, alive] {
    if (!alive.expired()) target_found(resolving_.result());
  });
}

void FastCGIHandler::target_found(FastCGITarget target) {
  if (target_) return;
  target_ = std::move(target);
  std::string body;
  body.swap(early_body_);
  if (!body.empty()) take_body(body);
  if (early_paused_) {
    early_paused_ = false;
    // An exchange that holds more than it may keeps the pause and lifts it itself.
    if (!exchange_ || !exchange_->client_paused) resume_client(*request().connection);
  }
}

void FastCGIHandler::take_body(std::string_view chunk) {
  if (target_->kind != FastCGITarget::Kind::script) return;  // static: the body is unused
  bool has_length = request().headers.contains("Content-Length");
  if (!exchange_) {
    if (has_length) {
      start_exchange();
    } else {
      // php-fpm needs CONTENT_LENGTH: a chunked body is gathered first.
      if (spooled_too_large_) return;
      if (spool_.size() + chunk.size() > config_->max_spooled_body) {
        spooled_too_large_ = true;
        std::string().swap(spool_);
        return;
      }
      spool_.append(chunk);
      return;
    }
  }
  Exchange& ex = *exchange_;
  if (ex.failed) {
    ex.keep_for_retry(chunk);  // a retry resends the whole body, if it is small
    return;
  }
  ex.pending.append(chunk);
  ex.more.set();
  if (!ex.client_paused && ex.pending.size() > config_->body_buffer) {
    ex.client_paused = true;
    pause_client(*request().connection);
  }
}

Task<void> FastCGIHandler::serve_static() {
  // The normalised path: "/a/../b.html" is "/b.html", as the routing decided.
  std::uint64_t sent = 0;
  int status =
      co_await config_->static_files->serve(shared_request(), encode_path(target_->path), &sent);
  complete_elsewhere(status, sent);
}

Task<void> FastCGIHandler::serve() {
  if (!target_) {
    if (!resolving_.valid()) resolving_ = resolve(request().path);
    Future<FastCGITarget> resolving = resolving_;
    FastCGITarget found = co_await resolving;
    target_found(std::move(found));  // unless the body's callback came first
  }
  switch (target_->kind) {
    case FastCGITarget::Kind::bad_request:
      // nginx answers 400 too: a malformed escape, a NUL, a ".." above the root.
      throw HTTPError(400, "malformed or escaping path " + request().path);
    case FastCGITarget::Kind::not_found:
      throw HTTPError(404);
    case FastCGITarget::Kind::redirect_slash: {
      // Caddy's canonical path: 308 keeps the method and body.
      std::string to = encode_path(target_->path) + "/";
      if (!request().query.empty()) to += "?" + request().query;
      redirect(to, false, 308);
      co_return;
    }
    case FastCGITarget::Kind::file:
      co_await serve_static();
      co_return;
    case FastCGITarget::Kind::script:
      break;
  }
  co_await run_script(kMaxLocalRedirects);
}

Task<void> FastCGIHandler::run_script(int redirects_left) {
  if (spooled_too_large_) throw HTTPError(413, "chunked request body over the spool limit");
  if (!exchange_) start_exchange();
  std::shared_ptr<Exchange> ex = exchange_;
  ex->body_complete = true;
  ex->more.set();
  const std::string backend = config_->pool->address().to_string();
  const auto& options = config_->pool->options();
  metrics::UpstreamSeries* series = config_->pool->series();

  for (int attempt = 1;; ++attempt) {
    std::exception_ptr error;
    try {
      Future<void> sent = ex->sent.get_future();
      co_await sent;
    } catch (...) {
      error = std::current_exception();
    }

    bool retry = false;
    bool answered = false;  // the whole FastCGI response came back (a try's end)
    bool response_started = false;
    bool headers_sent = false;
    std::optional<CGIResponse> redirect_to;
    if (!error) {
      std::shared_ptr<IOStream> stream = ex->lease.stream;
      Sink sink(backend);
      fastcgi::ResponseParser parser(kRequestId, sink);
      CGIResponseParser cgi;
      try {
        while (!parser.complete()) {
          if (request().connection->closed()) throw StreamClosedError();
          Future<std::string> pending = stream->read_bytes(64 * 1024, true);
          std::string chunk;
          std::exception_ptr read_error;
          try {
            chunk = co_await with_timeout(options.read_timeout, std::move(pending));
          } catch (const StreamClosedError&) {
            read_error = std::current_exception();
          }
          if (read_error) parser.feed_eof();  // throws unless complete
          parser.feed(chunk);
          response_started = response_started || parser.started();
          if (!cgi.done() && !sink.out.empty()) {
            std::size_t used = cgi.feed(sink.out);
            sink.out.erase(0, used);
            if (cgi.done()) {
              CGIResponse& r = cgi.response();
              if (r.kind == CGIResponse::Kind::local_redirect) {
                redirect_to = std::move(r);
                sink.out.clear();
                continue;
              }
              response_headers().clear();
              set_status(r.status);
              for (const auto& f : r.headers) add_header(f.name, f.value);
            }
          }
          if (redirect_to) {
            sink.out.clear();
            continue;
          }
          if (cgi.done() && !parser.complete()) {
            // More is coming: stream what we have (PHP's flush()), with backpressure.
            write(sink.out);
            sink.out.clear();
            headers_sent = true;
            Future<void> drained = flush();
            co_await drained;
          }
        }
        answered = true;
        if (series) {
          series->record_try(metrics::UpstreamOutcome::response);
          series->record_response(metrics::monotonic_ns() - ex->try_started_ns);
        }
        cgi.finish();
        ex->release(parser.clean());
      } catch (...) {
        error = std::current_exception();
      }
      if (!error && !redirect_to) {
        // Nothing else is buffered: every earlier piece went out with a flush().
        std::size_t length = sink.out.size();
        write(sink.out);
        if (!headers_sent) {
          response_headers().remove("Content-Length");
          response_headers().set("Content-Length", std::to_string(length));
          // flush() rather than finish() alone: finish() would add an ETag (and answer
          // 304s) that the script did not ask for. Its drain is not awaited: finishing
          // needs no room in the client's buffer.
          (void)flush();
        }
        finish();
        co_return;
      }
    }

    if (!error && redirect_to) {
      ex->release(true);
      if (redirects_left <= 0) throw HTTPError(502, "too many CGI local redirects");
      // RFC 3875 6.2.2: the server serves the new location instead, as a GET.
      std::string location = redirect_to->location;
      std::size_t q = location.find('?');
      std::string path = location.substr(0, q);
      Future<FastCGITarget> resolving = resolve(path);
      target_ = co_await resolving;
      if (target_->kind != FastCGITarget::Kind::script) throw HTTPError(404);
      request().method = "GET";
      request().path = path;
      request().query = q == std::string::npos ? "" : location.substr(q + 1);
      request().headers.remove("Content-Length");
      request().headers.remove("Content-Type");
      exchange_.reset();
      co_await run_script(redirects_left - 1);
      co_return;
    }

    // Failed. Retry a request the responder never saw answered on a connection it may
    // have closed while recycling (php-fpm's pm.max_requests). Only an idempotent one:
    // the same symptoms (EOF on a reused connection, nothing read) come from a child
    // that died while running the script, and running a POST twice is worse than a 502.
    // Go's http.Transport draws the same line once the request was written.
    bool reused = ex->reused;
    ex->release(false);
    bool stream_closed = false;
    try {
      std::rethrow_exception(error);
    } catch (const StreamClosedError&) {
      stream_closed = true;
    } catch (const fastcgi::ProtocolError&) {
      stream_closed = !response_started;
    } catch (...) {
    }
    if (stream_closed && reused && !response_started && ex->retain && !ex->aborted &&
        attempt < kMaxAttempts && is_idempotent_method(request().method)) {
      retry = true;
    }
    bool client_left = request().connection->closed() || ex->aborted;
    if (series && retry) {
      // Like the proxy's stale-connection retry, the failed attempt is not a try of its
      // own; the retry is counted.
      series->retries.fetch_add(1, std::memory_order_relaxed);
    } else if (series && !answered && !client_left) {
      series->record_try(failure_outcome(error, ex->connected));
    }
    if (retry) {
      log::info("fastcgi", backend + ": kept-alive connection closed, retrying");
      ex->pending = std::move(ex->retained);
      ex->retained.clear();
      ex->sent = Promise<void>();
      ex->failed = false;
      spawn_logged(send_request(ex), "fastcgi request");
      continue;
    }
    if (client_left) co_return;  // the client left; nothing to answer
    std::string what;
    int status = 502;
    try {
      std::rethrow_exception(error);
    } catch (const fastcgi::PoolOverloadedError& e) {
      status = 503;
      pool_refused_ = true;
      what = e.what();
    } catch (const fastcgi::PoolTimeoutError& e) {
      status = 504;
      what = e.what();
    } catch (const TimeoutError& e) {
      status = 504;
      what = std::string("timed out: ") + e.what();
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
      what = "unknown error";
    }
    std::string message = "FastCGI backend " + backend + ": " + what;
    if (headers_sent || headers_written()) {
      log::error("fastcgi", message + " (after the response began; closing the connection)");
      send_error(status);
      co_return;
    }
    throw HTTPError(status, message);
  }
}

}  // namespace tronada
