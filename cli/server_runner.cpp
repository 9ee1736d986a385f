#include "cli/server_runner.h"

#include <csignal>
#include <string>

#include "tronada/base/log.h"
#include "tronada/loop/periodic_callback.h"

namespace tronada::cli {

void listen_all(HTTPServer& server, const std::vector<BindAddress>& binds) {
  for (const auto& b : binds) {
    if (b.kind == BindAddress::Kind::unix_socket) {
      server.listen_unix(b.path, 0660);
    } else {
      server.listen(b.port, b.host);
    }
    log::info("server", "listening on " + b.to_string());
  }
}

void run_until_signalled(HTTPServer& server, std::chrono::seconds drain_timeout) {
  IOLoop& loop = IOLoop::current();
  bool stopping = false;
  std::unique_ptr<PeriodicCallback> watcher;
  auto begin_shutdown = [&](const char* why) {
    if (stopping) {
      log::warning("server", std::string(why) + " again: stopping now");
      loop.stop();
      return;
    }
    stopping = true;
    log::info("server", std::string(why) + ": finishing " +
                            std::to_string(server.open_connections()) + " open connection(s)");
    server.stop();
    server.close_all_connections();
    if (server.open_connections() == 0) {
      loop.stop();
      return;
    }
    // Poll until in-flight requests are done; the timeout bounds a stuck one.
    watcher = std::make_unique<PeriodicCallback>(
        [&] {
          if (server.open_connections() == 0) loop.stop();
        },
        std::chrono::milliseconds(50));
    watcher->start();
    loop.call_later(drain_timeout, [&] {
      log::warning("server", "drain timeout: closing remaining connections");
      loop.stop();
    });
  };
  loop.add_signal_handler(SIGINT, [&] { begin_shutdown("interrupted"); });
  loop.add_signal_handler(SIGTERM, [&] { begin_shutdown("terminated"); });
  std::signal(SIGPIPE, SIG_IGN);
  loop.start();
  if (watcher) watcher->stop();
  loop.remove_signal_handler(SIGINT);
  loop.remove_signal_handler(SIGTERM);
}

}  // namespace tronada::cli
