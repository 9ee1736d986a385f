// Heap allocations per request on the keep-alive hello-world path (a bare request, and a
// browser-like one with long header values and a query), counted by replacing
// the global operator new in this test program only. The hot-path issue's goal, zero in
// the steady state, is met; the test holds it there, so a change that adds an allocation
// per request fails here instead of showing up months later as a slower benchmark.
//
// The server runs on the main thread's IOLoop; a client thread sends keep-alive GETs one
// at a time over loopback. Only the loop thread's allocations count.
#include <gtest/gtest.h>

#include <cstdio>
#include <string_view>

#include "alloc_counter.h"
#include "hello_handler.h"
#include "tronada/web/application.h"
#include "tronada/web/request_handler.h"

using namespace tronada;

namespace {

using alloc_test::HelloHandler;

// Loop-thread allocations per keep-alive `request` to a hello-world Application.
double allocations_per_request(std::string_view request) {
  ApplicationSettings settings;
  settings.log_function = [](const RequestHandler&) {};
  Application app({Rule("/", handler<HelloHandler>())}, settings);
  HTTPServer& server = app.listen(0, "127.0.0.1");
  return alloc_test::allocations_per_request(IOLoop::current(), server.ports().at(0), request);
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
