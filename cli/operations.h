// What `--admin` turns on for a server command: the metrics region shared by its
// processes and the admin listener that reads it.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cli/admin_server.h"
#include "cli/bind_address.h"
#include "tronada/metrics/shared_region.h"

namespace tronada::cli {

/// Off (every call does nothing) without an admin address: no region, no thread, no
/// per-request cost. With one, the order is:
///
///   Operations ops(admin, workers);  // before binding and forking: maps, binds
///   ops.start_listener();            // in the process that stays (master or only one)
///   ... fork ...
///   ops.attach_process();            // in each serving process, before its routes
///
/// Declare it before the routes and the server, so it outlives their counters.
class Operations {
 public:
  Operations(const std::optional<BindAddress>& admin, int workers);
  ~Operations();

  bool enabled() const { return region_ != nullptr; }
  void start_listener();
  /// Claims this process's slot; logs (and measures nothing) if none is free.
  void attach_process();
  /// What a master calls for each worker it replaces (WorkerSupervisorOptions::on_restart,
  /// fork_processes): counts tronada_worker_restarts_total; does nothing when off.
  std::function<void(metrics::RestartCause)> restart_counter() const;

 private:
  std::unique_ptr<metrics::SharedRegion> region_;
  std::unique_ptr<AdminServer> admin_;
};

/// This process's counters for a route (label values from the config), or nullptr when
/// metrics are off or the region's series are all taken (logged once).
metrics::RouteSeries* route_metrics(std::string_view route, std::string_view backend);

}  // namespace tronada::cli
