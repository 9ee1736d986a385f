#include "cli/proxy_command.h"

#include <CLI/CLI.hpp>

#include <memory>

#include "cli/common_options.h"
#include "cli/operations.h"
#include "cli/route_table.h"
#include "cli/server_runner.h"
#include "tronada/gateway/dns_resolver.h"
#include "tronada/gateway/proxy_handler.h"
#include "tronada/web/application.h"

namespace tronada::cli {

namespace {

std::chrono::milliseconds seconds(double s) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::duration<double>(s));
}

struct ProxyCommand {
  CommonOptions common;
  std::vector<std::string> to;
  std::string policy = "round_robin";
  double connect_timeout = 10;
  double read_timeout = 60;
  std::int64_t max_fails = 1;
  double fail_timeout = 10;
  std::string health_uri;
  double health_interval = 10;
  double health_timeout = 0;
  bool upstream_host = false;
  std::string upstream_ca;
  bool xheaders = false;
  double resolve_interval = 0;
  std::string resolver;

  void run() {
    apply_logging(common);
    ProxyBackend backend;
    backend.to = to;
    backend.policy = policy;
    backend.connect_timeout = seconds(connect_timeout);
    backend.read_timeout = seconds(read_timeout);
    backend.max_fails = max_fails;
    backend.fail_timeout = seconds(fail_timeout);
    backend.health_uri = health_uri;
    backend.health_interval = seconds(health_interval);
    backend.health_timeout = seconds(health_timeout);
    backend.preserve_host = !upstream_host;
    backend.ca_file = upstream_ca;
    backend.resolve_interval = seconds(resolve_interval);
    backend.resolver = resolver;
    RouteConfig route;
    ServerConfig server;
    server.xheaders = xheaders;
    // Upstreams decide about bodies, as with Caddy's reverse_proxy: no limit unless asked.
    server.max_body_size = common.max_body_size.value_or(0);
    auto proxy = make_proxy_route(backend, route, server);

    ApplicationSettings settings;
    settings.max_body_size = *server.max_body_size;
    if (common.access_log && *common.access_log == "off") {
      settings.log_function = [](const RequestHandler&) {};
    }
    Operations ops(common.admin, 1);
    ops.attach_process();
    Rule rule("/.*", handler<ProxyHandler>(proxy));
    rule.set_metrics(route_metrics("/", "proxy"));
    Application app({std::move(rule)}, std::move(settings));
    HTTPServerOptions options;
    options.limits.max_body_bytes = app.settings().max_body_size;
    options.xheaders = xheaders;
    HTTPServer server_(app, options);
    listen_all(server_, common.binds_or_default());
    std::string list;
    for (const auto& u : to) list += (list.empty() ? "" : ", ") + u;
    log::info("proxy", "proxying to " + list + " (" + policy + ")");
    ops.start_listener();
    run_until_signalled(server_, common, ProcessRole::single);
  }
};

}  // namespace

void register_proxy_command(CLI::App& app) {
  auto cmd = std::make_shared<ProxyCommand>();
  CLI::App* sub = app.add_subcommand(
      "proxy", "Reverse-proxy to HTTP upstreams, as nginx's proxy_pass and Caddy's reverse_proxy");
  sub->add_option("--to", cmd->to,
                  "Upstream URL (http://HOST:PORT[/PREFIX], https://..., unix:PATH); repeat for "
                  "several")
      ->required()
      ->check(parse_validator([](const std::string& url) { parse_upstream(url); }, "URL"));
  sub->add_option("--policy", cmd->policy, "How requests spread: round_robin or least_conn")
      ->capture_default_str()
      ->check(CLI::IsMember({"round_robin", "least_conn"}));
  sub->add_option("--connect-timeout", cmd->connect_timeout, "Seconds to connect to an upstream")
      ->capture_default_str();
  sub->add_option("--read-timeout", cmd->read_timeout,
                  "Seconds to wait for an upstream's next bytes (504 after)")
      ->capture_default_str();
  sub->add_option("--max-fails", cmd->max_fails,
                  "Failures within --fail-timeout that mark an upstream down (0: never)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--fail-timeout", cmd->fail_timeout,
                  "Seconds an upstream stays down after --max-fails failures")
      ->capture_default_str();
  sub->add_option("--health-uri", cmd->health_uri,
                  "Path to GET on each upstream every --health-interval (active health checks)");
  sub->add_option("--health-interval", cmd->health_interval, "Seconds between health checks")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--health-timeout", cmd->health_timeout,
                  "Seconds a health check may take before the upstream counts as down (0: the "
                  "smaller of 5 and --health-interval)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  sub->add_flag("--upstream-host", cmd->upstream_host,
                "Send the upstream's own host in Host, not the client's");
  sub->add_option("--upstream-ca", cmd->upstream_ca,
                  "CA certificates (PEM) that https:// upstreams are verified against, instead "
                  "of the system's")
      ->check(CLI::ExistingFile);
  sub->add_option("--resolve-interval", cmd->resolve_interval,
                  "Seconds between DNS lookups of upstream host names (their TTL may make it "
                  "sooner); each address joins the group, vanished ones are drained. 0: resolve "
                  "at each connect")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--resolver", cmd->resolver,
                  "DNS servers for --resolve-interval lookups (IP[:PORT][,...]); default: "
                  "/etc/resolv.conf")
      ->check(parse_validator(
          [](const std::string& servers) { DnsResolver::validate_servers(servers); },
          "IP[:PORT],..."));
  sub->add_flag("--xheaders", cmd->xheaders,
                "Trust X-Forwarded-For/-Proto from clients (behind another proxy)");
  add_common_options(*sub, cmd->common);
  sub->callback([cmd] { cmd->run(); });
}

}  // namespace tronada::cli
