// UpstreamDiscovery: keeps the host names of a proxy route's upstreams (or a FastCGI
// backend's) resolved, looking each up again as DnsRefresh says, and reports changes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tronada/async/event.h"
#include "tronada/gateway/dns_refresh.h"
#include "tronada/loop/io_loop.h"

namespace tronada {

class DnsResolver;

struct DiscoveryOptions {
  /// Longest time between two lookups of a name; the answer's TTL may make it shorter,
  /// never below one second. Must be positive (zero means "no discovery" to callers).
  Duration interval = std::chrono::seconds(30);
  /// DNS servers ("127.0.0.1:5353", "10.0.0.2,10.0.0.3"); empty: /etc/resolv.conf.
  std::string resolver;
  /// Names the log lines ("proxy", "fastcgi").
  std::string logger = "proxy";
};

/// Looks up each name now, then again whenever its DnsRefresh says, on the loop it was
/// started on, and calls `on_change(index, addresses)` with the name's whole current set
/// each time the set changes. A failed lookup keeps the last good set (on_change is not
/// called) and is logged, rate-limited; counters say how lookups went.
///
/// Lifetime: owned by its user (a ProxyRoute); destroy it on the loop thread. It owns
/// the DnsResolver (which drops pending lookups when destroyed) and its timeouts, which
/// the destructor removes; callbacks hold only a weak token, so none runs after it.
class UpstreamDiscovery {
 public:
  using ChangeCallback =
      std::function<void(std::size_t index, const std::vector<std::string>& addresses)>;

  /// `names[i]` is reported as index i. Throws std::invalid_argument for a bad
  /// resolver list or interval.
  UpstreamDiscovery(std::vector<std::string> names, DiscoveryOptions options,
                    ChangeCallback on_change);
  ~UpstreamDiscovery();
  UpstreamDiscovery(const UpstreamDiscovery&) = delete;
  UpstreamDiscovery& operator=(const UpstreamDiscovery&) = delete;

  /// Starts the first lookups on the current loop. Idempotent.
  void start();

  const std::vector<std::string>& addresses(std::size_t index) const;

  /// True once every name's first lookup ended, with an answer or a failure.
  bool settled() const { return settled_.is_set(); }
  /// Completes when settled(), or fails with TimeoutError after `timeout`. Requests
  /// that arrive before the first answers wait here rather than connect by name: a
  /// name only our `resolver` knows would fail with the system's (at start-up and after
  /// every reload, which makes a new discovery).
  Future<void> wait_settled(Duration timeout) { return settled_.wait(timeout); }

  struct Stats {
    std::uint64_t lookups = 0;   // answers that were used
    std::uint64_t failures = 0;  // lookups that failed (or had no address)
    std::uint64_t changes = 0;   // answers that changed a set
  };
  const Stats& stats() const { return stats_; }
  /// The same for names[index] alone (for per-upstream metrics).
  const Stats& stats(std::size_t index) const { return names_.at(index).stats; }

 private:
  struct Name {
    std::string name;
    DnsRefresh refresh;
    TimeoutHandle timer;
    bool looked_up = false;  // its first lookup ended
    Stats stats;
  };
  void look_up(std::size_t index);
  void answered(std::size_t index, std::vector<std::string> addresses, std::optional<Duration> ttl,
                const std::string& error);
  void schedule(std::size_t index);
  void mark_looked_up(Name& n);

  DiscoveryOptions options_;
  ChangeCallback on_change_;
  std::vector<Name> names_;
  std::shared_ptr<DnsResolver> resolver_;
  IOLoop* loop_ = nullptr;
  Stats stats_;
  std::size_t unsettled_ = 0;  // names whose first lookup has not ended
  Event settled_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace tronada
