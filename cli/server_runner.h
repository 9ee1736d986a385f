// Shared by the server commands: listen on the binds the user asked for, run the loop,
// shut down gracefully on SIGINT/SIGTERM and reload on SIGHUP.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include "cli/bind_address.h"
#include "cli/common_options.h"
#include "tronada/http/http_server.h"
#include "tronada/loop/periodic_callback.h"
#include "tronada/net/bind_sockets.h"

namespace tronada::cli {

/// How the HTTP commands bind TCP: accepted sockets inherit TCP_NODELAY, and the kernel
/// accepts a connection once its first request bytes arrived (as h2o does by default),
/// which saves a wake-up and a system call per new connection.
inline constexpr BindOptions kHTTPListener{.nodelay = true, .defer_accept_seconds = 1};

/// The listening sockets of a process that serves by itself (no master above it): the
/// ones it inherited (LISTEN_FDS: systemd's socket activation, or an old binary handing
/// over on SIGUSR2), which replace the binds, or else every address bound now (TCP or
/// unix:), so a bad or busy address stops the program with a message and a non-zero exit
/// before it serves. Either way they are what a binary upgrade hands over
/// (upgrade::set_listen_sockets). Call it once.
std::vector<int> open_listening_sockets(const std::vector<BindAddress>& binds);

/// open_listening_sockets(binds), accepted on by `server`.
void listen_all(HTTPServer& server, const std::vector<BindAddress>& binds);

/// A process that is its own master (no forked workers) takes SIGUSR2 itself while this
/// lives: the binary now at the program's path starts with the listening sockets
/// (binary_upgrade.h), watched from the loop without blocking it, and once that one
/// serves, this one drains as on SIGTERM (run_until_signalled). Also tells the old
/// master, if an upgrade started this process, that it serves. Construct it once the
/// sockets listen, before the loop runs; destroy it on the loop's thread after.
class UpgradeOnSignal {
 public:
  explicit UpgradeOnSignal(std::chrono::milliseconds upgrade_timeout);
  ~UpgradeOnSignal();
  UpgradeOnSignal(const UpgradeOnSignal&) = delete;
  UpgradeOnSignal& operator=(const UpgradeOnSignal&) = delete;

 private:
  std::unique_ptr<PeriodicCallback> watch_;
};

/// Applies `--no-http2` and the TLS flags to `server`. Safe after listening as long as the
/// loop has not run yet: the server picks the protocol and TLS per accepted connection, and
/// nothing is accepted before the loop starts. Throws SSLContextError for a bad file
/// (add_common_options already checked them before binding).
void configure_protocols(HTTPServer& server, const CommonOptions& options);

/// Re-reads the server's TLS certificates, keys and CAs (SSLContext::reload), logging the
/// outcome: new handshakes get the new files, open connections keep theirs, and on an error
/// the old ones stay in force. Does nothing without TLS.
void reload_certificates(HTTPServer& server);

/// Runs the current loop until SIGINT or SIGTERM, then drains and returns:
///
/// 1. the process reports draining (/readyz answers 503) and, for `drain_delay`, goes on
///    serving as before, so load balancers can stop sending first;
/// 2. it stops accepting, closes idle keep-alive connections, sends HTTP/2 GOAWAY, and
///    starts a 1001 (going away) close on every WebSocket;
/// 3. in-flight requests finish, at most until `drain_timeout` after step 2.
///
/// A second signal stops at once. SIGHUP calls `on_hangup` (default:
/// reload_certificates) and goes on serving. A master of forked workers (fork_processes)
/// forwards SIGHUP to each worker, which reloads itself. With metrics on
/// (metrics::current()), the loop also reports that it turns and publishes the
/// connection gauges once a second.
void run_until_signalled(HTTPServer& server,
                         std::chrono::milliseconds drain_timeout = std::chrono::seconds(30),
                         std::function<void()> on_hangup = {},
                         std::chrono::milliseconds drain_delay = {});

/// Marks this process as draining in the metrics region (/readyz 503); for a worker told
/// to stop accepting. Does nothing with metrics off.
void report_draining();

/// Whether the process running the server is its own master (binary upgrades on
/// SIGUSR2) or a worker forked by one (whose master takes SIGUSR2 instead).
enum class ProcessRole { single, worker };

/// The form the one-backend commands use: configure_protocols(server, options), then
/// run_until_signalled(server) with the options' drain delay; a `single` process takes
/// SIGUSR2 meanwhile (UpgradeOnSignal, with the options' --upgrade-timeout).
void run_until_signalled(HTTPServer& server, const CommonOptions& options, ProcessRole role);

}  // namespace tronada::cli
