#include "tronada/net/binary_upgrade.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string_view>

#include "tronada/base/log.h"
#include "tronada/net/systemd.h"
#include "tronada/net/worker_supervisor.h"

extern char** environ;

namespace tronada::upgrade {

namespace {

constexpr const char* L = "upgrade";
constexpr const char* kPipeVar = "TRONADA_UPGRADE_FD";
constexpr const char* kFromVar = "TRONADA_UPGRADE_FROM";
// After a failed upgrade, how long the new binary gets to stop on SIGTERM before SIGKILL.
constexpr auto kStopGrace = std::chrono::seconds(5);

using Clock = std::chrono::steady_clock;

std::string g_path;  // the binary to start, absolute, resolved at start
std::vector<std::string> g_args;
std::string g_cwd;
std::vector<int> g_listen_fds;
std::chrono::milliseconds g_timeout{30'000};
volatile sig_atomic_t g_requested = 0;

// In a process started by an upgrade.
int g_inherited_pipe = -1;
pid_t g_master_pid = 0;
long g_old_pid = 0;

// The upgrade in flight, in the old master.
pid_t g_child = -1;
int g_read_fd = -1;
Clock::time_point g_deadline;
bool g_stopping_child = false;  // failed: told to stop, not reaped yet
Clock::time_point g_kill_at;
Clock::time_point g_eof_deadline;  // the pipe closed without a byte: reap it before then

void on_usr2(int) {
  g_requested = 1;
}

bool parse_long(const char* text, long& out) {
  if (!text || !*text) return false;
  const char* end = text + std::strlen(text);
  auto [p, ec] = std::from_chars(text, end, out);
  return ec == std::errc() && p == end;
}

std::string who() {
  return "the new binary " + g_path + " (pid " + std::to_string(g_child) + ")";
}

void close_read_end() {
  if (g_read_fd >= 0) ::close(g_read_fd);
  g_read_fd = -1;
}

/// Gives up on the new binary: logs why, stops it unless it is gone already.
void fail(const std::string& reason, bool reaped) {
  log::error(L, "binary upgrade failed: " + who() + " " + reason + "; this master keeps serving");
  close_read_end();
  if (reaped) {
    g_child = -1;
    g_stopping_child = false;
    return;
  }
  // SIGTERM first: its master passes it to any workers it started, which SIGKILL of
  // the master alone would leave behind.
  ::kill(g_child, SIGTERM);
  g_stopping_child = true;
  g_kill_at = Clock::now() + kStopGrace;
}

void start() {
  if (g_path.empty()) {
    log::error(L, "SIGUSR2: cannot upgrade: the program's path is unknown");
    return;
  }
  if (g_listen_fds.empty()) {
    log::error(L, "SIGUSR2: cannot upgrade: no listening sockets to hand over");
    return;
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    log::error(L, std::string("SIGUSR2: cannot upgrade: pipe: ") + std::strerror(errno));
    return;
  }
  // Everything the child needs is made before fork: after it only async-signal-safe
  // calls (the admin listener's thread may hold the allocator's lock).
  const int n = static_cast<int>(g_listen_fds.size());
  std::vector<char*> args;
  for (std::string& a : g_args) args.push_back(a.data());
  args.push_back(nullptr);
  std::vector<std::string> env_storage;
  for (char** e = environ; *e; ++e) {
    std::string_view v(*e);
    if (v.starts_with("LISTEN_PID=") || v.starts_with("LISTEN_FDS=") ||
        v.starts_with("LISTEN_FDNAMES=") || v.starts_with("TRONADA_UPGRADE_")) {
      continue;
    }
    env_storage.emplace_back(v);
  }
  env_storage.push_back("LISTEN_FDS=" + std::to_string(n));
  env_storage.push_back(std::string(kPipeVar) + "=" + std::to_string(3 + n));
  env_storage.push_back(std::string(kFromVar) + "=" + std::to_string(::getpid()));
  std::string listen_pid = "LISTEN_PID=" + std::string(24, '\0');  // filled in the child
  std::vector<char*> env;
  for (std::string& e : env_storage) env.push_back(e.data());
  env.push_back(listen_pid.data());
  env.push_back(nullptr);
  std::vector<int> to_move = g_listen_fds;
  to_move.push_back(fds[1]);
  std::vector<int> moved(to_move.size(), -1);
  const char* path = g_path.c_str();
  const char* cwd = g_cwd.c_str();

  pid_t pid = ::fork();
  if (pid < 0) {
    log::error(L, std::string("SIGUSR2: cannot upgrade: fork: ") + std::strerror(errno));
    ::close(fds[0]);
    ::close(fds[1]);
    return;
  }
  if (pid == 0) {
    // Out of the way first, so dup2 onto 3, 4, ... never overwrites one still to be
    // moved; dup2 leaves the copies without FD_CLOEXEC.
    for (std::size_t i = 0; i < to_move.size(); ++i)
      moved[i] = ::fcntl(to_move[i], F_DUPFD_CLOEXEC, 512);
    for (std::size_t i = 0; i < moved.size(); ++i) {
      if (moved[i] < 0 || ::dup2(moved[i], 3 + static_cast<int>(i)) < 0) ::_exit(127);
    }
    // LISTEN_PID: this process, in decimal, without allocating.
    char* out = listen_pid.data() + std::strlen("LISTEN_PID=");
    char digits[24];
    int k = 0;
    for (long v = ::getpid(); v > 0; v /= 10) digits[k++] = static_cast<char>('0' + v % 10);
    while (k > 0) *out++ = digits[--k];
    *out = '\0';
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGUSR2, SIG_IGN);  // until the new master installs its own handler
    if (*cwd && ::chdir(cwd) != 0) ::_exit(127);
    ::execve(path, args.data(), env.data());
    const char msg[] = "tronada: binary upgrade: cannot execute the new binary\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  ::close(fds[1]);
  g_child = pid;
  g_read_fd = fds[0];
  g_deadline = Clock::now() + g_timeout;
  g_stopping_child = false;
  log::info(L, "SIGUSR2: started " + who() + " with " + std::to_string(n) +
                   " listening socket(s); this master serves until it is ready (at most " +
                   std::to_string(g_timeout.count()) + " ms)");
}

}  // namespace

void remember_start(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::error_code ec;
  g_cwd = fs::current_path(ec).string();
  if (argc > 0 && std::strchr(argv[0], '/')) {
    g_path = fs::absolute(argv[0], ec).lexically_normal().string();
  } else {
    // Found in PATH: the file it is now. /proc/self/exe read later would name the old
    // file "(deleted)" once a package manager replaced it.
    g_path = fs::read_symlink("/proc/self/exe", ec).string();
  }
  g_args.assign(argv, argv + argc);
  g_master_pid = ::getpid();
  long fd = -1;
  if (parse_long(std::getenv(kPipeVar), fd) && fd > 2 &&
      ::fcntl(static_cast<int>(fd), F_GETFD) >= 0) {
    g_inherited_pipe = static_cast<int>(fd);
    // Forked workers keep it; programs they run do not.
    ::fcntl(g_inherited_pipe, F_SETFD, FD_CLOEXEC);
    parse_long(std::getenv(kFromVar), g_old_pid);
  }
  ::unsetenv(kPipeVar);
  ::unsetenv(kFromVar);
}

void set_listen_sockets(std::vector<int> fds) {
  g_listen_fds = std::move(fds);
}

void set_timeout(std::chrono::milliseconds timeout) {
  g_timeout = timeout;
}

void request() {
  g_requested = 1;
}

void install_signal_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_usr2;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR2, &sa, nullptr);
}

