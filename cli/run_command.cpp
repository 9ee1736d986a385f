// How `tronada run` works (the supervisor, like Tornado's autoreload and `flask run
// --reload`, but across a build):
//
//   1. read DIR/tronada.toml; [app] means a native app to build and start, otherwise the
//      app is the config itself, run as `tronada serve -c DIR/tronada.toml`;
//   2. bind the [server] addresses (or -b) here, once;
//   3. build (cmake configure once, then cmake --build, output shown as it comes);
//   4. start the program with the sockets as fds 3, 4, ... (LISTEN_FDS);
//   5. with --reload, watch the sources; after an edit, build again and, only if that
//      succeeds, stop the old process and start the new one. The sockets stay open
//      here throughout, so connections made during a restart wait in the listen queue
//      instead of being refused, and a broken edit leaves the old process serving.
//
// Signals are taken with signalfd next to the inotify descriptor in one poll() loop; no
// IOLoop runs in this process (it only forks, waits and polls).
#include "cli/run_command.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>

#include "cli/child_process.h"
#include "cli/common_options.h"
#include "cli/config.h"
#include "cli/file_watcher.h"
#include "cli/install_paths.h"
#include "cli/serve_command.h"

namespace tronada::cli {

namespace fs = std::filesystem;

namespace {

// Between the last change seen and the rebuild: editors and `git checkout` write
// several files in a burst.
constexpr int kSettleMs = 300;

void say(const std::string& message) {
  std::fprintf(stderr, "tronada run: %s\n", message.c_str());
  std::fflush(stderr);
}

/// Blocks the signals the loop handles and reads them from a signalfd; restores the
/// mask (which children get back before exec) when destroyed.
class SignalFd {
 public:
  SignalFd() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGCHLD}) sigaddset(&set, s);
    ::sigprocmask(SIG_BLOCK, &set, &original_);
    fd_ = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd_ < 0) throw std::runtime_error("signalfd failed");
  }
  ~SignalFd() {
    ::close(fd_);
    ::sigprocmask(SIG_SETMASK, &original_, nullptr);
  }
  int fd() const { return fd_; }
  const sigset_t& original_mask() const { return original_; }
  /// The next pending signal, or 0.
  int next() {
    signalfd_siginfo info;
    if (::read(fd_, &info, sizeof info) != sizeof info) return 0;
    return static_cast<int>(info.ssi_signo);
  }

 private:
  int fd_ = -1;
  sigset_t original_;
};

struct RunCommand {
  std::string dir = ".";
  bool reload = false;
  std::vector<BindAddress> binds;
  std::string build_type = "RelWithDebInfo";

  fs::path root;
  Config config;
  std::vector<std::string> program;  // the app's argv
  bool native = false;
  std::vector<int> sockets;
  std::unique_ptr<SignalFd> signals;
  pid_t child = -1;

  void run() {
    root = fs::absolute(dir).lexically_normal();
    fs::path config_file = root / "tronada.toml";
    if (!fs::exists(config_file)) {
      throw std::runtime_error("no tronada.toml in " + root.string() +
                               " (make an app with `tronada new NAME`)");
    }
    config = load_config(config_file.string());
    native = config.app.has_value();
    if (native) {
      program = config.app->command;
      if (program[0].find('/') != std::string::npos && fs::path(program[0]).is_relative()) {
        program[0] = (root / program[0]).lexically_normal().string();
      }
    } else {
      program = {(program_dir() / "tronada").string(), "serve", "-c", config_file.string()};
    }
    std::vector<BindAddress> addresses = binds.empty() ? config.server.binds : binds;
    if (addresses.empty()) addresses.push_back(parse_bind_address(kDefaultBind));
    signals = std::make_unique<SignalFd>();
    sockets = bind_all(addresses);
    if (sockets.size() > 64) throw std::runtime_error("too many listening sockets");

    if (!build()) {
      if (!reload) throw CLI::RuntimeError(1);
      say("the build failed; fix the error and save: waiting for changes");
    } else {
      start();
    }
    int status = reload ? watch_loop() : wait_loop();
    for (int fd : sockets) ::close(fd);
    if (status != 0) throw CLI::RuntimeError(status);
  }

  /// Configures once and builds; true when the program is ready to start.
  bool build() {
    if (!native || config.app->build.empty()) return true;
    fs::path build_dir = root / "build";
    if (!fs::exists(build_dir / "CMakeCache.txt")) {
      std::vector<std::string> configure = {"cmake",
                                            "-S",
                                            root.string(),
                                            "-B",
                                            build_dir.string(),
                                            "-DCMAKE_BUILD_TYPE=" + build_type};
      if (::access("/usr/bin/ninja", X_OK) == 0) {
        configure.push_back("-G");
        configure.push_back("Ninja");
      }
      // From a tronada build tree, build against it rather than an installed tronada.
      if (auto package = build_tree_package_dir()) {
        configure.push_back("-Dtronada_DIR=" + package->string());
      }
      say("configuring: cmake -S " + root.string() + " -B " + build_dir.string());
      if (run_to_end(configure) != 0) {
        // A half-made cache would make the next attempt skip configuring.
        std::error_code ec;
        fs::remove(build_dir / "CMakeCache.txt", ec);
        say("configuring failed (see above)");
        return false;
      }
    }
    std::vector<std::string> command = {"cmake", "--build", build_dir.string()};
    // Only the program (not the tests) when it is a target of this build.
    fs::path prog(program[0]);
    if (prog.parent_path() == build_dir) {
      command.push_back("--target");
      command.push_back(prog.filename().string());
    }
    say("building");
    if (run_to_end(command) != 0) {
      say(child > 0 ? "the build failed (see above); the previous version keeps serving"
                    : "the build failed (see above)");
      return false;
    }
    return true;
  }

