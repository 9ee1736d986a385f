// Heap bytes an idle WebSocket connection holds once it was upgraded and echoed one
// message (project issue 18's second goal: at most 2 KiB).
//
// Measured by idle_heap.h: each WebSocket is upgraded, sends one short text message and
// reads its echo, then sits idle.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "idle_heap.h"
#include "tronada/web/application.h"
#include "tronada/web/websocket_handler.h"
#include "tronada/websocket/websocket_connection.h"

using namespace tronada;

namespace {

class EchoHandler : public WebSocketHandler {
 public:
  void on_message(std::string_view message, bool binary) override {
    (void)write_message(message, binary);
  }
};

// Reads until `buf` holds `want` bytes, or the head's end when `want` is 0.
bool read_some(int fd, char* buf, std::size_t size, std::size_t& have, std::size_t want) {
  for (;;) {
    if (want == 0 ? memmem(buf, have, "\r\n\r\n", 4) != nullptr : have >= want) return true;
    if (have == size) return false;
    ssize_t n = ::recv(fd, buf + have, size - have, 0);
    if (n <= 0) return false;
    have += static_cast<std::size_t>(n);
  }
}

// Opens `count` WebSockets, each upgraded and echoed once, and leaves them open in `fds`.
bool open_idle_websockets(int port, int count, std::vector<int>& fds) {
  static const char kUpgrade[] =
      "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  // A masked text frame "hello" with a zero mask (a client must mask; any key will do).
  static const unsigned char kFrame[] = {0x81, 0x85, 0, 0, 0, 0, 'h', 'e', 'l', 'l', 'o'};
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
    if (::send(fd, kUpgrade, sizeof kUpgrade - 1, MSG_NOSIGNAL) != sizeof kUpgrade - 1) {
      return false;
    }
    std::size_t have = 0;
    if (!read_some(fd, buf, sizeof buf, have, 0)) return false;
    if (std::strncmp(buf, "HTTP/1.1 101", 12) != 0) return false;
    std::size_t head = static_cast<std::size_t>(
        static_cast<const char*>(memmem(buf, have, "\r\n\r\n", 4)) - buf + 4);
    if (::send(fd, kFrame, sizeof kFrame, MSG_NOSIGNAL) != sizeof kFrame) return false;
    // The echo: an unmasked text frame of 5 bytes.
    if (!read_some(fd, buf, sizeof buf, have, head + 7)) return false;
    if (static_cast<unsigned char>(buf[head]) != 0x81 || buf[head + 1] != 5) return false;
  }
  return true;
}

TEST(IdleMemory, WebSocketAfterOneMessage) {
  constexpr int kWarmup = 50;
  constexpr int kMeasured = 200;
  std::printf("sizeof WebSocketConnection %zu, WebSocketHandler %zu\n",
              sizeof(ws::WebSocketConnection), sizeof(EchoHandler));

  ApplicationSettings settings;
  settings.log_function = [](const RequestHandler&) {};
  Application app({Rule("/ws", handler<EchoHandler>())}, settings);
  HTTPServer& server = app.listen(0, "127.0.0.1");
  int port = server.ports().at(0);
  auto measured =
      tronada::testing::idle_heap_per_connection(port, kWarmup, kMeasured, open_idle_websockets);
  ASSERT_TRUE(measured.has_value());
  double per_connection = *measured;
  std::printf("heap bytes per idle WebSocket: %.0f\n", per_connection);
  // Measured 2026-12-07: 6,879 bytes at first; 5,887 once the detached HTTP/1 connection
  // gave its request state (parser, response buffer: 629 bytes) back to the pool and the
  // handshake's response headers were freed before get() awaits the close; 6,003 on the
  // day of the next change. 2,425 once get() returns after open() (the WebSocket owns
  // the handler): the coroutine frames (the application's request task, RequestHandler's
  // execute, get()), the request's header fields and the handler's response fields, and
  // the HTTP/1 connection that the request's response channel kept, all go. 2,010 once
  // WebSocketConnection shrank from 624 to 384 bytes (one delegate pointer instead of
  // four std::functions, no copy of the options, the event vector and inflate scratch
  // per thread) and lost its heap blocks besides (a separate count, a set node, a close
  // callback's capture, a promise nobody on the server awaits).
  // What is left: the connection, 400 with its count; the stream, 336, and its uv_tcp_t,
  // 256; the handler, 344 in a 384-byte pool block, and its count, 64; the request, 456
  // in the pool (its line and addresses stay for request()).
  // The bound is the goal, 2 KiB.
  EXPECT_LE(per_connection, 2048);
}

}  // namespace
