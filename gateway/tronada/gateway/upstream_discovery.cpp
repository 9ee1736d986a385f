#include "tronada/gateway/upstream_discovery.h"

#include <stdexcept>

#include "tronada/base/log.h"
#include "tronada/gateway/dns_resolver.h"

namespace tronada {

namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

UpstreamDiscovery::UpstreamDiscovery(std::vector<std::string> names, DiscoveryOptions options,
                                     ChangeCallback on_change)
    : options_(std::move(options)), on_change_(std::move(on_change)) {
  if (options_.interval <= Duration::zero()) {
    throw std::invalid_argument("resolve_interval must be positive");
  }
  DnsResolver::validate_servers(options_.resolver);
  DnsRefresh::Options refresh;
  refresh.interval = options_.interval;
  for (auto& n : names) names_.push_back(Name{std::move(n), DnsRefresh(refresh), {}, false});
  unsettled_ = names_.size();
  if (unsettled_ == 0) settled_.set();
}

UpstreamDiscovery::~UpstreamDiscovery() {
  *alive_ = false;
  if (loop_) {
    for (auto& n : names_) loop_->remove_timeout(n.timer);
  }
  if (resolver_) resolver_->close();
}

void UpstreamDiscovery::start() {
  if (loop_) return;
  loop_ = &IOLoop::current();
  resolver_ = DnsResolver::create(options_.resolver, loop_);
  for (std::size_t i = 0; i < names_.size(); ++i) look_up(i);
}

const std::vector<std::string>& UpstreamDiscovery::addresses(std::size_t index) const {
  return names_.at(index).refresh.addresses();
}

void UpstreamDiscovery::look_up(std::size_t index) {
  names_[index].timer = {};
  std::weak_ptr<bool> alive = alive_;
  try {
    resolver_->resolve(names_[index].name, [this, alive, index](DnsAnswer answer) {
      if (alive.expired()) return;
      answered(index, std::move(answer.addresses), answer.ttl, answer.error);
    });
  } catch (const std::exception& e) {
    // The channel could not be made (resolv.conf unreadable...): a failed lookup.
    answered(index, {}, std::nullopt, e.what());
  }
}

void UpstreamDiscovery::answered(std::size_t index, std::vector<std::string> addresses,
                                 std::optional<Duration> ttl, const std::string& error) {
  Name& n = names_[index];
  TimePoint now = loop_->time();
  if (!error.empty() || addresses.empty()) {
    ++stats_.failures;
    ++n.stats.failures;
    std::string why = error.empty() ? "the answer holds no address" : error;
    if (n.refresh.lookup_failed(why, now)) {
      std::string kept = n.refresh.has_answer()
                             ? "keeping its last addresses (" + join(n.refresh.addresses()) + ")"
                             : "no address known yet; connecting by name";
      std::string quiet = n.refresh.suppressed_failures() > 0
                              ? " (" + std::to_string(n.refresh.suppressed_failures()) +
                                    " more failures since the last report)"
                              : "";
      log::warning(options_.logger,
                   "DNS lookup of " + n.name + " failed: " + why + "; " + kept + quiet);
    }
    schedule(index);
    mark_looked_up(n);
    return;
  }
  ++stats_.lookups;
  ++n.stats.lookups;
  DnsRefresh::Change change = n.refresh.answer_received(std::move(addresses), ttl, now);
  if (n.refresh.recovered()) log::info(options_.logger, "DNS lookup of " + n.name + " works again");
  if (!change.empty()) {
    ++stats_.changes;
    ++n.stats.changes;
    std::string what = n.name + " resolves to " + join(n.refresh.addresses());
    if (!change.removed.empty()) what += "; draining " + join(change.removed);
    log::info(options_.logger, what);
    schedule(index);
    IOLoop::invoke_logged("upstream discovery", [&] { on_change_(index, n.refresh.addresses()); });
    mark_looked_up(n);
    return;
  }
  schedule(index);
  mark_looked_up(n);
}

void UpstreamDiscovery::mark_looked_up(Name& n) {
  if (n.looked_up) return;
  n.looked_up = true;
  // After on_change: whoever waited finds the group already updated.
  if (--unsettled_ == 0) settled_.set();
}

void UpstreamDiscovery::schedule(std::size_t index) {
  Name& n = names_[index];
  loop_->remove_timeout(n.timer);
  Duration delay = n.refresh.next_lookup() - loop_->time();
  if (delay < Duration::zero()) delay = Duration::zero();
  std::weak_ptr<bool> alive = alive_;
  n.timer = loop_->call_later(delay, [this, alive, index] {
    if (!alive.expired()) look_up(index);
  });
}

}  // namespace tronada
