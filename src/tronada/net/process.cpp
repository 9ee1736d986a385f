#include "tronada/net/process.h"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <system_error>
#include <thread>

#include "tronada/base/log.h"
#include "tronada/net/binary_upgrade.h"
#include "tronada/net/worker_supervisor.h"

namespace tronada {

namespace {

int g_task_id = -1;
volatile sig_atomic_t g_forward_signal = 0;

void on_parent_signal(int sig) {
  g_forward_signal = sig;
}

}  // namespace

int task_id() {
  return g_task_id;
}

void stop_with_master(pid_t master_pid) {
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != master_pid) std::_Exit(0);
}

int fork_processes(int num_processes, int max_restarts,
                   std::function<void(metrics::RestartCause)> on_restart) {
  if (num_processes <= 0) {
    num_processes = static_cast<int>(std::thread::hardware_concurrency());
    if (num_processes <= 0) num_processes = 1;
  }
  std::map<pid_t, int> children;
  const pid_t master_pid = getpid();
  auto start_child = [&](int id) -> bool {
    pid_t pid = fork();
    if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
    if (pid == 0) {
      stop_with_master(master_pid);
      g_task_id = id;
      signal(SIGTERM, SIG_DFL);
      signal(SIGINT, SIG_DFL);
      signal(SIGHUP, SIG_DFL);
      signal(SIGUSR1, SIG_IGN);  // until the worker handles it (see the parent's loop)
      signal(SIGUSR2, SIG_IGN);  // the master's (binary upgrade), never a worker's
      return true;
    }
    children[pid] = id;
    return false;
  };

  for (int i = 0; i < num_processes; ++i) {
    if (start_child(i)) return i;
  }

  struct sigaction sa {};
  sa.sa_handler = on_parent_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  // Log reopening is the workers' business (they own the files): passed on, like SIGHUP.
  sigaction(SIGUSR1, &sa, nullptr);

  // SIGUSR2 starts a new binary (binary_upgrade.h); once it serves, this master stops
  // its workers as for SIGTERM and exits.
  upgrade::install_signal_handler();
  upgrade::close_inherited_pipe();

  int restarts = 0;
  bool stopping = false;
  auto forward = [&](int sig) {
    if (sig != SIGHUP && sig != SIGUSR1) stopping = true;
    for (auto& [child, id] : children) kill(child, sig);
  };
  while (!children.empty()) {
    if (int sig = g_forward_signal) {
      g_forward_signal = 0;
      forward(sig);
    }
    int status = 0;
    // Not a blocking wait: the upgrade needs watching, and a signal that lands between
    // a check and a blocking waitpid would wait for the next child to exit.
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid == 0) {
      if (upgrade::poll(stopping ? 0 : 100) == upgrade::Event::ready && !stopping) {
        forward(SIGTERM);
      }
      if (stopping) poll(nullptr, 0, 100);
      continue;
    }
    if (pid < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "waitpid");
    }
    auto it = children.find(pid);
    if (it == children.end()) {
      upgrade::on_reaped(pid, status);
      continue;
    }
    int id = it->second;
    children.erase(it);
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (clean || stopping) {
      log::info("process", "child " + std::to_string(id) + " (pid " + std::to_string(pid) + ") " +
                               (clean ? "exited normally" : "stopped"));
      continue;
    }
    log::warning("process", "child " + std::to_string(id) + " (pid " + std::to_string(pid) + ") " +
                                describe_exit(status));
    if (++restarts > max_restarts) {
      log::error("process", "too many child restarts, giving up");
      for (auto& [child, cid] : children) kill(child, SIGTERM);
      std::exit(1);
    }
    if (on_restart) on_restart(death_cause(status));
    if (start_child(id)) return id;
  }
  std::exit(0);
}

}  // namespace tronada
