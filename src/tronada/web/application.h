// Application: a collection of rules and settings that serves requests by creating one
// handler per request (Tornado's tornado.web.Application).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "tronada/http/http_server.h"
#include "tronada/web/routing.h"

namespace tronada {

class RequestHandler;

/// Application settings, Tornado's names where they exist.
struct ApplicationSettings {
  /// Tracebacks in error pages; never in production.
  bool debug = false;
  /// Key for signed cookies and XSRF tokens. Required for get/set_signed_cookie.
  std::string cookie_secret;
  /// Check an XSRF token on every POST, PUT, PATCH and DELETE.
  bool xsrf_cookies = false;
  /// gzip responses when the client accepts it and the type is compressible.
  bool compress_response = false;
  /// Serve files from this directory under static_url_prefix (adds a rule first).
  std::string static_path;
  std::string static_url_prefix = "/static/";
  /// Where render() finds mustache templates.
  std::string template_path;
  /// Largest buffered request body (streaming handlers choose their own). nginx's 1 MiB.
  std::uint64_t max_body_size = 1024 * 1024;
  /// Headers every response starts with (a handler may change them).
  HTTPHeaders default_headers;
  /// Called once per finished request: the access log hook. The default logs one line
  /// per request at info level ("200 GET /path (127.0.0.1) 1.23ms").
  std::function<void(const RequestHandler&)> log_function;
  /// Handler for paths no rule matches; the default answers 404.
  HandlerFactory default_handler;
};

/// Routes requests to handlers. Use it as the delegate of an HTTPServer you build, or
/// call listen() to let it make one. The rules are also where the gateway mounts its
/// handlers (WSGI, FastCGI, proxy).
///
/// `OPTIONS *` (a request about the server, RFC 9110 section 9.3.7) goes to a rule whose
/// pattern matches the path "*"; without one the application answers it with 200 and
/// `Allow: GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS` (kServerMethods).
///
/// Lifetime: owns the servers listen() made; must outlive any server it is the delegate
/// of. Handlers are owned per request by the request's task.
class Application : public HTTPServerDelegate {
 public:
  explicit Application(std::vector<Rule> rules = {}, ApplicationSettings settings = {});
  ~Application() override;

  /// Adds rules for hosts matching `host_pattern` (a regex on the Host without port).
  void add_handlers(std::string_view host_pattern, std::vector<Rule> rules);
  void add_rule(Rule rule) { router_.add(std::move(rule)); }

  /// Starts an HTTPServer for this application on `port` (Tornado's listen). An empty
  /// address listens on every interface.
  HTTPServer& listen(int port, const std::string& address = "", HTTPServerOptions options = {});

  std::string reverse_url(std::string_view name, const std::vector<std::string>& args = {}) const {
    return router_.reverse_url(name, args);
  }
  /// URL of a static file with a content hash (?v=...) so it can be cached for long.
  std::string static_url(std::string_view path) const;

  const ApplicationSettings& settings() const { return settings_; }
  ApplicationSettings& settings() { return settings_; }
  const Router& router() const { return router_; }

  // HTTPServerDelegate
  RequestStart start_request(const std::shared_ptr<HTTPServerRequest>& request) override;

  /// Starts `request` with a handler from `factory` rather than the router's (Tornado's
  /// get_handler_delegate): for a front policy that answers by itself (a 429 from a rate
  /// limit, a CORS preflight), so those answers are logged and counted like any other.
  /// `series`: where the request is counted, or nullptr.
  RequestStart start_request_with(const std::shared_ptr<HTTPServerRequest>& request,
                                  const HandlerFactory& factory,
                                  metrics::RouteSeries* series = nullptr);

  /// Compiled template text by name (read once, then cached).
  const std::string& template_source(std::string_view name);

 private:
  RequestStart start_handler(const std::shared_ptr<HTTPServerRequest>& request,
                             std::shared_ptr<RequestHandler> handler);

  Router router_;
  ApplicationSettings settings_;
  std::vector<std::unique_ptr<HTTPServer>> servers_;
  std::unordered_map<std::string, std::string> templates_;
  mutable std::unordered_map<std::string, std::string> static_hashes_;
};

}  // namespace tronada
