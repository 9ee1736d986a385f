// Prefork: run several copies of the server sharing listening sockets (Tornado's
// tornado.process.fork_processes).
#pragma once

#include <sys/types.h>

#include <functional>

#include "tronada/metrics/worker_restarts.h"

namespace tronada {

/// Forks `num_processes` children (0 means one per CPU) and returns in each child its
/// task id (0..n-1). The parent never returns: it supervises, restarting a child that
/// exits with an error or a signal (at most `max_restarts` times in all), forwards
/// SIGTERM/SIGINT/SIGHUP to the children, and exits with status 0 once every child has
/// exited cleanly. Call it before any IOLoop exists in the process: libuv state must
/// not be shared across fork.
/// (WorkerSupervisor adds recycling, timeouts and restart back-off.) `on_restart`, if
/// set, is called in the parent for each child it restarts, with the cause of its death
/// (signal or exit).
int fork_processes(int num_processes, int max_restarts = 100,
                   std::function<void(metrics::RestartCause)> on_restart = {});

/// The task id given by fork_processes in this process, or -1 if not forked.
int task_id();

/// In a freshly forked worker: a worker outlives no master. The kernel sends it SIGTERM
/// (a drain) when the master dies, even by SIGKILL, so no worker keeps serving the
/// listening sockets unsupervised; a master already gone before this call ends the
/// worker at once. `master_pid` is the master's pid, read before the fork.
void stop_with_master(pid_t master_pid);

}  // namespace tronada
