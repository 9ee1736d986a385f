// Shared by the server commands: listen on the binds the user asked for, run the loop,
// and shut down gracefully on SIGINT/SIGTERM.
#pragma once

#include <chrono>
#include <vector>

#include "cli/bind_address.h"
#include "tronada/http/http_server.h"

namespace tronada::cli {

/// Listens on every address (TCP or unix:) before anything else runs, so a bad or busy
/// address stops the program with a message and a non-zero exit before it serves.
void listen_all(HTTPServer& server, const std::vector<BindAddress>& binds);

/// Runs the current loop until SIGINT or SIGTERM, then stops accepting, lets in-flight
/// requests finish (at most `drain_timeout`), closes idle connections and returns.
void run_until_signalled(HTTPServer& server,
                         std::chrono::seconds drain_timeout = std::chrono::seconds(30));

}  // namespace tronada::cli