void report_ready() {
  if (g_inherited_pipe < 0) return;
  // The main PID changes: a Type=notify unit (NotifyAccess=all) follows the new master.
  // Sent before the byte, so systemd knows it before the old master can exit.
  systemd_notify("MAINPID=" + std::to_string(g_master_pid) + "\nREADY=1");
  char c = 1;
  ssize_t n;
  do {
    n = ::write(g_inherited_pipe, &c, 1);
  } while (n < 0 && errno == EINTR);
  ::close(g_inherited_pipe);
  g_inherited_pipe = -1;
  log::info(L, "serving; told the old master (pid " + std::to_string(g_old_pid) + ") to drain");
}

void close_inherited_pipe() {
  if (g_inherited_pipe >= 0) ::close(g_inherited_pipe);
  g_inherited_pipe = -1;
}

bool in_flight() {
  return g_child > 0;
}

void on_reaped(pid_t pid, int wait_status) {
  if (pid != g_child || pid <= 0) return;
  if (g_stopping_child) {
    log::info(L, who() + " " + describe_exit(wait_status));
    g_child = -1;
    g_stopping_child = false;
    return;
  }
  fail(describe_exit(wait_status) + " before it was ready", true);
}

Event poll(int wait_ms) {
  if (g_requested) {
    g_requested = 0;
    if (g_child > 0) {
      log::warning(L, "SIGUSR2 refused: an upgrade is in flight already (" + who() + ")");
    } else {
      start();
    }
  }
  if (g_child <= 0) {
    if (wait_ms > 0) ::poll(nullptr, 0, wait_ms);
    return Event::none;
  }
  int st = 0;
  pid_t r = ::waitpid(g_child, &st, WNOHANG);
  if (r == g_child) {
    on_reaped(r, st);
    return Event::none;
  }
  if (r < 0 && errno == ECHILD) {  // reaped elsewhere without telling us
    if (g_stopping_child) {
      g_child = -1;
      g_stopping_child = false;
    } else {
      fail("is gone before it was ready", true);
    }
    return Event::none;
  }
  if (g_stopping_child) {
    if (Clock::now() >= g_kill_at) {
      log::warning(L, who() + " did not stop on SIGTERM: killing it");
      ::kill(g_child, SIGKILL);
      g_kill_at = Clock::now() + kStopGrace;
    }
    if (wait_ms > 0) ::poll(nullptr, 0, wait_ms);
    return Event::none;
  }
  if (g_read_fd < 0) {  // end-of-file seen: waiting to reap it
    if (Clock::now() >= g_eof_deadline) {
      fail("closed its end of the pipe before it was ready", false);
    } else if (wait_ms > 0) {
      ::poll(nullptr, 0, wait_ms);
    }
    return Event::none;
  }
  pollfd p{g_read_fd, POLLIN, 0};
  if (::poll(&p, 1, wait_ms) > 0) {
    char c;
    ssize_t k = ::read(g_read_fd, &c, 1);
    if (k == 1) {
      log::info(L, who() + " is ready: this master stops accepting, drains and exits");
      close_read_end();
      g_child = -1;  // no longer ours to watch: it outlives this process
      return Event::ready;
    }
    if (k == 0) {
      // Usually it exited: give it a moment to be reaped so the log can say how (never
      // waiting here: a single process polls this from its event loop).
      close_read_end();
      g_eof_deadline = Clock::now() + std::chrono::seconds(1);
      return Event::none;
    }
  }
  if (Clock::now() >= g_deadline) {
    fail("was not ready within " + std::to_string(g_timeout.count()) + " ms (upgrade_timeout)",
         false);
  }
  return Event::none;
}

}  // namespace tronada::upgrade
