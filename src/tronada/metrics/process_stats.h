// The standard process_* numbers of a process, read from /proc.
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace tronada::metrics {

/// What Prometheus's process collector reports, for one process or summed over several.
struct ProcessStats {
  double cpu_seconds = 0;  // user + system
  std::uint64_t resident_bytes = 0;
  std::uint64_t virtual_bytes = 0;
  std::uint64_t open_fds = 0;
  std::uint64_t max_fds = 0;      // the soft RLIMIT_NOFILE (of the calling process)
  double start_time_seconds = 0;  // since the Unix epoch
};

/// Reads /proc/PID/stat and /proc/PID/fd; fields it cannot read stay 0 (a process that
/// just exited, say).
ProcessStats read_process_stats(pid_t pid);

/// Adds the CPU time, memory and descriptors of `other` to `into` (the start time and
/// fd limit stay `into`'s).
void add_process_stats(ProcessStats& into, const ProcessStats& other);

}  // namespace tronada::metrics
