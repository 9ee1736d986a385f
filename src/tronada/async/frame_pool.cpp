#include "tronada/async/detail/frame_pool.h"

#include <new>

// Under AddressSanitizer or ThreadSanitizer a recycled frame would hide a use after
// free or a race on a destroyed coroutine: there every frame comes from operator new.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TRONADA_FRAME_POOL 0
#else
#define TRONADA_FRAME_POOL 1
#endif

namespace tronada::detail {

#if TRONADA_FRAME_POOL
namespace {

constexpr std::size_t kGranule = 64;
constexpr std::size_t kClasses = 16;  // frames up to 1 KiB

struct FreeFrame {
  FreeFrame* next;
};

// Trivially destructible, so it stays usable while other thread_locals (an IOLoop
// whose tasks free frames) are destroyed after the reaper below has run.
struct Lists {
  FreeFrame* head[kClasses];
  std::size_t count[kClasses];
  std::size_t bytes;  // parked, over every class
  bool closed;        // the thread is exiting: frees go straight to operator delete
};
thread_local Lists lists;

// Frees the parked frames when the thread exits.
struct Reaper {
  ~Reaper() {
    for (std::size_t c = 0; c < kClasses; ++c) {
      while (FreeFrame* f = lists.head[c]) {
        lists.head[c] = f->next;
        ::operator delete(f);
      }
      lists.count[c] = 0;
    }
    lists.bytes = 0;
    lists.closed = true;
  }
};
thread_local Reaper reaper;

std::size_t size_class(std::size_t size) {
  return (size + kGranule - 1) / kGranule - 1;
}

}  // namespace

void* allocate_frame(std::size_t size) {
  std::size_t c = size_class(size);
  if (c < kClasses) {
    if (FreeFrame* f = lists.head[c]) {
      lists.head[c] = f->next;
      --lists.count[c];
      lists.bytes -= (c + 1) * kGranule;
      return f;
    }
    (void)&reaper;  // odr-use: constructs the reaper on this thread's first frame
    return ::operator new((c + 1) * kGranule);
  }
  return ::operator new(size);
}

void free_frame(void* frame, std::size_t size) noexcept {
  // Bounded in bytes, not per class: a proxied request in flight holds several frames and
  // pooled objects of one class for its whole round trip, so at 64 concurrent requests a
  // bound of 64 per class sent most of them back to malloc (about 1,000 instructions per
  // request); the byte bound still caps what an idle thread keeps.
  std::size_t c = size_class(size);
  if (c < kClasses && !lists.closed && lists.bytes + (c + 1) * kGranule <= kMaxParkedFrameBytes) {
    auto* f = static_cast<FreeFrame*>(frame);
    f->next = lists.head[c];
    lists.head[c] = f;
    ++lists.count[c];
    lists.bytes += (c + 1) * kGranule;
    return;
  }
  ::operator delete(frame);
}

std::size_t parked_frames() noexcept {
  std::size_t n = 0;
  for (std::size_t c = 0; c < kClasses; ++c) n += lists.count[c];
  return n;
}

#else

std::size_t parked_frames() noexcept {
  return 0;
}

void* allocate_frame(std::size_t size) {
  return ::operator new(size);
}
void free_frame(void* frame, std::size_t) noexcept {
  ::operator delete(frame);
}

#endif

}  // namespace tronada::detail
