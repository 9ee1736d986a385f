// Coroutine frames recycled per thread: every request runs several short coroutines
// (the handler's method, prepare, execute, the runner), each a heap frame of a few
// hundred bytes, allocated and freed in the same order request after request. The other
// per-request objects take their memory from the same lists (pool_allocator.h).
#pragma once

#include <cstddef>

namespace tronada::detail {

/// The most a thread keeps parked for reuse, over every size class.
inline constexpr std::size_t kMaxParkedFrameBytes = 256 * 1024;

/// Memory for a coroutine frame of `size` bytes: from this thread's free list of its
/// size class when one is there, else from operator new. Frames over the largest class
/// always come from operator new.
void* allocate_frame(std::size_t size);

/// Gives a frame back; `size` is the size it was allocated with. Keeps it on this
/// thread's free list unless the thread keeps kMaxParkedFrameBytes already, so a burst
/// of coroutines never pins its peak memory. A frame freed on another thread than the
/// one that allocated it simply joins that thread's list.
void free_frame(void* frame, std::size_t size) noexcept;

/// How many frames this thread keeps for reuse (for tests of the bound).
std::size_t parked_frames() noexcept;

/// Promise types inherit these so the compiler allocates their frames from the pool.
struct PooledFrame {
  static void* operator new(std::size_t size) { return allocate_frame(size); }
  static void operator delete(void* frame, std::size_t size) noexcept { free_frame(frame, size); }
};

}  // namespace tronada::detail
