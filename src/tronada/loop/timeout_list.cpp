#include "tronada/loop/timeout_list.h"

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace tronada {

void TimeoutEntry::disarm() {
  if (list_) list_->unlink(*this);
}

TimeoutList::TimeoutList(IOLoop& loop, Duration duration)
    : loop_(loop),
      duration_(duration),
      // At least 1 ms: an entry re-armed from its own callback must land after the
      // firing pass, or a zero duration would fire it again in the same pass forever.
      duration_ms_(std::max<std::uint64_t>(
          1, static_cast<std::uint64_t>(std::max<std::int64_t>(
                 0, std::chrono::ceil<std::chrono::milliseconds>(duration).count())))),
      timer_(new uv_timer_t) {
  uv_timer_init(loop.uv(), timer_);
  timer_->data = this;
  // The timer alone must not keep the loop running.
  uv_unref(reinterpret_cast<uv_handle_t*>(timer_));
}

TimeoutList::~TimeoutList() {
  while (head_) unlink(*head_);
  timer_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(timer_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

void TimeoutList::arm(TimeoutEntry& entry) {
  if (entry.list_) entry.list_->unlink(entry);
  entry.list_ = this;
  entry.deadline_ms_ = uv_now(loop_.uv()) + duration_ms_;
  entry.prev_ = tail_;
  entry.next_ = nullptr;
  if (tail_) {
    tail_->next_ = &entry;
  } else {
    head_ = &entry;
  }
  tail_ = &entry;
  if (scheduled_for_ == 0) schedule();
}

void TimeoutList::unlink(TimeoutEntry& entry) {
  if (entry.prev_) {
    entry.prev_->next_ = entry.next_;
  } else {
    head_ = entry.next_;
  }
  if (entry.next_) {
    entry.next_->prev_ = entry.prev_;
  } else {
    tail_ = entry.prev_;
  }
  entry.prev_ = entry.next_ = nullptr;
  entry.list_ = nullptr;
  // The timer stays set for the old head: when it fires early it reschedules. This
  // saves a timer-heap update on every disarm, which happens once per request.
}

void TimeoutList::schedule() {
  if (!head_) {
    scheduled_for_ = 0;
    uv_timer_stop(timer_);
    return;
  }
  std::uint64_t now = uv_now(loop_.uv());
  scheduled_for_ = head_->deadline_ms_;
  uv_timer_start(timer_, &TimeoutList::on_timer, scheduled_for_ > now ? scheduled_for_ - now : 0,
                 0);
}

void TimeoutList::on_timer(uv_timer_t* timer) {
  auto* self = static_cast<TimeoutList*>(timer->data);
  if (!self) return;
  std::uint64_t now = uv_now(self->loop_.uv());
  // Fire every expired entry. An entry's callback may arm or disarm others (or
  // destroy its owner), so take each head afresh.
  while (self->head_ && self->head_->deadline_ms_ <= now) {
    TimeoutEntry* e = self->head_;
    self->unlink(*e);
    // This runs inside libuv (C): an exception must not unwind through it. Log it, as
    // every other callback the loop runs, and go on with the other expired entries.
    TimeoutEntry::Fire fire = e->fire_;
    void* context = e->context_;
    IOLoop::invoke_logged("timeout", [fire, context] { fire(context); });
  }
  self->schedule();
}

}  // namespace tronada
