#include "tronada/gateway/memory_rate_store.h"

#include <algorithm>

namespace tronada {

MemoryRateStore::MemoryRateStore(RateWindow window, std::size_t max_keys)
    : window_(window), max_keys_(std::max<std::size_t>(max_keys, 1)) {}

RateDecision MemoryRateStore::hit(std::string_view key, std::int64_t now_ms) {
  std::int64_t w = window_.window(now_ms);
  auto found = index_.find(key);
  if (found == index_.end()) {
    if (index_.size() >= max_keys_) {
      index_.erase(lru_.back().key);
      lru_.pop_back();
      ++evictions_;
    }
    lru_.push_front(Entry{std::string(key), w, 0, 0});
    found = index_.emplace(lru_.front().key, lru_.begin()).first;
  } else if (found->second != lru_.begin()) {
    lru_.splice(lru_.begin(), lru_, found->second);
  }
  Entry& e = *found->second;
  if (w == e.window + 1) {
    e.previous = e.current;
    e.current = 0;
    e.window = w;
  } else if (w > e.window + 1) {
    e.previous = 0;
    e.current = 0;
    e.window = w;
  } else if (w < e.window) {
    // The clock stepped back: decide as at the start of the window we already counted
    // in (the whole previous window still weighs), never with counts reset.
    now_ms = e.window * window_.period_ms();
  }
  RateDecision d = window_.decide(e.previous, e.current, now_ms);
  if (d.allowed) ++e.current;
  return d;
}

}  // namespace tronada
