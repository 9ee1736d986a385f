#include "cli/fastcgi_command.h"
#include "cli/operations.h"

#include <CLI/CLI.hpp>

#include <memory>

#include "cli/common_options.h"
#include "cli/config.h"
#include "cli/server_runner.h"
#include "tronada/gateway/fastcgi_handler.h"
#include "tronada/web/application.h"

namespace tronada::cli {

namespace {

struct FastCGICommand {
  CommonOptions common;
  std::string to;
  std::string root = ".";
  std::string index = "index.php";
  std::size_t max_conns = 5;
  double connect_timeout = 10;
  double read_timeout = 60;
  double idle_timeout = 10;
  std::chrono::milliseconds max_wait{0};
  bool no_keep_conn = false;

  void run() {
    apply_logging(common);
    fastcgi::PoolOptions pool;
    pool.max_connections = max_conns;
    pool.keep_conn = !no_keep_conn;
    pool.connect_timeout =
        std::chrono::duration_cast<Duration>(std::chrono::duration<double>(connect_timeout));
    pool.idle_timeout =
        std::chrono::duration_cast<Duration>(std::chrono::duration<double>(idle_timeout));
    pool.read_timeout =
        std::chrono::duration_cast<Duration>(std::chrono::duration<double>(read_timeout));
    pool.max_wait = max_wait;
    auto config = make_fastcgi_config(root, to, pool);  // throws for a bad root or address
    config->index = index;
    config->pool->measure("/", to);  // tronada_upstream_* with --admin
    auto binds = common.binds_or_default();
    if (!binds.empty() && binds.front().kind == BindAddress::Kind::tcp) {
      config->server_addr = binds.front().host.empty() ? "0.0.0.0" : binds.front().host;
      config->server_port = binds.front().port;
    }

    ApplicationSettings settings;
    // The responder decides about bodies (Caddy and php-fpm's post_max_size): no limit
    // unless asked.
    settings.max_body_size = common.max_body_size.value_or(0);
    config->max_body_size = settings.max_body_size;
    if (common.access_log && *common.access_log == "off") {
      settings.log_function = [](const RequestHandler&) {};
    }
    std::shared_ptr<const FastCGIConfig> shared = config;
    Operations ops(common.admin, 1);
    ops.attach_process();
    Rule rule("/.*", handler<FastCGIHandler>(shared));
    rule.set_metrics(route_metrics("/", "fastcgi"));
    Application app({std::move(rule)}, std::move(settings));
    HTTPServerOptions options;
    options.limits.max_body_bytes = app.settings().max_body_size;
    HTTPServer server(app, options);
    listen_all(server, binds);
    log::info("fastcgi",
              "serving " + config->root + " through " + config->pool->address().to_string());
    ops.start_listener();
    run_until_signalled(server, common, ProcessRole::single);
  }
};

}  // namespace

void register_fastcgi_command(CLI::App& app) {
  auto cmd = std::make_shared<FastCGICommand>();
  CLI::App* sub = app.add_subcommand(
      "fastcgi", "Serve a PHP site through a FastCGI responder (php-fpm), as Caddy's php_fastcgi");
  sub->add_option("--to", cmd->to, "Responder address: unix:PATH or HOST:PORT")
      ->required()
      ->check(bind_address_validator());
  sub->add_option("--root", cmd->root, "Document root")
      ->capture_default_str()
      ->check(CLI::ExistingDirectory);
  sub->add_option("--index", cmd->index, "Directory index and front controller")
      ->capture_default_str();
  sub->add_option("--max-conns", cmd->max_conns,
                  "Most connections to the responder: at most php-fpm's pm.max_children, since "
                  "each child serves one kept-alive connection at a time")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--connect-timeout", cmd->connect_timeout,
                  "Seconds to connect or wait for a connection")
      ->capture_default_str();
  sub->add_option("--read-timeout", cmd->read_timeout,
                  "Seconds to wait for the responder's next bytes")
      ->capture_default_str();
  sub->add_option_function<std::string>(
         "--max-wait",
         [cmd](const std::string& text) {
           try {
             cmd->max_wait = parse_duration(text);
           } catch (const std::invalid_argument& e) {
             throw CLI::ValidationError("--max-wait", e.what());
           }
         },
         "A request that waited longer than this for a connection gets 503 (e.g. 2s; "
         "default: --connect-timeout bounds the wait, then 504)")
      ->type_name("DURATION");
  sub->add_option("--idle-timeout", cmd->idle_timeout,
                  "Seconds before an idle kept-alive connection is closed")
      ->capture_default_str();
  sub->add_flag("--no-keep-conn", cmd->no_keep_conn,
                "One connection per request (no FCGI_KEEP_CONN)");
  add_common_options(*sub, cmd->common);
  sub->callback([cmd] { cmd->run(); });
}

}  // namespace tronada::cli