  int run_to_end(const std::vector<std::string>& argv) {
    pid_t pid = start_child(argv, root, {}, signals->original_mask());
    return wait_child(pid);
  }

  void start() {
    child = start_child(program, root, sockets, signals->original_mask());
    std::string what = native ? program[0] : "tronada serve";
    say("started " + what + " (pid " + std::to_string(child) + ")");
  }

  void stop() {
    if (child <= 0) return;
    int status = stop_child(child);
    say("stopped pid " + std::to_string(child) + " (status " + std::to_string(status) + ")");
    child = -1;
  }

  /// Reaps the app if it exited; returns its status, or nullopt while it runs.
  std::optional<int> reap() {
    if (child <= 0) return std::nullopt;
    int status = 0;
    if (::waitpid(child, &status, WNOHANG) != child) return std::nullopt;
    child = -1;
    return exit_code(status);
  }

  /// Without --reload: the app's lifetime is ours; SIGINT/SIGTERM are passed on.
  int wait_loop() {
    for (;;) {
      pollfd p{signals->fd(), POLLIN, 0};
      ::poll(&p, 1, -1);
      for (int sig = signals->next(); sig != 0; sig = signals->next()) {
        if (sig == SIGCHLD) {
          if (auto status = reap()) return *status;
        } else {
          stop();
          return 0;
        }
      }
    }
  }

  int watch_loop() {
    WatchFilter filter;
    if (!native) filter.suffixes = {".py", ".toml"};
    FileWatcher watcher(filter);
    std::vector<std::string> watch =
        native && !config.app->watch.empty() ? config.app->watch : std::vector<std::string>{"."};
    for (const std::string& w : watch)
      watcher.add(root / w, {"build", "__pycache__", "node_modules"});
    watcher.add(root / "tronada.toml");
    say("watching " + root.string() + " for changes");

    bool pending = false;
    for (;;) {
      pollfd fds[2] = {{signals->fd(), POLLIN, 0}, {watcher.fd(), POLLIN, 0}};
      int n = ::poll(fds, 2, pending ? kSettleMs : -1);
      if (n == 0 && pending) {
        pending = false;
        rebuild_and_restart();
        continue;
      }
      for (int sig = signals->next(); sig != 0; sig = signals->next()) {
        if (sig == SIGCHLD) {
          if (auto status = reap()) {
            say("the app exited with status " + std::to_string(*status) +
                "; waiting for changes to restart it");
          }
        } else {
          stop();
          return 0;
        }
      }
      auto changed = watcher.read_changes();
      if (!changed.empty()) {
        say("changed: " + fs::relative(changed.front(), root).string() +
            (changed.size() > 1 ? " and " + std::to_string(changed.size() - 1) + " more" : ""));
        pending = true;
      }
    }
  }

  void rebuild_and_restart() {
    if (!native) {
      // A config app: check the edited config before replacing a process that works.
      std::vector<std::string> check = {program[0], "check", "-q", "-c", program[3]};
      if (run_to_end(check) != 0) {
        say("the config does not check (see above); the previous version keeps serving");
        return;
      }
    } else if (!build()) {
      return;
    }
    stop();
    start();
  }
};

}  // namespace

void register_run_command(CLI::App& app) {
  auto cmd = std::make_shared<RunCommand>();
  CLI::App* sub = app.add_subcommand(
      "run",
      "Build and run the app in DIR (made by `tronada new`): a native app is configured and\n"
      "built with CMake, then started; a config app is served. --reload rebuilds and restarts\n"
      "after each edit, keeping the listening sockets open and the old process serving until\n"
      "the new one built");
  sub->add_option("DIR", cmd->dir, "The app's folder (default: the current one)")
      ->check(CLI::ExistingDirectory);
  sub->add_flag("--reload", cmd->reload, "Watch the sources and rebuild and restart on changes");
  sub->add_option("--build-type", cmd->build_type, "CMake build type of a native app")
      ->capture_default_str();
  sub->add_option_function<std::vector<std::string>>(
         "-b,--bind",
         [cmd](const std::vector<std::string>& values) {
           for (const std::string& v : values) cmd->binds.push_back(parse_bind_address(v));
         },
         "Where to listen (repeatable); overrides the config's [server] bind")
      ->type_name("ADDR")
      ->allow_extra_args(false);
  sub->callback([cmd] { cmd->run(); });
}

}  // namespace tronada::cli
