#include "tronada/net/worker_supervisor.h"

#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <random>
#include <system_error>
#include <vector>

#include "tronada/base/log.h"
#include "tronada/net/binary_upgrade.h"
#include "tronada/net/process.h"

namespace tronada {

// One worker's block in the shared mapping; `threads` busy clocks follow it. Only
// lock-free atomics live here, so both processes may touch them without a lock that a
// dying process could leave held.
struct WorkerStatus::Shared {
  std::atomic<std::uint32_t> ready;
  std::atomic<std::uint64_t> requests;
  std::atomic<std::int64_t>* clocks() {
    return reinterpret_cast<std::atomic<std::int64_t>*>(this + 1);
  }
};

static_assert(std::atomic<std::int64_t>::is_always_lock_free);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

namespace {

volatile sig_atomic_t g_stop_signal = 0;
volatile sig_atomic_t g_reload = 0;

void on_stop(int sig) {
  g_stop_signal = sig;
}
void on_reload(int) {
  g_reload = 1;
}
void on_child(int) {}  // only to interrupt poll()

std::int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

using Clock = std::chrono::steady_clock;

std::string worker_name(int id, pid_t pid) {
  return "worker " + std::to_string(id) + " (pid " + std::to_string(pid) + ")";
}

std::string seconds_text(Clock::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", std::chrono::duration<double>(d).count());
  return buf;
}

}  // namespace

void WorkerStatus::ready() {
  if (shared_) shared_->ready.store(1, std::memory_order_release);
}

void WorkerStatus::call_started(int thread) {
  if (shared_ && thread >= 0 && thread < threads_) {
    shared_->clocks()[thread].store(monotonic_ns(), std::memory_order_relaxed);
  }
}

void WorkerStatus::call_ended(int thread) {
  if (shared_ && thread >= 0 && thread < threads_) {
    shared_->clocks()[thread].store(0, std::memory_order_relaxed);
    std::uint64_t n = shared_->requests.fetch_add(1, std::memory_order_relaxed) + 1;
    // The worker stops accepting the moment it served its share, not when the master
    // next looks (the master then finishes the recycling).
    if (request_limit_ > 0 && n == request_limit_ && stop_signal_) kill(getpid(), stop_signal_);
  }
}

void WorkerStatus::pause(int thread) {
  if (shared_ && thread >= 0 && thread < threads_) {
    shared_->clocks()[thread].store(0, std::memory_order_relaxed);
  }
}

void WorkerStatus::resume(int thread) {
  call_started(thread);
}

std::uint64_t process_rss(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/statm");
  std::uint64_t size = 0, resident = 0;
  if (!(in >> size >> resident)) return 0;
  return resident * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

std::string describe_bytes(std::uint64_t bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  std::uint64_t v = bytes;
  while (u < 4 && v >= 1024 * 10) {
    v /= 1024;
    ++u;
  }
  if (u == 0 && bytes >= 1024) {
    v = bytes / 1024;
    u = 1;
  }
  return std::to_string(v) + " " + units[u];
}

std::string describe_exit(int status) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    std::string s = "was killed by signal " + std::to_string(sig) + " (" + strsignal(sig);
    if (sig == SIGKILL) s += " — often the kernel's OOM killer; see dmesg";
    s += ")";
    if (WCOREDUMP(status)) s += ", core dumped";
    return s;
  }
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  return "ended (wait status " + std::to_string(status) + ")";
}

metrics::RestartCause death_cause(int wait_status) {
  return WIFSIGNALED(wait_status) ? metrics::RestartCause::signal : metrics::RestartCause::exit;
}

WorkerSupervisor::WorkerSupervisor(WorkerSupervisorOptions options) : options_(std::move(options)) {
  if (options_.workers < 1) options_.workers = 1;
  if (options_.threads < 1) options_.threads = 1;
}

