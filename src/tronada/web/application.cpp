#include "tronada/web/application.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "tronada/async/spawn.h"
#include "tronada/base/log.h"
#include "tronada/http/options_asterisk.h"
#include "tronada/web/request_handler.h"
#include "tronada/web/response_transforms.h"
#include "tronada/web/static_file_handler.h"

namespace tronada {

namespace {

/// Answers 404 for paths no rule matches (Tornado's ErrorHandler).
class NotFoundHandler final : public RequestHandler {
 public:
  Task<void> prepare() override { throw HTTPError(404); }
};

/// Answers `OPTIONS *` for the server as a whole (RFC 9110 section 9.3.7), as
/// answer_options_asterisk() does, but as a handler so that it is logged like any request.
class OptionsAsteriskHandler final : public RequestHandler {
 public:
  Task<void> options() override {
    clear_header("Content-Type");
    set_header("Allow", kServerMethods);
    co_return;
  }
};

/// Shares a handler made by a factory; the control block comes from the per-thread pool,
/// as the handler itself does (RequestHandler is a PooledObject).
std::shared_ptr<RequestHandler> share_handler(std::unique_ptr<RequestHandler> h) {
  RequestHandler* raw = h.release();
  return std::shared_ptr<RequestHandler>(raw, std::default_delete<RequestHandler>(),
                                         detail::PoolAllocator<RequestHandler>());
}

template <typename H>
std::shared_ptr<RequestHandler> make_handler() {
  return std::allocate_shared<H>(detail::PoolAllocator<H>());
}

}  // namespace

/// Carries one request from the connection to its handler: body pieces in, then runs the
/// handler's task. The handler is shared between this delegate and the task, so either
/// may go first (a client that disconnects mid-handler, a handler that finishes before
/// the connection is done with the request).
/// Pooled like the handler: one is made and freed per request.
class HandlerRunner final : public HTTPMessageDelegate, public detail::PooledObject {
 public:
  explicit HandlerRunner(std::shared_ptr<RequestHandler> h) : handler_(std::move(h)) {}

  void data_received(std::string_view chunk) override {
    handler_->bytes_received_ += chunk.size();
    handler_->data_received(chunk);
  }
  void finish() override { spawn_logged(run(handler_), "request handler"); }
  void on_connection_close() override {
    handler_->connection_closed_ = true;
    IOLoop::invoke_logged("on_connection_close", [&] { handler_->on_connection_close(); });
    // A handler kept open for a callback that will never answer now: let its task end.
    if (handler_->finished_promise_) handler_->finished_promise_->try_set_result();
  }

 private:
  // The handler is a parameter, so it lives in the coroutine frame for the whole run.
  static Task<void> run(std::shared_ptr<RequestHandler> handler) {
    co_await handler->execute(handler);
  }
  std::shared_ptr<RequestHandler> handler_;
};

Application::Application(std::vector<Rule> rules, ApplicationSettings settings)
    : settings_(std::move(settings)) {
  if (!settings_.static_path.empty()) {
    StaticFileOptions options;
    options.root = settings_.static_path;
    auto files = std::make_shared<const StaticFiles>(options);
    router_.add(
        Rule(settings_.static_url_prefix + "(.*)", handler<StaticFileHandler>(files), "static"));
  }
  router_.add(std::move(rules));
}

Application::~Application() = default;

void Application::add_handlers(std::string_view host_pattern, std::vector<Rule> rules) {
  router_.add(std::move(rules), host_pattern);
}

HTTPServer& Application::listen(int port, const std::string& address, HTTPServerOptions options) {
  options.limits.max_body_bytes = settings_.max_body_size;
  auto server = std::make_unique<HTTPServer>(*this, std::move(options));
  server->listen(port, address);
  servers_.push_back(std::move(server));
  return *servers_.back();
}

RequestStart Application::start_request(const std::shared_ptr<HTTPServerRequest>& request) {
  std::shared_ptr<RequestHandler> h;
  auto found = router_.find(request->host_name, request->path);
  if (found) {
    h = share_handler(found->rule->factory()());
    h->metrics_ = found->rule->metrics();
    h->path_args_ = std::move(found->match.args);
    for (auto& [k, v] : found->match.kwargs) h->path_kwargs_.emplace(k, std::move(v));
  } else if (is_options_asterisk(*request)) {
    // No rule takes "*" (a WSGI app mounted at the root does): the server answers.
    h = make_handler<OptionsAsteriskHandler>();
  } else if (settings_.default_handler) {
    h = share_handler(settings_.default_handler());
  } else {
    h = make_handler<NotFoundHandler>();
  }
  return start_handler(request, std::move(h));
}

RequestStart Application::start_request_with(const std::shared_ptr<HTTPServerRequest>& request,
                                             const HandlerFactory& factory,
                                             metrics::RouteSeries* series) {
  auto h = share_handler(factory());
  h->metrics_ = series;
  return start_handler(request, std::move(h));
}

RequestStart Application::start_handler(const std::shared_ptr<HTTPServerRequest>& request,
                                        std::shared_ptr<RequestHandler> h) {
  h->request_ = request;
  h->application_ = this;
  // Room for a typical response's fields at once, not grown 1, 2, 4, 8 request by request.
  h->headers_.reserve(8);
  for (const auto& f : settings_.default_headers) h->headers_.add(f.name, f.value);
  if (!h->headers_.contains("Content-Type")) {
    h->headers_.add("Content-Type", "text/html; charset=UTF-8");
  }
  RequestStart start;
  start.stream_body = h->stream_request_body();
  if (auto limit = h->max_body_size()) start.max_body_size = *limit;
  start.delegate = std::make_unique<HandlerRunner>(std::move(h));
  return start;
}

const std::string& Application::template_source(std::string_view name) {
  auto it = templates_.find(std::string(name));
  if (it != templates_.end() && !settings_.debug) return it->second;
  if (name.find("..") != std::string_view::npos) {
    throw std::invalid_argument("template name must not contain '..'");
  }
  std::string path = settings_.template_path.empty()
                         ? std::string(name)
                         : settings_.template_path + "/" + std::string(name);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read template " + path);
  std::ostringstream text;
  text << in.rdbuf();
  auto& slot = templates_[std::string(name)];
  slot = text.str();
  return slot;
}

std::string Application::static_url(std::string_view path) const {
  std::string url = settings_.static_url_prefix + std::string(path);
  if (settings_.static_path.empty()) return url;
  auto it = static_hashes_.find(std::string(path));
  if (it == static_hashes_.end()) {
    // Hashing reads the file once per path per process, on first use; as Tornado does,
    // at the cost of one blocking read the first time a page names the file.
    std::ifstream in(settings_.static_path + "/" + std::string(path), std::ios::binary);
    std::string version;
    if (in) {
      std::ostringstream text;
      text << in.rdbuf();
      version = compute_etag(text.str()).substr(1, 12);
    }
    it = static_hashes_.emplace(std::string(path), version).first;
  }
  if (!it->second.empty()) url += "?v=" + it->second;
  return url;
}

}  // namespace tronada
