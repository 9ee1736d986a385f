#include "cli/route_table.h"

#include <stdexcept>

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cli/operations.h"
#include "tronada/gateway/fastcgi_handler.h"
#include "tronada/gateway/proxy_handler.h"
#include "tronada/gateway/wsgi_application.h"
#include "tronada/gateway/wsgi_container.h"
#include "tronada/web/redirect_handler.h"
#include "tronada/web/request_handler.h"
#include "tronada/web/routing.h"
#include "tronada/web/static_file_handler.h"
#include "tronada/web/static_files.h"

namespace tronada::cli {

namespace {

std::string regex_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

std::chrono::nanoseconds ns(std::chrono::milliseconds ms) {
  return ms;
}

}  // namespace

std::shared_ptr<ProxyRoute> make_proxy_route(const ProxyBackend& b, const RouteConfig& route,
                                             const ServerConfig& server) {
  ProxyOptions options;
  options.connect_timeout = ns(b.connect_timeout);
  options.read_timeout = ns(b.read_timeout);
  options.balance.policy = parse_balance_policy(b.policy);
  options.balance.max_fails = static_cast<std::size_t>(b.max_fails);
  options.balance.fail_timeout = ns(b.fail_timeout);
  options.health_uri = b.health_uri;
  options.health_interval = ns(b.health_interval);
  options.health_timeout = ns(b.health_timeout);
  options.headers.preserve_host = b.preserve_host;
  options.upstream_ca_file = b.ca_file;
  options.resolve_interval = ns(b.resolve_interval);
  options.resolver = b.resolver;
  options.metrics_route = route.host + route.path;
  if (options.metrics_route.empty()) options.metrics_route = "/";
  options.headers.trust_forwarded = server.xheaders;
  if (route.strip_prefix) options.headers.strip_prefix = route.path;
  if (server.max_body_size) options.max_body_size = *server.max_body_size;
  return std::make_shared<ProxyRoute>(b.to, std::move(options));
}

StaticFileOptions static_file_options(const StaticBackend& b) {
  StaticFileOptions options;
  options.root = b.root;
  options.index_files = {b.index};
  if (b.max_age) options.max_age = std::chrono::seconds(*b.max_age);
  options.precompressed = b.precompressed;
  if (b.cache_valid) options.cache_valid = *b.cache_valid;
  if (b.cache_entries) options.cache_entries = static_cast<std::size_t>(*b.cache_entries);
  if (b.cache_file_size) options.cache_file_size = static_cast<std::size_t>(*b.cache_file_size);
  if (b.cache_memory) options.cache_memory = static_cast<std::size_t>(*b.cache_memory);
  return options;
}

std::string prefix_pattern(const std::string& prefix) {
  if (!prefix.empty() && prefix.back() == '/') return regex_escape(prefix) + "(.*)";
  return regex_escape(prefix) + "(?:/(.*))?";
}

std::string host_pattern(const std::string& host) {
  if (host.empty()) return ".*";
  if (host.rfind("*.", 0) == 0) return "[^.]+" + regex_escape(host.substr(1));
  return regex_escape(host);
}

void RouteTable::add_policy(const RouteConfig& route, std::size_t index) {
  std::unique_ptr<RoutePolicy> policy;
  if (route.rate_limit || route.cors) {
    metrics::RouteSeries* series =
        route_metrics(route.host + route.path, backend_name(route.backend));
    std::shared_ptr<const CorsPolicy> cors;
    if (route.cors) cors = std::make_shared<const CorsPolicy>(*route.cors);
    std::shared_ptr<RateLimiter> limiter;
    if (route.rate_limit) {
      limiter = RateLimiter::create(*route.rate_limit, route.host + route.path, series);
    }
    policy = std::make_unique<RoutePolicy>(std::move(cors), std::move(limiter), series);
    any_policy_ = true;
  }
  policies_.push_back(std::move(policy));
  route_labels_.push_back(route.host + route.path);
  // The rule's name carries the route's index; its factory is never called.
  HandlerFactory unused = []() -> std::unique_ptr<RequestHandler> { return nullptr; };
  policy_router_.add(Rule(prefix_pattern(route.path), std::move(unused), std::to_string(index)),
                     host_pattern(route.host));
}

RequestStart RouteTable::start_request(const std::shared_ptr<HTTPServerRequest>& request) {
  if (any_policy_) {
    if (auto found = policy_router_.find(request->host_name, request->path)) {
      std::size_t index = std::stoul(found->rule->name());
      if (RoutePolicy* policy = policies_[index].get()) {
        return policy->start_request(*app_, request);
      }
    }
  }
  return app_->start_request(request);
}

std::string_view RouteTable::route_of(const HTTPServerRequest& request) const {
  if (auto found = policy_router_.find(request.host_name, request.path)) {
    std::size_t index = std::stoul(found->rule->name());
    if (index < route_labels_.size()) return route_labels_[index];
  }
  return {};
}

RouteTable::RouteTable(const Config& config, bool load_apps, const RouteTable* previous) {
  app_ = std::make_unique<Application>();
  for (const RouteConfig& route : config.routes) {
    try {
      add_policy(route, policies_.size());
    } catch (const std::exception& e) {
      throw ConfigError(route.where + ": [[route]] " + route.path + ": " + e.what());
    }
    HandlerFactory factory;
    try {
      if (auto* b = std::get_if<WSGIBackend>(&route.backend)) {
        if (!load_apps) continue;
        if (!b->chdir.empty() && ::chdir(b->chdir.c_str()) != 0) {
          throw std::runtime_error("cannot chdir to " + b->chdir + ": " + std::strerror(errno));
        }
        WSGIOptions options;
        options.threads = b->threads;
        options.max_wait = b->max_wait;
        options.python_path = b->pythonpath;
        options.multiprocess = config.server.workers > 1;
        if (config.server.max_body_size) options.max_body_size = *config.server.max_body_size;
        std::string key = b->app + '\n' + std::to_string(b->threads) + '\n' + b->chdir + '\n' +
                          std::to_string(b->max_wait.count());
        for (const std::string& p : b->pythonpath) key += '\n' + p;
        std::shared_ptr<WSGIApplication> app;
        if (previous) {
          auto it = previous->wsgi_apps_.find(key);
          if (it != previous->wsgi_apps_.end()) app = it->second;
        }
        if (!app) app = WSGIApplication::load(b->app, options);
        wsgi_apps_[key] = app;
        keep_.push_back(app);
        std::string prefix = route.path;
        while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
        app_->add_handlers(host_pattern(route.host),
                           {wsgi_rule(prefix, app)
                                .set_metrics(route_metrics(route.host + route.path,
                                                           backend_name(route.backend)))});
        continue;
      }
      if (auto* b = std::get_if<FastCGIBackend>(&route.backend)) {
        fastcgi::PoolOptions pool;
        pool.max_connections = b->max_connections;
        pool.connect_timeout = ns(b->connect_timeout);
        pool.read_timeout = ns(b->read_timeout);
        pool.max_wait = ns(b->max_wait);
        auto fcgi = make_fastcgi_config(b->root, b->to, pool);
        fcgi->index = b->index;
        fcgi->pool->resolve_every(ns(b->resolve_interval), b->resolver);
        // tronada_upstream_* as the proxy's: the route and the address as configured.
        std::string label = route.host + route.path;
        fcgi->pool->measure(label.empty() ? "/" : label, b->to);
        if (config.server.max_body_size) fcgi->max_body_size = *config.server.max_body_size;
        factory = handler<FastCGIHandler>(std::shared_ptr<const FastCGIConfig>(fcgi));
      } else if (auto* b = std::get_if<StaticBackend>(&route.backend)) {
        auto files = std::make_shared<const StaticFiles>(static_file_options(*b));
        factory = handler<StaticFileHandler>(files);
      } else if (auto* b = std::get_if<RedirectBackend>(&route.backend)) {
        factory = handler<RedirectHandler>(b->to, b->status);
      } else if (auto* b = std::get_if<ProxyBackend>(&route.backend)) {
        auto proxy = make_proxy_route(*b, route, config.server);
        if (previous) {
          for (const auto& old : previous->proxy_routes_) proxy->carry_state_from(*old);
        }
        proxy_routes_.push_back(proxy);
        factory = handler<ProxyHandler>(std::move(proxy));
      } else {
        throw std::runtime_error("the " + std::string(backend_name(route.backend)) +
                                 " backend is not built into this tronada yet");
      }
    } catch (const ConfigError&) {
      throw;
    } catch (const std::exception& e) {
      throw ConfigError(route.where + ": [[route]] " + route.path + ": " + e.what());
    }
    app_->add_handlers(
        host_pattern(route.host),
        {Rule(prefix_pattern(route.path), factory)
             .set_metrics(route_metrics(route.host + route.path, backend_name(route.backend)))});
  }
}

RouteTable::~RouteTable() = default;

}  // namespace tronada::cli
