// Heap allocations per request on the keep-alive hello-world path (a bare request, and a
// browser-like one with long header values and a query), counted by replacing
// the global operator new in this test program only. The hot-path issue's goal, zero in
// the steady state, is met; the test holds it there, so a change that adds an allocation
// per request fails here instead of showing up months later as a slower benchmark.
//
// The server runs on the main thread's IOLoop; a client thread sends keep-alive GETs one
// at a time over loopback. Only the loop thread's allocations count.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <string_view>
#include <thread>

#include "tronada/web/application.h"
#include "tronada/web/request_handler.h"

namespace {

std::atomic<long> loop_allocations{0};
thread_local bool counting_thread = false;

std::atomic<int> trace_budget{0};

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

using namespace tronada;

namespace {

class HelloHandler : public RequestHandler {
 public:
  Task<void> get() override {
    set_header("Content-Type", "text/plain");
    write("Hello, world");
    co_return;
  }
};

// Sends `count` keep-alive GETs one after another; after request `mark_at[i]` has been
// answered, records the loop's allocation count in `marks[i]`.
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

// Loop-thread allocations per request over kMeasured keep-alive `request`s, after a
// warm-up that fills the pools.
double allocations_per_request(std::string_view request) {
  constexpr int kWarmup = 200;
  constexpr int kMeasured = 2000;

  ApplicationSettings settings;
  settings.log_function = [](const RequestHandler&) {};
  Application app({Rule("/", handler<HelloHandler>())}, settings);
  HTTPServer& server = app.listen(0, "127.0.0.1");
  int port = server.ports().at(0);
  IOLoop& loop = IOLoop::current();

  long at_a = 0, at_b = 0;
  bool client_ok = false;
  std::thread client([&] {
    client_ok =
        run_client(request, port, kWarmup + kMeasured, kWarmup, kWarmup + kMeasured, at_a, at_b);
    loop.add_callback([&loop] { loop.stop(); });
  });
  counting_thread = true;
  loop.start();
  counting_thread = false;
  client.join();

  EXPECT_TRUE(client_ok);
  return static_cast<double>(at_b - at_a) / kMeasured;
}

TEST(HelloAllocations, KeepAlivePathStaysWithinCeiling) {
  // Measured 2026-12-07: 18 per request at first; 9 once coroutine frames came from a
  // per-thread pool, response headers were reserved at once, the ETag moved into its
  // field and arguments were made on first use; 0 once the request, its HTTP/1 stream,
  // the handler with its shared_ptr block and runner and both header vectors came from
  // that pool too (detail::PoolAllocator, PooledObject), and header strings too long for
  // the inline buffer (the default Content-Type, the ETag) reused ones that destroyed
  // headers gave up. Keep it at 0: a change that allocates per request fails here.
  constexpr long kCeilingPerRequest = 0;
  double per_request =
      allocations_per_request("GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: alloc\r\n\r\n");
  std::printf("loop-thread allocations per keep-alive request: %.2f\n", per_request);
  // An average over many requests: half an allocation of slack lets a rare one (a
  // buffer growing once) pass, never one per request.
  EXPECT_LE(per_request, kCeilingPerRequest + 0.5);
}

TEST(HelloAllocations, BrowserLikeRequestWithAQuery) {
  // A browser's header values are longer than a string's inline buffer; they reuse the
  // strings earlier requests gave up, so they cost nothing either. Left (2026-12-07): the
  // query's two arguments, one pair vector growing 1, 2 (QueryArguments). Lower it as
  // that is recycled, never raise it.
  constexpr long kCeilingPerRequest = 2;
  double per_request = allocations_per_request(
      "GET /?a=1&b=2 HTTP/1.1\r\nHost: localhost:8888\r\n"
      "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/120.0 Safari/537.36\r\n"
      "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
      "Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n"
      "Cookie: session=abcdefghijklmnopqrstuvwxyz0123456789\r\n\r\n");
  std::printf("loop-thread allocations per browser-like request: %.2f\n", per_request);
  EXPECT_LE(per_request, kCeilingPerRequest + 0.5);
}

}  // namespace
