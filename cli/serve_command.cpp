#include "cli/serve_command.h"

#include <signal.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>

#include "cli/access_log.h"
#include "cli/operations.h"
#include "cli/route_table.h"
#include "cli/server_runner.h"
#include "tronada/base/log.h"
#include "tronada/loop/io_loop.h"
#include "tronada/loop/periodic_callback.h"
#include "tronada/net/binary_upgrade.h"
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
    s.tls->client_ca = relative_to(base, s.tls->client_ca);
    for (auto& [name, files] : s.tls->sni) {
      files.first = relative_to(base, files.first);
      files.second = relative_to(base, files.second);
    }
  }
}

// The TLS flags override the file's [server.tls] piece by piece: --certfile/--keyfile the
// default pair, --sni-cert the whole SNI list, --client-ca the CA file.
void apply_tls_flags(const CommonOptions& flags, ServerConfig& s) {
  if (flags.certfile.has_value() != flags.keyfile.has_value()) {
    throw ConfigError(flags.certfile ? "--certfile needs --keyfile" : "--keyfile needs --certfile");
  }
  if (!flags.any_tls()) return;
  if (flags.certfile) {
    if (!s.tls) s.tls.emplace();
    s.tls->cert_file = *flags.certfile;
    s.tls->key_file = *flags.keyfile;
  }
  if (!s.tls) {
    throw ConfigError(std::string(flags.client_ca ? "--client-ca" : "--sni-cert") +
                      " needs a default certificate: --certfile and --keyfile, or [server.tls]");
  }
  if (!flags.sni_certs.empty()) {
    s.tls->sni.clear();
    for (const auto& [name, files] : flags.sni_certs) {
      s.tls->sni[name] = {files.cert_file, files.key_file};
    }
  }
  if (flags.client_ca) s.tls->client_ca = *flags.client_ca;
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
  if (flags.no_http2) s.http2 = false;
  if (flags.admin) s.admin = flags.admin;
  if (flags.drain_delay) s.drain_delay = *flags.drain_delay;
  if (flags.upgrade_timeout) s.upgrade_timeout = *flags.upgrade_timeout;
  if (s.admin) {
    for (const BindAddress& b : s.binds) {
      if (b.to_string() == s.admin->to_string()) {
        throw ConfigError("admin address " + s.admin->to_string() + " is also a public bind");
      }
    }
  }
  apply_tls_flags(flags, s);
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
      for (int fd : bind_sockets(b.port, b.host, kHTTPListener)) fds.push_back(fd);
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
  for (const auto& [name, files] : tls.sni) {
    config.sni_certificates[name] = {files.first, files.second};
  }
  config.client_ca_file = tls.client_ca;
  return config;
}

bool same_tls(const TLSConfig& a, const TLSConfig& b) {
  return a.cert_file == b.cert_file && a.key_file == b.key_file && a.sni == b.sni &&
         a.client_ca == b.client_ca;
}

/// A request's connection, seen through the route table that took the request: the table
/// lives as long as any request (and so any handler, which holds its request) that
/// started on it, so a reload swaps tables under new requests only.
class PinnedConnection final : public HTTPConnection {
 public:
  PinnedConnection(std::shared_ptr<HTTPConnection> inner, std::shared_ptr<RouteTable> table)
      : inner_(std::move(inner)), table_(std::move(table)) {}
  ~PinnedConnection() override {
    // The last request of an old table may end deep inside one of its backends' own
    // callbacks; the table is destroyed from a fresh loop callback instead.
    if (table_.use_count() == 1) IOLoop::current().add_callback([t = std::move(table_)] {});
  }
  void write_headers(int status, const HTTPHeaders& headers) override {
    inner_->write_headers(status, headers);
  }
  void write_headers_with_reason(int status, std::string_view reason,
                                 const HTTPHeaders& headers) override {
    inner_->write_headers_with_reason(status, reason, headers);
  }
  void write_response_with_reason(int status, std::string_view reason, const HTTPHeaders& headers,
                                  std::string_view body) override {
    inner_->write_response_with_reason(status, reason, headers, body);
  }
  std::pair<std::string, int> local_address() const override { return inner_->local_address(); }
  void write(std::string_view chunk) override { inner_->write(chunk); }
  void finish() override { inner_->finish(); }
  void abort() override { inner_->abort(); }
  Future<void> drain() override { return inner_->drain(); }
  bool closed() const override { return inner_->closed(); }
  void set_close_callback(std::function<void()> cb) override {
    inner_->set_close_callback(std::move(cb));
  }
  DetachedConnection detach() override { return inner_->detach(); }
  void pause_reading() override { inner_->pause_reading(); }
  void resume_reading() override { inner_->resume_reading(); }
  void write_response(int status, const HTTPHeaders& headers, std::string_view body) override {
    inner_->write_response(status, headers, body);
  }
  void write_head(int status, std::span<const HeaderRef> fields) override {
    inner_->write_head(status, fields);
  }
  void write_whole_response(int status, std::span<const HeaderRef> fields,
                            std::string_view body) override {
    inner_->write_whole_response(status, fields, body);
  }
  bool can_write_file() const override { return inner_->can_write_file(); }
  void write_file(FileRegion region) override { inner_->write_file(std::move(region)); }

