// TimeoutList: many timeouts of one fixed duration on a single libuv timer.
#pragma once

#include <uv.h>

#include "tronada/loop/io_loop.h"

namespace tronada {

class TimeoutList;

/// One timeout slot, embedded in its owner (a connection). Costs six words and no
/// allocation; arming and disarming are O(1). An entry is on at most one list at a time.
class TimeoutEntry {
 public:
  using Fire = void (*)(void* context);
  TimeoutEntry(Fire fire, void* context) : fire_(fire), context_(context) {}
  ~TimeoutEntry() { disarm(); }
  TimeoutEntry(const TimeoutEntry&) = delete;
  TimeoutEntry& operator=(const TimeoutEntry&) = delete;

  bool armed() const { return list_ != nullptr; }
  void disarm();

 private:
  friend class TimeoutList;
  Fire fire_;
  void* context_;
  TimeoutList* list_ = nullptr;
  TimeoutEntry* prev_ = nullptr;
  TimeoutEntry* next_ = nullptr;
  std::uint64_t deadline_ms_ = 0;
};

/// Timeouts that all last the same `duration` (idle keep-alive, header read, ...). Since
/// every entry is armed for the same duration, appending keeps the list sorted by
/// deadline and one timer at the head serves all of them, as h2o's timeout lists do.
/// This is what lets 100,000 idle connections each have a timeout at no cost per
/// connection beyond the entry itself.
///
/// An entry's callback should not throw; if it does, the exception is logged (as
/// IOLoop::invoke_logged does) and the other expired entries still fire.
///
/// Lifetime: owns one uv_timer_t (heap, freed in its close callback); the destructor
/// disarms every entry and closes the timer, so entries may outlive their list.
class TimeoutList {
 public:
  TimeoutList(IOLoop& loop, Duration duration);
  ~TimeoutList();
  TimeoutList(const TimeoutList&) = delete;
  TimeoutList& operator=(const TimeoutList&) = delete;

  /// (Re)arms `entry` to fire `duration` from now, moving it off any other list.
  void arm(TimeoutEntry& entry);
  Duration duration() const { return duration_; }
  bool empty() const { return head_ == nullptr; }

 private:
  friend class TimeoutEntry;
  void unlink(TimeoutEntry& entry);
  void schedule();
  static void on_timer(uv_timer_t* timer);

  IOLoop& loop_;
  Duration duration_;
  std::uint64_t duration_ms_;
  uv_timer_t* timer_;
  TimeoutEntry* head_ = nullptr;
  TimeoutEntry* tail_ = nullptr;
  std::uint64_t scheduled_for_ = 0;  // deadline the timer is set for, 0 if stopped
};

}  // namespace tronada
