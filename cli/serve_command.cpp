#include "cli/serve_command.h"

#include <unistd.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

#include "cli/access_log.h"
#include "cli/route_table.h"
#include "cli/server_runner.h"
#include "tronada/base/log.h"
#include "tronada/loop/io_loop.h"
#include "tronada/net/bind_sockets.h"
#include "tronada/net/process.h"
#include "tronada/net/systemd.h"
#include "tronada/web/application.h"

namespace tronada::cli {

namespace fs = std::filesystem;

std::string find_config_file(const CommonOptions& flags) {
  if (flags.config_file) return *flags.config_file;
  for (const char* candidate : {"tronada.toml", "/etc/tronada/tronada.toml"}) {
    if (fs::exists(candidate)) return candidate;
  }
  throw ConfigError(
      "no config file: pass -c FILE, or put tronada.toml in the current folder "
      "(or /etc/tronada/tronada.toml)");
}

namespace {

std::string relative_to(const fs::path& base, const std::string& path) {
  if (path.empty() || fs::path(path).is_absolute()) return path;
  return (base / path).lexically_normal().string();
}

void resolve_paths(Config& config) {
  fs::path base = fs::absolute(config.file).parent_path();
  for (RouteConfig& route : config.routes) {
    if (auto* b = std::get_if<StaticBackend>(&route.backend)) {
      b->root = relative_to(base, b->root);
    } else if (auto* b = std::get_if<FastCGIBackend>(&route.backend)) {
      b->root = relative_to(base, b->root);
      if (b->to.rfind("unix:", 0) == 0) b->to = "unix:" + relative_to(base, b->to.substr(5));
    } else if (auto* b = std::get_if<WSGIBackend>(&route.backend)) {
      b->chdir = relative_to(base, b->chdir.empty() ? "." : b->chdir);
      for (std::string& p : b->pythonpath) p = relative_to(base, p);
    }
  }
  ServerConfig& s = config.server;
  if (s.access_log != "-" && s.access_log != "off") s.access_log = relative_to(base, s.access_log);
  if (s.error_log != "-") s.error_log = relative_to(base, s.error_log);
  if (s.tls) {
    s.tls->cert_file = relative_to(base, s.tls->cert_file);
    s.tls->key_file = relative_to(base, s.tls->key_file);
  }
}

}  // namespace

Config effective_config(const CommonOptions& flags) {
  Config config = load_config(find_config_file(flags));
  resolve_paths(config);
  ServerConfig& s = config.server;
  if (!flags.binds.empty()) s.binds = flags.binds;
  if (flags.max_body_size) s.max_body_size = flags.max_body_size;
  if (flags.access_log) s.access_log = *flags.access_log;
  if (flags.log_level) s.log_level = flags.log_level;
  if (flags.log_format) s.log_format = flags.log_format;
  if (s.binds.empty()) s.binds.push_back(parse_bind_address(kDefaultBind));
  return config;
}

// Opens every listening socket before anything else, so a busy port stops the program
// with a message before it forks or serves.
std::vector<int> bind_all(const std::vector<BindAddress>& binds) {
  std::vector<int> fds;
  for (const BindAddress& b : binds) {
    if (b.kind == BindAddress::Kind::unix_socket) {
      fds.push_back(bind_unix_socket(b.path, 0660));
    } else {
      for (int fd : bind_sockets(b.port, b.host)) fds.push_back(fd);
    }
    log::info("server", "listening on " + b.to_string());
  }
  return fds;
}

namespace {

HTTPServerOptions server_options(const ServerConfig& s) {
  HTTPServerOptions o;
  o.limits.max_header_bytes = s.max_header_size;
  // The whole request may be streamed to a gateway; each route sets its own limit.
  o.limits.max_body_bytes = s.max_body_size.value_or(0);
  o.idle_timeout = s.idle_timeout;
  o.header_timeout = s.header_timeout;
  o.body_timeout = s.body_timeout;
  o.write_timeout = s.write_timeout;
  o.max_connections = s.max_connections;
  o.xheaders = s.xheaders;
  return o;
}

SSLServerConfig ssl_config(const TLSConfig& tls) {
  SSLServerConfig config;
  config.cert_file = tls.cert_file;
  config.key_file = tls.key_file;
  return config;
}

std::FILE* open_error_log(const std::string& target) {
  if (target == "-") return stderr;
  std::FILE* f = std::fopen(target.c_str(), "a");
  if (!f) throw ConfigError("cannot open error log " + target);
  std::setvbuf(f, nullptr, _IOLBF, 0);
  return f;
}

void serve(const Config& config) {
  const ServerConfig& s = config.server;
  if (s.log_level) log::set_level(*s.log_level);
  if (s.log_format) log::set_format(*s.log_format);
  std::FILE* error_log = open_error_log(s.error_log);
  log::set_sink(error_log);

  // Everything that can fail on a bad config is built before binding, so the error
  // comes before a port is taken. Workers build their own after the fork; the parent
  // then checks all but the WSGI apps, since Python must start in each worker.
  if (s.access_log != "off") AccessLog::check_writable(s.access_log);
  if (s.tls) {
    // Loaded again by the server after the fork; this only makes a bad pair fail here.
    SSLContext::server(ssl_config(*s.tls));
  }
  std::unique_ptr<RouteTable> routes;
  if (s.workers > 1) {
    RouteTable check(config, false);
  } else {
    routes = std::make_unique<RouteTable>(config);
  }
  // Sockets from systemd (socket activation) or `tronada run` replace the binds: they
  // were opened by whoever started us and stay open across our restarts.
  std::vector<int> fds = systemd_listen_fds();
  if (fds.empty()) {
    fds = bind_all(s.binds);
  } else {
    log::info("server", "serving " + std::to_string(fds.size()) + " inherited socket(s)");
  }
  if (s.workers > 1) {
    fork_processes(s.workers);
    routes = std::make_unique<RouteTable>(config);
  }

  IOLoop& loop = IOLoop::current();
  std::unique_ptr<AccessLog> access_log;
  if (s.access_log != "off") {
    access_log = std::make_unique<AccessLog>(loop, s.access_log, s.access_log_format);
  }
  Application& app = routes->application();
  if (access_log) {
    app.settings().log_function = [log = access_log.get()](const RequestHandler& h) {
      log->log(h);
    };
  } else {
    app.settings().log_function = [](const RequestHandler&) {};
  }

  HTTPServer server(app, server_options(s));
  if (s.tls) {
    server.set_ssl_config(ssl_config(*s.tls));
  }
  server.add_sockets(fds);

  // logrotate moves the files and sends SIGUSR1 (as for nginx): reopen by name.
  loop.add_signal_handler(SIGUSR1, [&] {
    if (access_log) access_log->reopen();
    if (error_log != stderr) {
      if (std::FILE* f = std::freopen(s.error_log.c_str(), "a", error_log)) {
        error_log = f;
        std::setvbuf(f, nullptr, _IOLBF, 0);
      }
    }
    log::info("server", "log files reopened");
  });
  log::info("server",
            "serving " + std::to_string(config.routes.size()) + " route(s) from " + config.file);
  // Type=notify units wait for this (with workers, each worker sends it; the unit says
  // NotifyAccess=all).
  systemd_notify("READY=1");
  run_until_signalled(server, std::chrono::duration_cast<std::chrono::seconds>(s.shutdown_timeout));
  loop.remove_signal_handler(SIGUSR1);
  access_log.reset();
}

struct ServeCommand {
  CommonOptions common;
  std::optional<int> workers;
  void run() {
    apply_logging(common);
    Config config = effective_config(common);
    if (workers) config.server.workers = *workers;
    serve(config);
  }
};

struct CheckCommand {
  CommonOptions common;
  bool quiet = false;
  void run() {
    Config config = effective_config(common);
    RouteTable check(config);  // the backends' own checks: roots exist, apps named...
    if (!quiet) std::cout << format_config(config);
    std::cerr << "tronada: the configuration file " << config.file << " is ok\n";
  }
};

}  // namespace

void register_serve_command(CLI::App& app) {
  auto cmd = std::make_shared<ServeCommand>();
  CLI::App* sub = app.add_subcommand(
      "serve",
      "Run the server a TOML config describes (routes to static files, WSGI apps,\n"
      "FastCGI responders, HTTP upstreams and redirects)");
  sub->add_option("-w,--workers", cmd->workers, "Worker processes (overrides the config)")
      ->check(CLI::Range(1, 1024));
  add_common_options(*sub, cmd->common);
  sub->callback([cmd] { cmd->run(); });
}

void register_check_command(CLI::App& app) {
  auto cmd = std::make_shared<CheckCommand>();
  CLI::App* sub = app.add_subcommand(
      "check", "Validate a config file and print the effective configuration (like nginx -t)");
  sub->add_flag("-q,--quiet", cmd->quiet, "Only report errors");
  add_common_options(*sub, cmd->common);
  sub->callback([cmd] { cmd->run(); });
}

}  // namespace tronada::cli
