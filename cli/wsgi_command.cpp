#include "cli/wsgi_command.h"

#include <CLI/CLI.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <system_error>

#include "cli/byte_size.h"
#include "cli/common_options.h"
#include "cli/config.h"
#include "cli/operations.h"
#include "cli/server_runner.h"
#include "tronada/gateway/wsgi_container.h"
#include "tronada/gateway/wsgi_interpreter.h"
#include "tronada/net/binary_upgrade.h"
#include "tronada/net/worker_supervisor.h"
#include "tronada/web/application.h"

namespace tronada::cli {

namespace {

struct WSGICommand {
  CommonOptions common;
  std::string spec;
  int workers = 1;
  int threads = 1;
  std::size_t max_queue = 1024;
  std::chrono::milliseconds max_wait{0};
  std::string chdir_to;
  std::vector<std::string> python_path;
  std::uint64_t max_requests = 0;
  std::uint64_t max_requests_jitter = 0;
  std::string max_memory_text;
  std::uint64_t max_memory = 0;
  int timeout = 30;

  // A master watches the workers whenever there is something to watch; `-w 1 --timeout
  // 0` alone runs the app in this one process (handy under a debugger).
  bool supervised() const {
    return workers > 1 || max_requests > 0 || max_memory > 0 || timeout > 0;
  }

  WSGIOptions wsgi_options() const {
    WSGIOptions o;
    o.threads = threads;
    o.max_queue = max_queue;
    o.max_wait = max_wait;
    o.python_path = python_path;
    o.multiprocess = workers > 1;
    // No limit by default: the app decides, as with gunicorn.
    o.max_body_size = common.max_body_size.value_or(0);
    auto binds = common.binds_or_default();
    if (!binds.empty() && binds.front().kind != BindAddress::Kind::unix_socket) {
      o.server.server_name = binds.front().host.empty() ? "0.0.0.0" : binds.front().host;
      o.server.server_port = std::to_string(binds.front().port);
    }
    return o;
  }

  // Loads the app in this process or exits 1 with the traceback, before anything binds.
  std::shared_ptr<WSGIApplication> load_or_exit(WorkerStatus* status = nullptr) const {
    try {
      WSGIOptions o = wsgi_options();
      o.worker_status = status;
      return WSGIApplication::load(spec, std::move(o));
    } catch (const WSGIAppError& e) {
      std::fprintf(stderr, "tronada: error: cannot load WSGI app %s: %s\n", spec.c_str(), e.what());
      std::fflush(stderr);
      std::_Exit(1);
    }
  }

