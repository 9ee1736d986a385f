// Why a master replaced one of its workers: the bounded label set of
// tronada_worker_restarts_total, counted by the master (WorkerSupervisor, fork_processes).
#pragma once

#include <cstddef>
#include <string_view>

namespace tronada::metrics {

/// One restart of a worker, by what made the master start its replacement.
enum class RestartCause : std::size_t {
  signal = 0,        // died of a signal the master did not send (SIGKILL, SIGSEGV...)
  exit = 1,          // exited by itself (any status) while it should have been serving
  timeout = 2,       // killed by the master: in one request longer than --timeout
  max_requests = 3,  // recycled after its share of requests (--max-requests)
  max_memory = 4,    // recycled: resident memory over --max-memory
  reload = 5,        // replaced gracefully on SIGHUP
};
inline constexpr std::size_t kRestartCauses = 6;

/// The `cause` label of each RestartCause.
inline constexpr std::string_view kRestartCauseLabels[kRestartCauses] = {
    "signal", "exit", "timeout", "max_requests", "max_memory", "reload"};

constexpr std::string_view restart_cause_label(RestartCause cause) {
  return kRestartCauseLabels[static_cast<std::size_t>(cause)];
}

}  // namespace tronada::metrics
