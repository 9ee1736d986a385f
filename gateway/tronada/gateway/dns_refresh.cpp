#include "tronada/gateway/dns_refresh.h"

#include <algorithm>
#include <stdexcept>

namespace tronada {

DnsRefresh::DnsRefresh(Options options) : options_(options) {
  if (options_.interval <= Duration::zero()) {
    throw std::invalid_argument("a DNS refresh interval must be positive");
  }
  if (options_.min_interval < Duration::zero()) options_.min_interval = Duration::zero();
}

Duration DnsRefresh::clamp(Duration d) const {
  return std::max(std::min(d, options_.interval), options_.min_interval);
}

DnsRefresh::Change DnsRefresh::answer_received(std::vector<std::string> addresses,
                                               std::optional<Duration> ttl, TimePoint now) {
  std::sort(addresses.begin(), addresses.end());
  addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
  Change change;
  if (addresses.empty()) {
    recovered_ = false;
    lookup_failed("the answer holds no address", now);
    return change;
  }
  recovered_ = failures_ > 0;
  failures_ = 0;
  unlogged_ = suppressed_ = 0;
  last_logged_.reset();
  // Both sorted: one merge pass finds what came and what went.
  std::set_difference(addresses.begin(), addresses.end(), current_.begin(), current_.end(),
                      std::back_inserter(change.added));
  std::set_difference(current_.begin(), current_.end(), addresses.begin(), addresses.end(),
                      std::back_inserter(change.removed));
  current_ = std::move(addresses);
  answered_ = true;
  next_ = now + clamp(ttl.value_or(options_.interval));
  return change;
}

bool DnsRefresh::lookup_failed(std::string why, TimePoint now) {
  recovered_ = false;
  ++failures_;
  last_error_ = std::move(why);
  next_ = now + clamp(std::min(options_.retry_interval, options_.interval));
  if (!last_logged_ || now - *last_logged_ >= options_.log_every) {
    last_logged_ = now;
    suppressed_ = unlogged_;
    unlogged_ = 0;
    return true;
  }
  ++unlogged_;
  return false;
}

}  // namespace tronada
