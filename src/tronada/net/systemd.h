// The two halves of systemd's service protocol a server needs, without linking
// libsystemd: listening sockets passed in (socket activation, sd_listen_fds(3)) and
// readiness notification (sd_notify(3)). `tronada run` uses the first to keep the
// listening socket open while it restarts an app.
#pragma once

#include <string_view>
#include <vector>

namespace tronada {

/// The listening sockets this process was started with: fds 3, 4, ... when LISTEN_PID
/// is this process and LISTEN_FDS counts them; empty otherwise. They are made
/// non-blocking and close-on-exec, and LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES are removed
/// from the environment so children do not take them too. Call it once, early.
std::vector<int> systemd_listen_fds();

/// Sends `state` ("READY=1", "STOPPING=1", "STATUS=...") to the service manager when
/// NOTIFY_SOCKET is set; returns false when not run by one (or on error), which callers
/// may ignore, as with sd_notify.
bool systemd_notify(std::string_view state);

}  // namespace tronada