  // With a master, the master never starts Python (each worker has its own
  // interpreter, started after fork), so a throwaway child checks that the app imports
  // before the master binds.
  void check_app_in_child() const {
    std::fflush(nullptr);
    pid_t pid = fork();
    if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
    if (pid == 0) {
      auto app = load_or_exit();
      std::_Exit(0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::exit(1);  // the child reported why
    }
  }

  void serve(HTTPServer& server, const std::shared_ptr<WSGIApplication>& app, ProcessRole role) {
    run_until_signalled(server, common, role);
    app->stop();
    PythonInterpreter::finalize();
  }

  HTTPServerOptions server_options() const {
    HTTPServerOptions options;
    options.limits.max_body_bytes = common.max_body_size.value_or(0);
    return options;
  }

  void run() {
    apply_logging(common);
    if (!chdir_to.empty() && ::chdir(chdir_to.c_str()) != 0) {
      throw std::runtime_error("--chdir " + chdir_to + ": " + std::strerror(errno));
    }
    if (!max_memory_text.empty()) {
      try {
        max_memory = parse_byte_size(max_memory_text);
      } catch (const std::invalid_argument& e) {
        throw std::runtime_error(std::string("--max-memory: ") + e.what());
      }
    }
    auto binds = common.binds_or_default();
    if (!supervised()) {
      auto app = load_or_exit();
      Operations ops(common.admin, 1);
      ops.attach_process();
      Application application({wsgi_rule("", app).set_metrics(route_metrics("/", "wsgi"))});
      HTTPServer server(application, server_options());
      listen_all(server, binds);
      ops.start_listener();
      log::info("wsgi", "serving " + spec + " with " + std::to_string(threads) + " thread(s)");
      serve(server, app, ProcessRole::single);
      return;
    }
    check_app_in_child();
    // The master answers the admin port from the workers' shared counters; it binds
    // before the workers start so a busy address stops everything.
    Operations ops(common.admin, workers);
    // Sockets handed over by a binary upgrade (or systemd) replace the binds; the master
    // hands these to a new binary on SIGUSR2.
    std::vector<int> fds = open_listening_sockets(binds);
    if (common.upgrade_timeout) upgrade::set_timeout(*common.upgrade_timeout);
    log::info("wsgi", "serving " + spec + " with " + std::to_string(workers) + " worker(s) of " +
                          std::to_string(threads) + " thread(s)");
    WorkerSupervisorOptions so;
    so.workers = workers;
    so.threads = threads;
    so.max_requests = max_requests;
    so.max_requests_jitter = max_requests_jitter;
    so.max_memory = max_memory;
    so.timeout = std::chrono::seconds(timeout);
    // SIGWINCH, as nginx's "shut workers down gracefully": SIGUSR1 is for log files.
    so.stop_accepting_signal = SIGWINCH;
    so.on_restart = ops.restart_counter();  // tronada_worker_restarts_total
    ops.start_listener();
    // The master never returns; each worker gets here with its status block.
    WorkerStatus status = WorkerSupervisor(so).run();
    ops.attach_process();
    auto app = load_or_exit(&status);
    Application application({wsgi_rule("", app).set_metrics(route_metrics("/", "wsgi"))});
    HTTPServer server(application, server_options());
    server.add_sockets(fds);
    // The master's first step of a graceful stop (then SIGTERM): see
    // WorkerSupervisorOptions::stop_accepting_signal.
    IOLoop::current().add_signal_handler(SIGWINCH, [&server] {
      report_draining();
      server.stop();
    });
    status.ready();
    log::info("wsgi", "worker " + std::to_string(status.id()) + " (pid " +
                          std::to_string(getpid()) + ") ready");
    // Started by a binary upgrade: the old master drains once a worker accepts here.
    upgrade::report_ready();
    serve(server, app, ProcessRole::worker);
  }
};

}  // namespace

void register_wsgi_command(CLI::App& app) {
  auto cmd = std::make_shared<WSGICommand>();
  CLI::App* sub =
      app.add_subcommand("wsgi", "Serve a WSGI app (Flask, Django, ...) from embedded Python");
  sub->add_option("MODULE:CALLABLE", cmd->spec,
                  "The app, e.g. myproject.wsgi:application or app:create_app()")
      ->required();
  sub->add_option("-w,--workers", cmd->workers,
                  "Worker processes, kept alive by a master that restarts dead ones")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  sub->add_option("--threads", cmd->threads, "Threads per worker running the app")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  sub->add_option("--max-queue", cmd->max_queue,
                  "Requests waiting for a thread before new ones get 503")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  sub->add_option_function<std::string>(
         "--max-wait",
         [cmd](const std::string& text) {
           try {
             cmd->max_wait = parse_duration(text);
           } catch (const std::invalid_argument& e) {
             throw CLI::ValidationError("--max-wait", e.what());
           }
         },
         "A request that waited longer than this for a thread gets 503 with Retry-After "
         "(e.g. 5s; default: none)")
      ->type_name("DURATION");
  sub->add_option("--max-requests", cmd->max_requests,
                  "Recycle a worker gracefully after about this many requests (0: never)")
      ->capture_default_str();
  sub->add_option("--max-requests-jitter", cmd->max_requests_jitter,
                  "Add a random 0..J to each worker's --max-requests so they do not recycle "
                  "together")
      ->capture_default_str();
  sub->add_option("--max-memory", cmd->max_memory_text,
                  "Recycle a worker gracefully once its RSS passes this size (256MiB)");
  sub->add_option("--timeout", cmd->timeout,
                  "Kill and replace a worker stuck in one request longer than this many "
                  "seconds (0: never)")
      ->capture_default_str()
      ->check(CLI::Range(0, 86400));
  sub->add_option("--chdir", cmd->chdir_to, "Change to this directory before loading the app")
      ->check(CLI::ExistingDirectory);
  sub->add_option("--pythonpath", cmd->python_path, "Directory to add to sys.path, repeatable")
      ->allow_extra_args(false);
  add_common_options(*sub, cmd->common);
  sub->callback([cmd] { cmd->run(); });
}

}  // namespace tronada::cli
