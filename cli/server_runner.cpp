#include "cli/server_runner.h"

#include <signal.h>
#include <unistd.h>

#include <csignal>
#include <exception>
#include <memory>
#include <optional>
#include <string>

#include "tronada/base/log.h"
#include "tronada/gateway/tunnel.h"
#include "tronada/loop/periodic_callback.h"
#include "tronada/metrics/shared_region.h"
#include "tronada/net/binary_upgrade.h"
#include "tronada/net/bind_sockets.h"
#include "tronada/net/systemd.h"
#include "tronada/websocket/websocket_connection.h"

namespace tronada::cli {

std::vector<int> open_listening_sockets(const std::vector<BindAddress>& binds) {
  std::vector<int> fds = systemd_listen_fds();
  if (!fds.empty()) {
    log::info("server", "serving " + std::to_string(fds.size()) + " inherited socket(s)");
  } else {
    for (const auto& b : binds) {
      if (b.kind == BindAddress::Kind::unix_socket) {
        fds.push_back(bind_unix_socket(b.path, 0660));
      } else {
        for (int fd : bind_sockets(b.port, b.host, kHTTPListener)) fds.push_back(fd);
      }
      log::info("server", "listening on " + b.to_string());
    }
  }
  upgrade::set_listen_sockets(fds);
  return fds;
}

void listen_all(HTTPServer& server, const std::vector<BindAddress>& binds) {
  server.add_sockets(open_listening_sockets(binds));
}

UpgradeOnSignal::UpgradeOnSignal(std::chrono::milliseconds upgrade_timeout) {
  upgrade::set_timeout(upgrade_timeout);
  // Started by a binary upgrade: the old process drains once this one accepts, which
  // it does from the loop's first turn (the sockets listen already).
  upgrade::report_ready();
  IOLoop& loop = IOLoop::current();
  // Polled, never waited on: the new binary's readiness byte or its failure shows up
  // within a tick. Ready: this process drains exactly as on SIGTERM.
  auto check = [] {
    if (upgrade::poll(0) == upgrade::Event::ready) ::kill(::getpid(), SIGTERM);
  };
  // Each signal is acted on as it is handled, not at the next tick: two in a row are
  // two requests (the second refused while the first is in flight), never one.
  loop.add_signal_handler(SIGUSR2, [check] {
    upgrade::request();
    check();
  });
  watch_ = std::make_unique<PeriodicCallback>(check, std::chrono::milliseconds(100));
  watch_->start();
}

UpgradeOnSignal::~UpgradeOnSignal() {
  watch_->stop();
  IOLoop::current().remove_signal_handler(SIGUSR2);
}

void configure_protocols(HTTPServer& server, const CommonOptions& options) {
  // Before TLS: the ALPN list offered depends on whether HTTP/2 is on.
  if (options.no_http2) server.disable_http2();
  if (auto tls = options.tls_config()) {
    server.set_ssl_config(std::move(*tls));
    log::info("server",
              std::string("TLS on with ") + options.certfile->c_str() +
                  (options.sni_certs.empty() ? ""
                                             : " and " + std::to_string(options.sni_certs.size()) +
                                                   " SNI certificate(s)") +
                  (options.client_ca ? "; client certificates required" : ""));
  }
}

void reload_certificates(HTTPServer& server) {
  std::shared_ptr<SSLContext> ssl = server.ssl_context();
  if (!ssl) return;
  // File reads stay off the loop thread; reload() is thread-safe and swaps in one step.
  IOLoop::current().run_in_threadpool([ssl] { ssl->reload(); },
                                      [](std::exception_ptr error) {
                                        if (!error) {
                                          log::info("server",
                                                    "TLS certificates reloaded; new "
                                                    "connections get them");
                                          return;
                                        }
                                        try {
                                          std::rethrow_exception(error);
                                        } catch (const std::exception& e) {
                                          log::error("server",
                                                     std::string("TLS reload failed, keeping the "
                                                                 "old certificates: ") +
                                                         e.what());
                                        }
                                      });
}

void run_until_signalled(HTTPServer& server, const CommonOptions& options, ProcessRole role) {
  configure_protocols(server, options);
  std::optional<UpgradeOnSignal> upgrade;
  if (role == ProcessRole::single) {
    upgrade.emplace(options.upgrade_timeout.value_or(std::chrono::seconds(30)));
  }
  run_until_signalled(server, std::chrono::seconds(30), {},
                      options.drain_delay.value_or(std::chrono::milliseconds(0)));
}

void report_draining() {
  if (metrics::SharedRegion* region = metrics::current()) {
    region->own()->draining.store(1, std::memory_order_relaxed);
  }
}

namespace {

// What the admin listener reads of this process: that the loop turns, and the open
// connections by protocol. Once a second, so no per-connection hook is needed.
void publish_state(const HTTPServer& server) {
  metrics::SharedRegion* region = metrics::current();
  if (!region) return;
  metrics::SlotState& s = *region->own();
  constexpr auto relaxed = std::memory_order_relaxed;
  s.connections[static_cast<std::size_t>(metrics::Protocol::http1)].store(
      static_cast<std::int64_t>(server.http1_connections()), relaxed);
  s.connections[static_cast<std::size_t>(metrics::Protocol::h2)].store(
      static_cast<std::int64_t>(server.http2_connections()), relaxed);
  s.connections[static_cast<std::size_t>(metrics::Protocol::websocket)].store(
      static_cast<std::int64_t>(ws::WebSocketConnection::open_server_connections()), relaxed);
  metrics::heartbeat();
}

std::size_t still_open(const HTTPServer& server) {
  return server.open_connections() + ws::WebSocketConnection::open_server_connections() +
         open_tunnels();
}

}  // namespace

void run_until_signalled(HTTPServer& server, std::chrono::milliseconds drain_timeout,
                         std::function<void()> on_hangup, std::chrono::milliseconds drain_delay) {
  IOLoop& loop = IOLoop::current();
  if (!on_hangup) on_hangup = [&server] { reload_certificates(server); };
  bool stopping = false;
  std::unique_ptr<PeriodicCallback> watcher;
  std::unique_ptr<PeriodicCallback> publisher;
  if (metrics::current()) {
    publisher = std::make_unique<PeriodicCallback>([&server] { publish_state(server); },
                                                   std::chrono::seconds(1));
    publisher->start();
    // Ready once the loop turns: the listeners are open by now.
    loop.add_callback([&server] {
      publish_state(server);
      metrics::current()->own()->ready.store(1, std::memory_order_relaxed);
    });
  }
  auto drain = [&] {
    log::info("server", "draining: finishing " + std::to_string(server.open_connections()) +
                            " open connection(s)");
    server.stop();
    server.close_all_connections();
    ws::WebSocketConnection::close_all_server(ws::close_code::kGoingAway, "server shutting down");
    // Proxied WebSockets get the same 1001, on both sides; other tunnels just close.
    drain_tunnels(drain_timeout);
    if (still_open(server) == 0) {
      loop.stop();
      return;
    }
    // Poll until in-flight requests (and WebSocket close handshakes) are done; the
    // timeout bounds a stuck one.
    watcher = std::make_unique<PeriodicCallback>(
        [&] {
          if (still_open(server) == 0) loop.stop();
        },
        std::chrono::milliseconds(50));
    watcher->start();
    loop.call_later(drain_timeout, [&] {
      log::warning("server", "drain timeout: closing remaining connections");
      loop.stop();
    });
  };
  auto begin_shutdown = [&](const char* why) {
    if (stopping) {
      log::warning("server", std::string(why) + " again: stopping now");
      loop.stop();
      return;
    }
    stopping = true;
    report_draining();
    if (drain_delay > std::chrono::milliseconds(0)) {
      log::info("server", std::string(why) + ": not ready; serving " +
                              std::to_string(drain_delay.count()) + " ms more before draining");
      loop.call_later(drain_delay, drain);
      return;
    }
    log::info("server", std::string(why));
    drain();
  };
  loop.add_signal_handler(SIGINT, [&] { begin_shutdown("interrupted"); });
  loop.add_signal_handler(SIGTERM, [&] { begin_shutdown("terminated"); });
  loop.add_signal_handler(SIGHUP, [&] {
    if (stopping) return;
    log::info("server", "hangup: reloading");
    on_hangup();
  });
  std::signal(SIGPIPE, SIG_IGN);
  loop.start();
  if (watcher) watcher->stop();
  if (publisher) publisher->stop();
  loop.remove_signal_handler(SIGINT);
  loop.remove_signal_handler(SIGTERM);
  loop.remove_signal_handler(SIGHUP);
}

}  // namespace tronada::cli
