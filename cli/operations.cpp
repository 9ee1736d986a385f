#include "cli/operations.h"

#include "tronada/base/log.h"

namespace tronada::cli {

Operations::Operations(const std::optional<BindAddress>& admin, int workers) {
  if (!admin) return;
  // A recycled worker drains while its replacement starts: room for both, and the
  // single-process case.
  std::size_t slots = static_cast<std::size_t>(workers < 1 ? 1 : workers) * 2 + 1;
  region_ = metrics::SharedRegion::create(slots);
  admin_ = std::make_unique<AdminServer>(*admin, *region_);
  log::info("server", "admin listener (/metrics, /healthz, /readyz) on " + admin->to_string());
}

Operations::~Operations() {
  admin_.reset();  // the thread reads the region: stop it first
}

void Operations::start_listener() {
  if (admin_) admin_->start();
}

void Operations::attach_process() {
  if (region_ && !region_->attach()) {
    log::warning("server", "no free metrics slot: this process is not measured");
  }
}

std::function<void(metrics::RestartCause)> Operations::restart_counter() const {
  if (!region_) return {};
  // The region outlives the master's loop: it is freed only when the master returns,
  // and a master never returns from supervising.
  metrics::SharedRegion* region = region_.get();
  return [region](metrics::RestartCause cause) { region->count_worker_restart(cause); };
}

metrics::RouteSeries* route_metrics(std::string_view route, std::string_view backend) {
  metrics::SharedRegion* region = metrics::current();
  if (!region) return nullptr;
  metrics::RouteSeries* series = region->series(route, backend);
  if (!series) {
    static bool warned = false;
    if (!warned) {
      warned = true;
      log::warning("server", "more than " + std::to_string(metrics::kMaxSeries) +
                                 " routes: the rest are not measured");
    }
  }
  return series;
}

}  // namespace tronada::cli
