// DnsRefresh: what to do with each answer when a name is looked up again and again
// (upstreams found by DNS). Sans-I/O: it is told answers, failures and the time, and
// says what changed and when to ask next; UpstreamDiscovery does the asking.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tronada/loop/io_loop.h"

namespace tronada {

/// One name's refresh state: the last good set of addresses and when to look again.
///
/// Rules (nginx's `resolver ... valid=`, Envoy's STRICT_DNS with respect_dns_ttl):
///   - The next lookup is due after min(interval, the answer's TTL), but never sooner
///     than `min_interval`, so a TTL of 0 cannot make us query in a loop.
///   - A failed lookup, and an answer with no address, keeps the last good set (an
///     outage of the DNS server must not empty the group) and is retried after
///     min(interval, retry_interval), with the same floor.
///   - Failures are worth a log line when the name starts failing and then at most
///     once per `log_every`; a success after failures is worth one too.
class DnsRefresh {
 public:
  struct Options {
    /// Longest time an answer is used; the TTL may shorten it. Must be positive.
    Duration interval = std::chrono::seconds(30);
    /// Shortest time between lookups, whatever the TTL says.
    Duration min_interval = std::chrono::seconds(1);
    /// After a failure, ask again this soon (when shorter than the interval).
    Duration retry_interval = std::chrono::seconds(5);
    /// Failure log lines at most this often while the failures go on.
    Duration log_every = std::chrono::seconds(60);
  };

  /// What an answer changed: addresses to add to the group and to drain out of it.
  struct Change {
    std::vector<std::string> added;
    std::vector<std::string> removed;
    bool empty() const { return added.empty() && removed.empty(); }
  };

  explicit DnsRefresh(Options options);

  /// An answer arrived at `now`: `addresses` (any order, duplicates allowed) valid for
  /// `ttl` (nullopt: unknown). An empty list counts as a failure ("no address") and
  /// changes nothing.
  Change answer_received(std::vector<std::string> addresses, std::optional<Duration> ttl,
                         TimePoint now);
  /// The lookup failed at `now` (`why` is kept for the log line). The set stays as it
  /// is. Returns true when this failure deserves a log line (rate-limited).
  bool lookup_failed(std::string why, TimePoint now);

  /// When the next lookup is due; `now` + 0 before the first one.
  TimePoint next_lookup() const { return next_; }
  /// The current set, sorted; empty until the first good answer.
  const std::vector<std::string>& addresses() const { return current_; }
  bool has_answer() const { return answered_; }
  /// Failures since the last good answer, and the last reason.
  std::uint64_t failures() const { return failures_; }
  const std::string& last_error() const { return last_error_; }
  /// After lookup_failed returned true: the failures left unlogged before this one (the
  /// log line can say how many).
  std::uint64_t suppressed_failures() const { return suppressed_; }
  /// True when the answer just received ended a run of failures (log "resolves again").
  bool recovered() const { return recovered_; }

 private:
  Duration clamp(Duration d) const;

  Options options_;
  std::vector<std::string> current_;
  bool answered_ = false;
  TimePoint next_{};
  std::uint64_t failures_ = 0;
  std::uint64_t unlogged_ = 0;
  std::uint64_t suppressed_ = 0;
  std::optional<TimePoint> last_logged_;
  std::string last_error_;
  bool recovered_ = false;
};

}  // namespace tronada