 private:
  std::shared_ptr<HTTPConnection> inner_;
  std::shared_ptr<RouteTable> table_;
};

/// The server's delegate in `serve`: hands each request to the current route table,
/// which SIGHUP may replace.
class LiveRoutes final : public HTTPServerDelegate {
 public:
  explicit LiveRoutes(std::shared_ptr<RouteTable> table) : table_(std::move(table)) {}
  void swap(std::shared_ptr<RouteTable> table) { table_ = std::move(table); }
  const std::shared_ptr<RouteTable>& current() const { return table_; }

  RequestStart start_request(const std::shared_ptr<HTTPServerRequest>& request) override {
    request->connection =
        std::make_shared<PinnedConnection>(std::move(request->connection), table_);
    return table_->start_request(request);
  }

 private:
  std::shared_ptr<RouteTable> table_;
};

void attach_access_log(RouteTable& routes, AccessLog* access_log) {
  Application& app = routes.application();
  if (access_log) {
    if (access_log->route_wanted()) {
      // The table owns the application that holds this function: it outlives it.
      app.settings().log_function = [access_log, table = &routes](const RequestHandler& h) {
        access_log->log(h, table->route_of(h.request()));
      };
    } else {
      app.settings().log_function = [access_log](const RequestHandler& h) { access_log->log(h); };
    }
  } else {
    app.settings().log_function = [](const RequestHandler&) {};
  }
}

std::FILE* open_error_log(const std::string& target) {
  if (target == "-") return stderr;
  std::FILE* f = std::fopen(target.c_str(), "a");
  if (!f) throw ConfigError("cannot open error log " + target);
  std::setvbuf(f, nullptr, _IOLBF, 0);
  return f;
}

