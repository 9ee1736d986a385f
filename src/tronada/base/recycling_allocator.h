// A per-thread cache of freed blocks of one size, and an allocator over it, for objects
// made and dropped at a high rate (HTTP/2's per-stream state).
#pragma once

#include <cstddef>
#include <memory>
#include <new>

namespace tronada {

namespace detail {

/// Freed blocks of one size kept for reuse on the same thread. An h2c connection with
/// ten requests in flight allocates ten stream states, requests and response channels
/// per read and frees them all a moment later: more of one size than glibc's
/// per-thread cache holds (7), so most went through _int_malloc and _int_free. A block
/// freed on another thread (a handler dropping its request on an executor) is kept there.
template <std::size_t Size, std::size_t Align>
class BlockCache {
 public:
  static void* take() {
    List& l = list();
    if (Node* n = l.head) {
      l.head = n->next;
      --l.count;
      return n;
    }
    return allocate();
  }
  static void give(void* p) noexcept {
    List& l = list();
    if (l.count >= kMaxCached) {
      release(p);
      return;
    }
    auto* n = static_cast<Node*>(p);
    n->next = l.head;
    l.head = n;
    ++l.count;
  }

 private:
  // Enough for the streams of a few busy connections at once; beyond, blocks go back.
  static constexpr std::size_t kMaxCached = 256;
  struct Node {
    Node* next;
  };
  static_assert(Size >= sizeof(Node));
  struct List {
    Node* head = nullptr;
    std::size_t count = 0;
    ~List() {
      while (Node* n = head) {
        head = n->next;
        release(n);
      }
    }
  };
  static List& list() {
    thread_local List l;
    return l;
  }
  static void* allocate() {
    if constexpr (Align > __STDCPP_DEFAULT_NEW_ALIGNMENT__) {
      return ::operator new(Size, std::align_val_t(Align));
    } else {
      return ::operator new(Size);
    }
  }
  static void release(void* p) noexcept {
    if constexpr (Align > __STDCPP_DEFAULT_NEW_ALIGNMENT__) {
      ::operator delete(p, std::align_val_t(Align));
    } else {
      ::operator delete(p);
    }
  }
};

/// An allocator taking single objects from a BlockCache (arrays from the heap): for
/// std::allocate_shared of per-stream objects.
template <typename T>
struct RecyclingAllocator {
  using value_type = T;
  using Cache = BlockCache<(sizeof(T) < sizeof(void*) ? sizeof(void*) : sizeof(T)), alignof(T)>;
  RecyclingAllocator() = default;
  template <typename U>
  RecyclingAllocator(const RecyclingAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    if (n == 1) return static_cast<T*>(Cache::take());
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if (n == 1) {
      Cache::give(p);
    } else {
      std::allocator<T>().deallocate(p, n);
    }
  }
  template <typename U>
  bool operator==(const RecyclingAllocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace detail

}  // namespace tronada
