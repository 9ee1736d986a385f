// MemoryRateStore: rate-limit counters for one process, bounded in memory. Sans-I/O:
// the caller passes the time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

#include "tronada/gateway/rate_window.h"

namespace tronada {

/// The sliding-window counts (RateWindow) of up to `max_keys` keys (client addresses,
/// API keys...). A key seen for the first time when the table is full takes the place
/// of the key used least recently, whose window is then the stalest: an attacker who
/// sprays keys can only make us forget idle clients, never grow memory. A forgotten
/// key starts again with a full budget, the same as a key whose windows expired.
///
/// A clock that steps back (the caller's; the server passes the steady clock, but tests
/// and other callers may not) never resets a key's counts: the stored window stays the
/// current one until time catches up with it.
class MemoryRateStore {
 public:
  MemoryRateStore(RateWindow window, std::size_t max_keys);

  /// Decides one request for `key` at `now_ms` and counts it when allowed.
  RateDecision hit(std::string_view key, std::int64_t now_ms);

  std::size_t size() const { return index_.size(); }
  std::size_t max_keys() const { return max_keys_; }
  /// Keys forgotten to make room, ever.
  std::uint64_t evictions() const { return evictions_; }
  const RateWindow& window() const { return window_; }

 private:
  struct Entry {
    std::string key;
    std::int64_t window = 0;
    std::int64_t previous = 0;
    std::int64_t current = 0;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };

  RateWindow window_;
  std::size_t max_keys_;
  std::uint64_t evictions_ = 0;
  std::list<Entry> lru_;  // most recently used first
  // Keys are views of the entries' own strings: list nodes never move.
  std::unordered_map<std::string_view, std::list<Entry>::iterator, Hash, std::equal_to<>> index_;
};

}  // namespace tronada
