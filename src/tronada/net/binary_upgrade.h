// Zero-downtime binary upgrade, nginx's convention: SIGUSR2 to a master starts the
// binary found at the master's path now, with the same arguments and working
// directory, handing it the listening sockets (LISTEN_FDS, as systemd's socket
// activation) and a pipe. The new process's serving processes write one byte on the
// pipe once they accept; then the old master drains and exits. If the new one exits,
// closes the pipe without a byte, or misses the deadline, the old master stops it and
// goes on serving.
//
// The masters (fork_processes, WorkerSupervisor) poll this from their own loops; no
// IOLoop is involved.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace tronada::upgrade {

/// Remembers how this program was started: argv[0] made absolute (or, without a '/',
/// /proc/self/exe read now, before anyone replaces the file), the arguments and the
/// working directory. Also takes the upgrade pipe if this process was started by an
/// upgrade (its environment names it) and makes it close-on-exec. Call it once, first
/// thing in main.
void remember_start(int argc, char** argv);

/// The sockets a new binary inherits; set by the server command before it forks.
void set_listen_sockets(std::vector<int> fds);

/// How long the new binary may take to become ready (default 30 s).
void set_timeout(std::chrono::milliseconds timeout);

/// Requests an upgrade, as SIGUSR2 does; for a process whose event loop takes the
/// signal (a single serving process), which then calls poll(0) periodically.
void request();

/// Installs the SIGUSR2 handler that requests an upgrade (in a master).
void install_signal_handler();

/// In a process started by an upgrade: tells the old master this process serves (a
/// byte on the pipe, then closes it) and, under systemd, sends MAINPID=<new master> and
/// READY=1. Does nothing otherwise. Call it once the listening sockets accept.
void report_ready();

/// In a master after its first workers are forked: drops its own end of the pipe, so
/// the old master sees end-of-file if every worker dies before it is ready.
void close_inherited_pipe();

/// What a master's loop does with the upgrade state each turn.
enum class Event {
  none,
  ready,  ///< the new binary serves: drain and exit
};

/// Starts an upgrade if SIGUSR2 arrived (or refuses a second one), and watches the one
/// in flight. `wait_ms` bounds how long this blocks waiting for the new binary's byte
/// (0: not at all). Never throws; failures are logged.
Event poll(int wait_ms);

/// True while a new binary is starting (the master should poll with a timeout).
bool in_flight();

/// A master that reaped a pid it does not know passes it here: it may be the new binary.
void on_reaped(pid_t pid, int wait_status);

}  // namespace tronada::upgrade
