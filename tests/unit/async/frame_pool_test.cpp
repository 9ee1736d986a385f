// The per-thread coroutine frame pool: a freed frame serves the next of its size class,
// at most a bounded number of bytes are kept, and frames over the largest class are not kept.
#include "tronada/async/detail/frame_pool.h"
#include "tronada/async/detail/pool_allocator.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

using namespace tronada::detail;

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kPooled = false;  // sanitizer builds take every frame from operator new
#else
constexpr bool kPooled = true;
#endif

TEST(FramePool, AFreedFrameServesTheNextOfItsSizeClass) {
  if (!kPooled) GTEST_SKIP() << "no pool under sanitizers";
  void* a = allocate_frame(100);
  free_frame(a, 100);
  void* b = allocate_frame(120);  // same 64-byte class (65..128)
  EXPECT_EQ(a, b);
  free_frame(b, 120);
}

TEST(FramePool, KeepsABoundedNumberOfBytes) {
  if (!kPooled) GTEST_SKIP() << "no pool under sanitizers";
  std::size_t before = parked_frames();
  std::vector<void*> frames;
  // 320-byte blocks, four times what may stay parked.
  std::size_t n = 4 * kMaxParkedFrameBytes / 320;
  for (std::size_t i = 0; i < n; ++i) frames.push_back(allocate_frame(300));
  for (void* f : frames) free_frame(f, 300);
  std::size_t kept = parked_frames() - before;
  EXPECT_GT(kept, 64u);  // more than one request's worth: a burst of 64 is served again
  EXPECT_LE(kept * 320, kMaxParkedFrameBytes);  // the rest went back to operator delete
}

TEST(FramePool, LargeFramesAreNotKept) {
  std::size_t before = parked_frames();
  void* big = allocate_frame(64 * 1024);
  free_frame(big, 64 * 1024);
  EXPECT_EQ(parked_frames(), before);
}

struct Pooled : PooledObject {
  virtual ~Pooled() = default;
  char payload[200];
};
struct BiggerPooled : Pooled {
  char more[300];
};

TEST(FramePool, PooledObjectsAndSharedBlocksReuseTheLists) {
  if (!kPooled) GTEST_SKIP() << "no pool under sanitizers";
  // Deleting through the base passes the derived size: the block goes to its own class.
  Pooled* big = new BiggerPooled;
  void* where = big;
  delete big;
  std::unique_ptr<Pooled> again(new BiggerPooled);
  EXPECT_EQ(static_cast<void*>(again.get()), where);

  std::weak_ptr<int> weak;
  void* block = nullptr;
  {
    auto shared = std::allocate_shared<int>(PoolAllocator<int>(), 7);
    weak = shared;
    block = shared.get();
  }
  EXPECT_TRUE(weak.expired());
  weak.reset();  // the control block (with the int in it) goes back to the pool now
  auto next = std::allocate_shared<int>(PoolAllocator<int>(), 8);
  EXPECT_EQ(static_cast<void*>(next.get()), block);
}

}  // namespace
