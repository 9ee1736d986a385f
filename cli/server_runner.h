// Shared by the server commands: listen on the binds the user asked for, run the loop,
// shut down gracefully on SIGINT/SIGTERM and reload on SIGHUP.
#pragma once

#include <chrono>
#include <functional>
#include <vector>

#include "cli/bind_address.h"
#include "cli/common_options.h"
#include "tronada/http/http_server.h"

namespace tronada::cli {

/// Listens on every address (TCP or unix:) before anything else runs, so a bad or busy
/// address stops the program with a message and a non-zero exit before it serves.
void listen_all(HTTPServer& server, const std::vector<BindAddress>& binds);

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

/// The form the one-backend commands use: configure_protocols(server, options), then
/// run_until_signalled(server) with the options' drain delay.
void run_until_signalled(HTTPServer& server, const CommonOptions& options);

}  // namespace tronada::cli
