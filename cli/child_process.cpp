#include "cli/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <thread>

extern char** environ;

namespace tronada::cli {

namespace {

// Writes `value` in decimal into `out` without allocating (runs between fork and exec).
void format_pid(char* out, long value) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value > 0);
  while (n > 0) *out++ = digits[--n];
  *out = '\0';
}

}  // namespace

pid_t start_child(const std::vector<std::string>& argv, const std::filesystem::path& cwd,
                  const std::vector<int>& listen_fds, const sigset_t& original_mask) {
  // Everything the child needs is allocated before fork: after it, only
  // async-signal-safe calls (the parent may have other threads).
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_storage;
  for (char** e = environ; *e; ++e) {
    std::string_view v(*e);
    if (v.rfind("LISTEN_PID=", 0) == 0 || v.rfind("LISTEN_FDS=", 0) == 0 ||
        v.rfind("LISTEN_FDNAMES=", 0) == 0) {
      continue;
    }
    env_storage.emplace_back(v);
  }
  std::string listen_count = "LISTEN_FDS=" + std::to_string(listen_fds.size());
  std::string listen_pid = "LISTEN_PID=" + std::string(24, '\0');  // filled in the child
  std::vector<char*> env;
  for (std::string& e : env_storage) env.push_back(e.data());
  if (!listen_fds.empty()) {
    env.push_back(listen_count.data());
    env.push_back(listen_pid.data());
  }
  env.push_back(nullptr);
  std::string dir = cwd.string();

  pid_t pid = ::fork();
  if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
  if (pid > 0) return pid;

  // Child. Move the sockets out of the way first, so that dup2 onto 3, 4, ... never
  // overwrites one still to be moved; dup2 leaves the copies without FD_CLOEXEC.
  constexpr int kHigh = 512;
  std::vector<int>::size_type i = 0;
  int moved[64];
  for (; i < listen_fds.size() && i < 64; ++i)
    moved[i] = ::fcntl(listen_fds[i], F_DUPFD_CLOEXEC, kHigh);
  for (std::vector<int>::size_type j = 0; j < i; ++j) {
    if (moved[j] < 0 || ::dup2(moved[j], 3 + static_cast<int>(j)) < 0) ::_exit(127);
  }
  if (!listen_fds.empty()) format_pid(listen_pid.data() + std::strlen("LISTEN_PID="), ::getpid());
  ::sigprocmask(SIG_SETMASK, &original_mask, nullptr);
  if (!dir.empty() && ::chdir(dir.c_str()) != 0) ::_exit(127);
  ::execvpe(args[0], args.data(), env.data());
  const char msg[] = "tronada run: cannot start the program\n";
  (void)!::write(2, msg, sizeof msg - 1);
  ::_exit(127);
}

int exit_code(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 1;
}

int wait_child(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return 1;
  }
  return exit_code(status);
}

int stop_child(pid_t pid, std::chrono::milliseconds grace) {
  ::kill(pid, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + grace;
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return exit_code(status);
    if (r < 0 && errno != EINTR) return 1;
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      return wait_child(pid);
    }
    // Runs outside any event loop (the supervisor's own thread): polling is fine here.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace tronada::cli