void serve_impl(const Config& config, const std::function<Config()>& reread) {
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
  // Metrics and the admin port, before the routes that count into them; with workers
  // the master answers the admin port, each worker writes its own slot.
  Operations ops(s.admin, s.workers);
  if (s.workers == 1) ops.attach_process();
  std::shared_ptr<RouteTable> routes;
  if (s.workers > 1) {
    // The check's FastCGI pools and health checks attach to a loop. Give them one of
    // their own, closed before the fork: a loop made here would be inherited by every
    // worker, one epoll and one wakeup eventfd shared by all of them.
    IOLoop check_loop;
    check_loop.make_current();
    RouteTable check(config, false);
  } else {
    routes = std::make_shared<RouteTable>(config);
  }
  // Sockets from systemd (socket activation) or `tronada run` replace the binds: they
  // were opened by whoever started us and stay open across our restarts.
  std::vector<int> fds = systemd_listen_fds();
  if (fds.empty()) {
    fds = bind_all(s.binds);
  } else {
    log::info("server", "serving " + std::to_string(fds.size()) + " inherited socket(s)");
  }
  ops.start_listener();
  // A master (workers > 1) hands these to a new binary on SIGUSR2.
  upgrade::set_listen_sockets(fds);
  upgrade::set_timeout(s.upgrade_timeout);
  if (s.workers > 1) {
    fork_processes(s.workers, 100, ops.restart_counter());
    ops.attach_process();
    routes = std::make_shared<RouteTable>(config);
  }

  IOLoop& loop = IOLoop::current();
  std::unique_ptr<AccessLog> access_log;
  if (s.access_log != "off") {
    access_log = std::make_unique<AccessLog>(loop, s.access_log, s.access_log_format);
  }
  attach_access_log(*routes, access_log.get());
  LiveRoutes live(routes);
  routes.reset();

  HTTPServer server(live, server_options(s));
  if (!s.http2) server.disable_http2();
  if (s.tls) {
    server.set_ssl_config(ssl_config(*s.tls));
  }
  server.add_sockets(fds);

  // SIGHUP: read the file again and swap the route table for new requests, all or
  // nothing; what only a restart can change is logged as such.
  Config current = config;
  auto reload = [&] {
    Config next;
    std::shared_ptr<RouteTable> table;
    std::shared_ptr<SSLContext> ssl;
    try {
      next = reread();
      table = std::make_shared<RouteTable>(next, true, live.current().get());
      if (next.server.tls && current.server.tls &&
          !same_tls(*next.server.tls, *current.server.tls)) {
        SSLServerConfig c = ssl_config(*next.server.tls);
        if (server.http2_enabled()) c.alpn_protocols.push_back("h2");
        c.alpn_protocols.push_back("http/1.1");
        ssl = SSLContext::server(std::move(c));
      }
    } catch (const std::exception& e) {
      log::error("server",
                 std::string("config reload failed, keeping the old configuration: ") + e.what());
      return;
    }
    auto restart_needed = [](const std::string& what) {
      log::warning("server", what + " changed: restart tronada to apply it (not reloaded)");
    };
    const ServerConfig& n = next.server;
    const ServerConfig& o = current.server;
    std::vector<std::string> nb, ob;
    for (const BindAddress& b : n.binds) nb.push_back(b.to_string());
    for (const BindAddress& b : o.binds) ob.push_back(b.to_string());
    if (nb != ob) restart_needed("the listen addresses (bind)");
    if (n.workers != o.workers) restart_needed("workers");
    if (n.tls.has_value() != o.tls.has_value()) restart_needed("TLS on/off ([server.tls])");
    if (n.http2 != o.http2) restart_needed("http2");
    if (n.access_log != o.access_log || n.access_log_format != o.access_log_format ||
        n.error_log != o.error_log) {
      restart_needed("the log files");
    }
    attach_access_log(*table, access_log.get());
    live.swap(std::move(table));
    if (ssl) {
      server.set_ssl_context(std::move(ssl));
      log::info("server", "TLS certificates replaced (new files in [server.tls])");
    } else {
      reload_certificates(server);
    }
    // Keep what is not reloaded as it was, so the next reload compares with what runs.
    next.server.binds = o.binds;
    next.server.workers = o.workers;
    next.server.http2 = o.http2;
    if (!ssl) next.server.tls = o.tls;
    next.server.access_log = o.access_log;
    next.server.access_log_format = o.access_log_format;
    next.server.error_log = o.error_log;
    current = std::move(next);
    log::info("server", "configuration reloaded: " + std::to_string(current.routes.size()) +
                            " route(s) from " + current.file);
  };

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
  // Started by a binary upgrade: the old master drains once one process accepts here.
  upgrade::report_ready();
  // Without workers this process is the master: SIGUSR2 starts a new binary.
  std::optional<UpgradeOnSignal> upgrade_on_signal;
  if (s.workers == 1) upgrade_on_signal.emplace(s.upgrade_timeout);
  run_until_signalled(server, s.shutdown_timeout, reload, s.drain_delay);
  upgrade_on_signal.reset();
  loop.remove_signal_handler(SIGUSR1);
  access_log.reset();
}

struct ServeCommand {
  CommonOptions common;
  std::optional<int> workers;

  Config read() const {
    Config config = effective_config(common);
    if (workers) config.server.workers = *workers;
    return config;
  }
  void run() {
    apply_logging(common);
    serve_impl(read(), [this] { return read(); });
  }
};

struct CheckCommand {
  CommonOptions common;
  bool quiet = false;
  void run() {
    Config config = effective_config(common);
    RouteTable check(config);  // the backends' own checks: roots exist, apps named...
    if (config.server.tls) SSLContext::server(ssl_config(*config.server.tls));
    if (!quiet) std::cout << format_config(config);
    std::cerr << "tronada: the configuration file " << config.file << " is ok\n";
  }
};

}  // namespace

void register_serve_command(CLI::App& app) {
  auto cmd = std::make_shared<ServeCommand>();
  cmd->common.tls_in_config = true;
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
  cmd->common.tls_in_config = true;
  CLI::App* sub = app.add_subcommand(
      "check", "Validate a config file and print the effective configuration (like nginx -t)");
  sub->add_flag("-q,--quiet", cmd->quiet, "Only report errors");
  add_common_options(*sub, cmd->common);
  sub->callback([cmd] { cmd->run(); });
}

}  // namespace tronada::cli
