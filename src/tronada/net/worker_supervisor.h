// WorkerSupervisor: a master process that keeps N forked workers alive, gunicorn-style:
// restarts the ones that die (saying why), recycles them after a number of requests or
// past a memory limit, and kills the ones stuck in a request.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "tronada/metrics/worker_restarts.h"

namespace tronada {

struct WorkerSupervisorOptions {
  /// Worker processes kept running.
  int workers = 1;
  /// Request-running threads per worker, each with its own "busy since" clock.
  int threads = 1;
  /// Recycle a worker after this many requests (plus a random 0..jitter, so workers
  /// started together do not all recycle together); 0 never.
  std::uint64_t max_requests = 0;
  std::uint64_t max_requests_jitter = 0;
  /// Recycle a worker whose resident memory passes this many bytes; 0 never.
  std::uint64_t max_memory = 0;
  /// Kill a worker one of whose threads has been in one request longer than this; 0
  /// never.
  std::chrono::seconds timeout{30};
  /// How long a worker told to stop gracefully may take before it is killed.
  std::chrono::seconds graceful_timeout{30};
  /// Workers that die this many times in a row before they are ready make the master
  /// give up (exit 1) rather than restart them forever.
  int max_startup_failures = 5;
  /// If set, a ready worker being stopped gracefully first gets this signal, meaning
  /// "stop accepting", and SIGTERM only `settle` later: a connection the worker accepted
  /// just before would otherwise be closed as idle before its request was read. The
  /// worker must handle the signal (it is ignored until the worker installs a handler).
  int stop_accepting_signal = 0;
  std::chrono::milliseconds settle{250};
  /// Logger name for the master's messages.
  std::string logger = "master";
  /// Called in the master each time it starts a worker to replace one, with why (a
  /// death is counted when it is reaped, a recycling or reload when it begins). Not
  /// called for the first workers, nor while stopping.
  std::function<void(metrics::RestartCause)> on_restart;
};

/// What one worker publishes for its master: lock-free atomics in a MAP_SHARED
/// anonymous mapping created before fork, so the master reads them without talking to
/// the worker (a worker stuck in a C extension with the GIL held could not answer).
///
/// Each request-running thread owns one clock: call_started() stores the
/// CLOCK_MONOTONIC time (ns, the same clock in every process) at which its current
/// request began, call_ended() stores 0 and counts the request. pause()/resume() take a
/// thread's clock off while it waits on the client (a slow download is not a stuck app).
class WorkerStatus {
 public:
  /// Which worker this is (0..workers-1); a replacement keeps the id it replaces.
  int id() const { return id_; }
  /// The worker is serving: from now on dying is not a start-up failure.
  void ready();
  void call_started(int thread);
  void call_ended(int thread);
  void pause(int thread);
  void resume(int thread);

 private:
  friend class WorkerSupervisor;
  struct Shared;
  Shared* shared_ = nullptr;
  int threads_ = 0;
  int id_ = -1;
  std::uint64_t request_limit_ = 0;
  int stop_signal_ = 0;
};

/// Forks and supervises the workers. run() returns only in a worker (with its status
/// block); the master runs until it is told to stop and then exits the process:
///
/// - a worker that dies is restarted and the reason logged in plain words (signal and
///   its name, exit status, OOM hint for SIGKILL, --timeout, recycling);
/// - restarts of workers that die young back off (0.1 s doubling up to 5 s) so a crash
///   looping app does not spin; `max_startup_failures` deaths in a row before any
///   worker got ready stop the master with status 1;
/// - recycling (max_requests, max_memory) sends the worker SIGTERM (after
///   stop_accepting_signal, if set), which it must take
///   as "stop accepting, finish in-flight requests, exit 0", and starts its replacement
///   at once; the listening sockets are shared, so no connection is refused meanwhile;
/// - SIGTERM or SIGINT to the master is passed to every worker, nothing is restarted,
///   and the master exits 0 once they all exited (workers still running after
///   graceful_timeout are killed).
///
/// Call it before any IOLoop or thread exists: libuv state must not cross fork.
class WorkerSupervisor {
 public:
  explicit WorkerSupervisor(WorkerSupervisorOptions options);
  WorkerStatus run();

 private:
  WorkerSupervisorOptions options_;
};

/// A worker's resident set size in bytes from /proc/PID/statm; 0 if unknown.
std::uint64_t process_rss(pid_t pid);

/// "300 MiB", "12 KiB", "512 B": sizes in log messages.
std::string describe_bytes(std::uint64_t bytes);

/// Why a child ended, from its wait status: "exited with status 3", "was killed by
/// signal 11 (Segmentation fault)", SIGKILL with an OOM-killer hint.
std::string describe_exit(int wait_status);

/// The cause of a worker's death the master did not ask for, from its wait status: a
/// signal, else an exit (whatever its status).
metrics::RestartCause death_cause(int wait_status);

}  // namespace tronada