WorkerStatus WorkerSupervisor::run() {
  const auto& o = options_;
  const std::string& L = o.logger;
  // Twice the workers: a recycled worker keeps its block while it drains and its
  // replacement already runs.
  const int nslots = 2 * o.workers;
  const std::size_t stride =
      (sizeof(WorkerStatus::Shared) +
       sizeof(std::atomic<std::int64_t>) * static_cast<std::size_t>(o.threads) + 63) &
      ~std::size_t(63);
  // Lifetime: mapped once in the master and inherited by every worker; never unmapped
  // (the master ends with the process, workers exit).
  void* map = mmap(nullptr, stride * static_cast<std::size_t>(nslots), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (map == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap");
  auto slot = [&](int i) {
    return reinterpret_cast<WorkerStatus::Shared*>(static_cast<char*>(map) +
                                                   stride * static_cast<std::size_t>(i));
  };
  std::vector<bool> slot_used(static_cast<std::size_t>(nslots), false);

  struct Child {
    pid_t pid;
    int id;
    int slot;
    Clock::time_point started;
    std::uint64_t request_limit;  // 0: none
    std::string reason;           // set when the master ended it on purpose
    bool retiring = false;        // told to stop gracefully; replacement already started
    bool killed = false;
    bool was_ready = false;
    Clock::time_point stop_sent;
    std::optional<Clock::time_point> term_at;  // SIGTERM due after stop_accepting_signal
    bool recycled_for_requests = false;
    bool timed_out = false;  // killed by the master for --timeout
  };
  std::vector<Child> children;
  std::mt19937_64 rng(std::random_device{}());
  const pid_t master_pid = getpid();

  // Handlers go in before the first fork so no signal is lost; each worker puts the
  // defaults back.
  struct sigaction sa {};
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = on_stop;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sa.sa_handler = on_reload;
  sigaction(SIGHUP, &sa, nullptr);
  sa.sa_handler = on_child;
  sa.sa_flags = SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sa, nullptr);

  // Returns true in the new worker.
  auto spawn = [&](int id, WorkerStatus& status) -> bool {
    int s = 0;
    while (slot_used[static_cast<std::size_t>(s)]) ++s;
    WorkerStatus::Shared* sh = slot(s);
    sh->ready.store(0);
    sh->requests.store(0);
    for (int t = 0; t < o.threads; ++t) sh->clocks()[t].store(0);
    std::uint64_t limit = 0;
    if (o.max_requests > 0) {
      limit = o.max_requests;
      if (o.max_requests_jitter > 0) limit += rng() % (o.max_requests_jitter + 1);
    }
    std::fflush(nullptr);
    pid_t pid = fork();
    if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
    if (pid == 0) {
      struct sigaction dfl {};
      sigemptyset(&dfl.sa_mask);
      dfl.sa_handler = SIG_DFL;
      for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaction(sig, &dfl, nullptr);
      dfl.sa_handler = SIG_IGN;
      sigaction(SIGUSR2, &dfl, nullptr);  // the master's (binary upgrade), never a worker's
      dfl.sa_handler = SIG_DFL;
      if (o.stop_accepting_signal) {
        dfl.sa_handler = SIG_IGN;
        sigaction(o.stop_accepting_signal, &dfl, nullptr);
      }
      stop_with_master(master_pid);
      status.shared_ = sh;
      status.threads_ = o.threads;
      status.id_ = id;
      status.request_limit_ = limit;
      status.stop_signal_ = o.stop_accepting_signal;
      return true;
    }
    slot_used[static_cast<std::size_t>(s)] = true;
    children.push_back(
        Child{pid, id, s, Clock::now(), limit, {}, false, false, false, {}, {}, false, false});
    log::debug(L, "started " + worker_name(id, pid));
    return false;
  };

  WorkerStatus status;
  for (int i = 0; i < o.workers; ++i) {
    if (spawn(i, status)) return status;
  }
  // SIGUSR2 starts a new binary (binary_upgrade.h); once it serves, this master stops
  // as for SIGTERM.
  upgrade::install_signal_handler();
  upgrade::close_inherited_pipe();

  struct Restart {
    int id;
    Clock::time_point at;
  };
  std::vector<Restart> restarts;
  int young_deaths = 0;      // workers in a row that died within kYoung of starting
  int startup_failures = 0;  // workers in a row that died before they got ready
  constexpr auto kYoung = std::chrono::seconds(5);
  bool stopping = false;
  bool force_killed = false;
  Clock::time_point stop_deadline;
  Clock::time_point next_memory_check = Clock::now();
  const auto grace = o.graceful_timeout + std::chrono::seconds(2);

  // Asks a worker to finish its requests and exit.
  auto stop_gracefully = [&](Child& c) {
    c.stop_sent = Clock::now();
    bool ready = c.was_ready || slot(c.slot)->ready.load() != 0;
    if (o.stop_accepting_signal && ready) {
      kill(c.pid, o.stop_accepting_signal);
      c.term_at = c.stop_sent + o.settle;
    } else {
      kill(c.pid, SIGTERM);
    }
  };

  auto count_restart = [&](metrics::RestartCause cause) {
    if (o.on_restart) o.on_restart(cause);
  };

  auto retire = [&](Child& c, std::string reason, metrics::RestartCause cause) -> bool {
    count_restart(cause);
    c.reason = std::move(reason);
    c.retiring = true;
    log::info(L, worker_name(c.id, c.pid) + " is being recycled (" + c.reason +
                     "): it finishes its requests while a replacement starts");
    stop_gracefully(c);
    WorkerStatus st;
    return spawn(c.id, st) ? (status = st, true) : false;
  };

  auto give_up = [&](const std::string& why) {
    log::error(L, why);
    for (auto& c : children) kill(c.pid, SIGTERM);
    auto deadline = Clock::now() + grace;
    while (!children.empty() && Clock::now() < deadline) {
      int st = 0;
      pid_t pid = waitpid(-1, &st, WNOHANG);
      if (pid > 0) {
        std::erase_if(children, [&](const Child& c) { return c.pid == pid; });
      } else {
        poll(nullptr, 0, 50);
      }
    }
    for (auto& c : children) kill(c.pid, SIGKILL);
    std::exit(1);
  };

  for (;;) {
    auto now = Clock::now();
    if (int sig = g_stop_signal) {
      g_stop_signal = 0;
      if (!stopping) {
        stopping = true;
        restarts.clear();
        stop_deadline = now + grace;
        log::info(L, std::string(sig == SIGINT ? "interrupted" : "terminated") + ": stopping " +
                         std::to_string(children.size()) +
                         " worker(s) once their requests are done");
        for (auto& c : children) {
          if (!c.term_at && !c.retiring) stop_gracefully(c);
        }
      } else {
        log::warning(L, "signal again: telling the workers to stop now");
        for (auto& c : children) {
          c.term_at.reset();
          kill(c.pid, SIGTERM);
        }
      }
    }
    if (g_reload) {
      g_reload = 0;
      if (!stopping) {
        log::info(L, "SIGHUP: replacing every worker gracefully");
        std::vector<std::size_t> current;
        for (std::size_t i = 0; i < children.size(); ++i) {
          if (!children[i].retiring) current.push_back(i);
        }
        for (std::size_t i : current) {
          // retire() may grow `children`: index, never hold a reference across it.
          if (retire(children[i], "reload requested with SIGHUP", metrics::RestartCause::reload)) {
            return status;
          }
        }
      }
    }

    // Reap.
    for (;;) {
      int st = 0;
      pid_t pid = waitpid(-1, &st, WNOHANG);
      if (pid <= 0) break;
      auto it = std::find_if(children.begin(), children.end(),
                             [&](const Child& c) { return c.pid == pid; });
      if (it == children.end()) {
        upgrade::on_reaped(pid, st);
        continue;
      }
      Child c = std::move(*it);
      children.erase(it);
      slot_used[static_cast<std::size_t>(c.slot)] = false;
      bool ready = c.was_ready || slot(c.slot)->ready.load() != 0;
      if (c.recycled_for_requests) {
        c.reason =
            "was recycled after " + std::to_string(slot(c.slot)->requests.load()) + " requests";
      }
      bool clean = WIFEXITED(st) && WEXITSTATUS(st) == 0;
      std::string name = worker_name(c.id, c.pid);
      if (c.retiring) {  // its replacement runs already
        if (clean) {
          log::info(L, name + " " + c.reason);
        } else if (c.killed) {
          log::warning(L, name + " " + c.reason);
        } else {
          log::warning(L, name + " " + c.reason + ", then " + describe_exit(st));
        }
        continue;
      }
      if (stopping) {
        if (clean) {
          log::info(L, name + " stopped");
        } else if (c.killed) {
          log::warning(L, name + " " + c.reason);
        } else {
          log::warning(L, name + " " + describe_exit(st) + " while stopping");
        }
        continue;
      }
      std::string why = c.reason.empty() ? describe_exit(st) : c.reason;
      if (!ready) {
        ++startup_failures;
        log::error(L, name + " " + why + " before it was ready to serve");
        if (startup_failures >= o.max_startup_failures) {
          give_up("workers keep dying at start-up (" + std::to_string(startup_failures) +
                  " in a row, the last one " + why + "); giving up. Run the app by hand or " +
                  "with -w 1 to see why");
        }
      } else {
        log::error(L, name + " " + why + "; starting a new one");
      }
      count_restart(c.timed_out ? metrics::RestartCause::timeout : death_cause(st));
      young_deaths = (now - c.started < kYoung) ? young_deaths + 1 : 0;
      Clock::duration delay{};
      if (young_deaths > 1) {
        delay = std::min<Clock::duration>(
            std::chrono::milliseconds(100L << (std::min(young_deaths, 10) - 2)),
            std::chrono::seconds(5));
        log::warning(L, "workers are dying young (" + std::to_string(young_deaths) +
                            " in a row): next restart in " + seconds_text(delay));
      }
      restarts.push_back(Restart{c.id, now + delay});
    }

    if (stopping) {
      if (children.empty()) {
        log::info(L, "all workers stopped");
        std::exit(0);
      }
      if (!force_killed && now >= stop_deadline) {
        force_killed = true;
        log::warning(L, std::to_string(children.size()) + " worker(s) still busy after " +
                            std::to_string(grace.count()) + " s: killing them");
        for (auto& c : children) kill(c.pid, SIGKILL);
      }
    }

    // Restarts that are due.
    if (!stopping) {
      for (std::size_t i = 0; i < restarts.size();) {
        if (restarts[i].at <= now) {
          int id = restarts[i].id;
          restarts.erase(restarts.begin() + static_cast<std::ptrdiff_t>(i));
          WorkerStatus st;
          if (spawn(id, st)) return st;
        } else {
          ++i;
        }
      }
    }

    // Watch the running workers.
    const std::int64_t now_ns = monotonic_ns();
    const bool check_memory = o.max_memory > 0 && now >= next_memory_check;
    if (check_memory) next_memory_check = now + std::chrono::seconds(1);
    for (std::size_t i = 0; i < children.size(); ++i) {
      Child& c = children[i];
      WorkerStatus::Shared* sh = slot(c.slot);
      if (!c.was_ready && sh->ready.load(std::memory_order_acquire)) {
        c.was_ready = true;
        startup_failures = 0;
      }
      if (c.term_at && now >= *c.term_at) {
        c.term_at.reset();
        kill(c.pid, SIGTERM);
      }
      if (c.killed) {
        continue;
      }
      if (o.timeout.count() > 0) {
        const std::int64_t limit_ns = static_cast<std::int64_t>(o.timeout.count()) * 1000000000;
        bool stuck = false;
        for (int t = 0; t < o.threads; ++t) {
          std::int64_t since = sh->clocks()[t].load(std::memory_order_relaxed);
          if (since != 0 && now_ns - since > limit_ns) stuck = true;
        }
        if (stuck) {
          c.killed = true;
          c.timed_out = true;
          c.recycled_for_requests = false;
          c.reason = "was stuck in the app longer than --timeout " +
                     std::to_string(o.timeout.count()) + "s and was killed";
          log::warning(L, worker_name(c.id, c.pid) + " has been in one request longer than " +
                              "--timeout " + std::to_string(o.timeout.count()) +
                              "s: killing it (its client's connection closes)");
          kill(c.pid, SIGKILL);
          continue;
        }
      }
      if (c.retiring) {
        if (now - c.stop_sent > grace) {
          c.killed = true;
          c.recycled_for_requests = false;
          c.reason = "did not finish its requests within " + std::to_string(grace.count()) +
                     " s of being told to stop and was killed";
          log::warning(L, worker_name(c.id, c.pid) + " " + c.reason);
          kill(c.pid, SIGKILL);
        }
        continue;
      }
      if (stopping) continue;
      if (c.request_limit > 0) {
        std::uint64_t n = sh->requests.load(std::memory_order_relaxed);
        if (n >= c.request_limit) {
          children[i].recycled_for_requests = true;
          if (retire(children[i], "reached --max-requests " + std::to_string(c.request_limit),
                     metrics::RestartCause::max_requests)) {
            return status;
          }
          continue;
        }
      }
      if (check_memory) {
        std::uint64_t rss = process_rss(c.pid);
        if (rss > o.max_memory) {
          if (retire(children[i],
                     "was recycled: RSS " + describe_bytes(rss) + " over --max-memory " +
                         describe_bytes(o.max_memory),
                     metrics::RestartCause::max_memory)) {
            return status;
          }
          continue;
        }
      }
    }

    // Sleep until the next check, a signal or a child's death (SIGCHLD interrupts poll),
    // or the new binary of an upgrade reporting ready.
    if (upgrade::poll(100) == upgrade::Event::ready && !stopping) g_stop_signal = SIGTERM;
  }
}

}  // namespace tronada
