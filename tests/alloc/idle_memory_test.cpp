// Heap bytes an idle keep-alive HTTP/1.1 connection holds after it answered one request
// (project issue 18: nginx needs about 532 bytes per idle connection, the goal is 1 KiB).
//
// Measured by idle_heap.h: each connection sends one request and reads the answer, then
// sits idle.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "hello_handler.h"
#include "idle_heap.h"
#include "tronada/http/http1_connection.h"
#include "tronada/web/application.h"
#include "tronada/web/request_handler.h"

using namespace tronada;

namespace {

using alloc_test::HelloHandler;

// Opens `count` connections, each answered once and left open in `fds`.
bool open_idle_connections(int port, int count, std::vector<int>& fds) {
  static const char kRequest[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  char buf[4096];
  for (int i = 0; i < count; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    fds.push_back(fd);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return false;
    if (::send(fd, kRequest, sizeof kRequest - 1, MSG_NOSIGNAL) != sizeof kRequest - 1) {
      return false;
    }
    // The whole response: a head and Content-Length's 12 bytes of body.
    std::size_t have = 0;
    for (;;) {
      ssize_t n = ::recv(fd, buf + have, sizeof buf - have, 0);
      if (n <= 0) return false;
      have += static_cast<std::size_t>(n);
      const char* end = static_cast<const char*>(memmem(buf, have, "\r\n\r\n", 4));
      if (end && have >= static_cast<std::size_t>(end - buf) + 4 + 12) break;
      if (have == sizeof buf) return false;
    }
  }
  return true;
}

TEST(IdleMemory, KeepAliveConnectionAfterOneRequest) {
  constexpr int kWarmup = 50;
  constexpr int kMeasured = 200;
  std::printf(
      "sizeof HTTP1Connection %zu, HTTP1RequestParser %zu, HTTP1ResponseWriter %zu, "
      "IOStream %zu, uv_tcp_t %zu\n",
      sizeof(HTTP1Connection), sizeof(HTTP1RequestParser), sizeof(HTTP1ResponseWriter),
      sizeof(IOStream), sizeof(uv_tcp_t));

  ApplicationSettings settings;
  settings.log_function = [](const RequestHandler&) {};
  Application app({Rule("/", handler<HelloHandler>())}, settings);
  HTTPServer& server = app.listen(0, "127.0.0.1");
  int port = server.ports().at(0);
  auto measured =
      tronada::testing::idle_heap_per_connection(port, kWarmup, kMeasured, open_idle_connections);
  ASSERT_TRUE(measured.has_value());
  double per_connection = *measured;
  std::printf("heap bytes per idle keep-alive connection: %.0f\n", per_connection);
  // Measured 2026-12-07: 2,169 bytes at first (HTTP1Connection 912 with the parser's 456
  // in it, IOStream 512, uv_tcp_t 248, the response buffer's capacity, set nodes); 1,288
  // once the parser, the response buffer and the request moved into a request state that
  // idle connections give back; 1,160 once IOStream kept its read-call state only while
  // it has read calls (392 bytes); 1,049 once IOStream (320 bytes) kept its write
  // completions in a side struct made on first use, packed its flags, learnt of its
  // acceptor through a shared StreamAcceptor rather than a std::function that allocated
  // per stream, and shared one allocation with its control block; 985 once the
  // connection held itself in a member instead of a captured shared_ptr (which
  // std::function stores on the heap) and the server listed its connections in an
  // intrusive list instead of an unordered_set (a node and a bucket each).
  // What is left above nginx's 532: the connection's 312 bytes (two timeout entries of
  // 48, the peer's address, the write-progress marks) with its control block (336 in
  // malloc's chunks), IOStream's 320 with its control block (352: callbacks of 32 bytes
  // each for data, EOF and close, write accounting, the read buffer's empty string), the
  // uv_tcp_t's 248 (256), and libuv's watcher slot. The bound is the goal, 1 KiB;
  // lower it as the idle footprint shrinks, never raise it.
  EXPECT_LE(per_connection, 1024);
}

}  // namespace
