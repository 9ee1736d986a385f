#include "alloc_counter.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <thread>

namespace alloc_test {

std::atomic<long> loop_allocations{0};
thread_local bool counting_thread = false;
std::atomic<int> trace_budget{0};

}  // namespace alloc_test

using alloc_test::counting_thread;
using alloc_test::loop_allocations;
using alloc_test::trace_budget;

namespace {

// A place for a debugger's breakpoint: `gdb -ex 'break alloc_traced'` with
// ALLOC_TRACE=N set shows where the N allocations after warm-up come from.
extern "C" __attribute__((noinline)) void alloc_traced(std::size_t size) {
  asm volatile("" ::"r"(size));
}

void* counted_alloc(std::size_t size) {
  if (counting_thread) {
    loop_allocations.fetch_add(1, std::memory_order_relaxed);
    if (trace_budget.load(std::memory_order_relaxed) > 0) {
      trace_budget.fetch_sub(1);
      alloc_traced(size);
    }
  }
  if (size == 0) size = 1;
  if (void* p = std::malloc(size)) return p;
  throw std::bad_alloc();
}

}  // namespace

void* operator new(std::size_t size) {
  return counted_alloc(size);
}
void* operator new[](std::size_t size) {
  return counted_alloc(size);
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return counted_alloc(size);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}

namespace alloc_test {

bool run_client(std::string_view request, int port, int count, int mark_a, int mark_b, long& at_a,
                long& at_b) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return false;
  }
  std::string in;
  char buf[4096];
  bool ok = true;
  for (int i = 1; i <= count && ok; ++i) {
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size())) {
      ok = false;
      break;
    }
    // One response: the head, then Content-Length's 12 bytes of body.
    for (;;) {
      auto end = in.find("\r\n\r\n");
      if (end != std::string::npos && in.size() >= end + 4 + 12) {
        ok = in.compare(0, 15, "HTTP/1.1 200 OK") == 0;
        in.erase(0, end + 4 + 12);
        break;
      }
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {
        ok = false;
        break;
      }
      in.append(buf, static_cast<std::size_t>(n));
    }
    if (i == mark_a) {
      at_a = loop_allocations.load();
      if (const char* trace = std::getenv("ALLOC_TRACE")) trace_budget = std::atoi(trace);
    }
    if (i == mark_b) at_b = loop_allocations.load();
  }
  ::close(fd);
  return ok;
}

double allocations_per_request(tronada::IOLoop& loop, int port, std::string_view request,
                               int warmup, int measured) {
  long at_a = 0, at_b = 0;
  bool client_ok = false;
  std::thread client([&] {
    client_ok = run_client(request, port, warmup + measured, warmup, warmup + measured, at_a, at_b);
    loop.add_callback([&loop] { loop.stop(); });
  });
  counting_thread = true;
  loop.start();
  counting_thread = false;
  client.join();
  EXPECT_TRUE(client_ok);
  return static_cast<double>(at_b - at_a) / measured;
}

}  // namespace alloc_test
