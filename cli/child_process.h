// Child processes for `tronada run`: the build (cmake) and the app itself, which gets
// the listening sockets by systemd's socket activation protocol (LISTEN_FDS), so they
// outlive every restart of the app.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace tronada::cli {

/// Starts argv[0] (looked up in PATH when it has no '/') in `cwd`, with `listen_fds`
/// as fds 3, 4, ... and LISTEN_FDS / LISTEN_PID set for it, stdout and stderr shared
/// with this process, and the signal mask this process had before it blocked signals
/// (`original_mask`). Throws std::system_error when fork fails; an exec failure shows
/// as exit status 127.
pid_t start_child(const std::vector<std::string>& argv, const std::filesystem::path& cwd,
                  const std::vector<int>& listen_fds, const sigset_t& original_mask);

/// Waits for `pid` (blocking) and returns its exit status, 128 + N for a signal N.
int wait_child(pid_t pid);

/// SIGTERM, then SIGKILL if it has not exited after `grace`; returns its status.
int stop_child(pid_t pid, std::chrono::milliseconds grace = std::chrono::seconds(10));

/// Decodes a waitpid status as a shell does: the exit code, or 128 + the signal.
int exit_code(int wait_status);

}  // namespace tronada::cli
