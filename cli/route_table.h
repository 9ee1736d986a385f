// Turns a config's [[route]] list into an Application whose rules send each request to
// its backend: static files, redirects, WSGI apps, FastCGI responders, HTTP upstreams.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cli/config.h"
#include "cli/route_policy.h"
#include "tronada/gateway/proxy_handler.h"
#include "tronada/web/application.h"
#include "tronada/web/static_files.h"

namespace tronada {
class WSGIApplication;
}  // namespace tronada

namespace tronada::cli {

/// The regex a route's path prefix becomes: "/static/" matches everything below it;
/// "/app" matches "/app" and "/app/..." but not "/apple". The one group is the rest of
/// the path after the prefix (without its leading '/').
std::string prefix_pattern(const std::string& prefix);
/// The host regex for a route's host: exact ("example.com") or "*.example.com" for one
/// label below the domain; empty matches any host.
std::string host_pattern(const std::string& host);

/// The StaticFiles settings a [route.static] table describes (also used by `tronada
/// static`, whose flags fill the same table).
StaticFileOptions static_file_options(const StaticBackend& backend);

/// The proxy route a [route.proxy] table describes (also used by `tronada proxy`).
std::shared_ptr<ProxyRoute> make_proxy_route(const ProxyBackend& backend, const RouteConfig& route,
                                             const ServerConfig& server);

/// The Application for one config, with every backend a route names.
///
/// Lifetime: owns the application and the backends' shared state (static roots, the
/// interpreter of a WSGI app, upstream pools); handlers borrow them per request, so it
/// must outlive the server that uses the application.
class RouteTable {
 public:
  /// Throws ConfigError naming the route (file:line:column) when a backend cannot be
  /// set up: a missing static root, an app that does not import... With `load_apps`
  /// false, WSGI routes are left out (a parent that forks workers must not start Python).
  ///
  /// `previous` (a config reload): WSGI apps it loaded with the same settings are shared
  /// rather than loaded again, since Python imports a module once per process anyway;
  /// proxy upstreams with the same URL (and address) keep their health and failure
  /// marks, so a host found down stays out after the reload until it recovers.
  explicit RouteTable(const Config& config, bool load_apps = true,
                      const RouteTable* previous = nullptr);
  ~RouteTable();

  Application& application() { return *app_; }

  /// Starts a request: through its route's policies (rate_limit, cors) when it has any,
  /// else straight to the application.
  RequestStart start_request(const std::shared_ptr<HTTPServerRequest>& request);

  /// The route that serves `request` (its host + path in the config, as metrics label
  /// it), or empty when none matches. A regex match: for the JSON access log only.
  std::string_view route_of(const HTTPServerRequest& request) const;

 private:
  void add_policy(const RouteConfig& route, std::size_t index);

  std::unique_ptr<Application> app_;
  std::vector<std::shared_ptr<void>> keep_;  // the backends' shared state
  // WSGI apps by their settings, for a reload to reuse.
  std::map<std::string, std::shared_ptr<WSGIApplication>> wsgi_apps_;
  // The proxy routes, for a reload to carry their upstreams' state.
  std::vector<std::shared_ptr<ProxyRoute>> proxy_routes_;
  // Policies by route, found with the same host and path patterns in the same order as
  // the application's rules, so a request meets the policy of the route that serves it.
  // Empty when no route has one: then requests pay nothing for the feature.
  std::vector<std::unique_ptr<RoutePolicy>> policies_;  // per route; null: none
  Router policy_router_;
  std::vector<std::string> route_labels_;  // per route, host + path
  bool any_policy_ = false;
};

}  // namespace tronada::cli
