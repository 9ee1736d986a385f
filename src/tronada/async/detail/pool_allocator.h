// The per-thread pool of frame_pool.h for per-request objects that are not coroutine
// frames: the request, its stream, the handler, the runner and their header vectors are
// each made and freed once per request, in the same sizes request after request.
#pragma once

#include <cstddef>
#include <new>

#include "tronada/async/detail/frame_pool.h"

namespace tronada::detail {

/// A standard allocator over allocate_frame/free_frame: for std::allocate_shared (the
/// object and its control block in one pooled block) and for containers whose storage
/// is made and freed per request. Stateless, so every instance can free what any
/// other allocated, on any thread. Like the frame pool it is bypassed under ASan and
/// TSan, where recycling would hide a use after free.
template <typename T>
struct PoolAllocator {
  using value_type = T;
  static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__,
                "the pool hands out operator new's default alignment only");

  PoolAllocator() noexcept = default;
  template <typename U>
  PoolAllocator(const PoolAllocator<U>&) noexcept {}

  T* allocate(std::size_t n) { return static_cast<T*>(allocate_frame(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { free_frame(p, n * sizeof(T)); }

  template <typename U>
  bool operator==(const PoolAllocator<U>&) const noexcept {
    return true;
  }
};

/// Class-scope operator new and delete from the pool, for a type made with `new` (a
/// handler from its factory, a message delegate in a unique_ptr). Deleting through a
/// virtual destructor passes the dynamic type's size, so subclasses of any size are fine.
/// Over-aligned subclasses and placement new go to the global forms.
struct PooledObject {
  static void* operator new(std::size_t size) { return allocate_frame(size); }
  static void operator delete(void* p, std::size_t size) noexcept { free_frame(p, size); }
  static void* operator new(std::size_t size, std::align_val_t align) {
    return ::operator new(size, align);
  }
  // The unsized form: clang (without -fsized-deallocation) declares no sized aligned one.
  static void operator delete(void* p, std::size_t, std::align_val_t align) noexcept {
    ::operator delete(p, align);
  }
  static void* operator new(std::size_t, void* place) noexcept { return place; }
  static void operator delete(void*, void*) noexcept {}
};

}  // namespace tronada::detail
