// The proxy's tunnel over two socketpairs: the test plays the client and the upstream on
// raw sockets and checks what a drain (drain_tunnels) sends each of them, and when.
#include "tronada/gateway/tunnel.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

#include "support/loop_check.h"
#include "tronada/async/run_sync.h"
#include "tronada/async/sleep.h"
#include "tronada/net/iostream.h"
#include "tronada/websocket/frame_codec.h"

using namespace tronada;
using namespace std::chrono_literals;

namespace {

const unsigned char kMask[4] = {1, 2, 3, 4};

/// One raw end the test drives: what it received so far, and whether it saw EOF.
struct Peer {
  int fd = -1;
  std::string received;
  bool eof = false;

  void send(std::string_view bytes) const {
    ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  void pump() {
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0) {
        received.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0) eof = true;
      return;
    }
  }
};

std::vector<ws::Event> parse(std::string_view bytes, ws::Role role) {
  ws::FrameParser parser(role, 1 << 20);
  std::vector<ws::Event> events;
  EXPECT_TRUE(parser.feed(bytes, events)) << parser.error_reason();
  return events;
}

class TunnelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    loop_.make_current();
    int c[2], u[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c), 0);
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, u), 0);
    client_.fd = c[0];
    upstream_.fd = u[0];
    for (int fd : {c[0], u[0]}) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    proxy_client_fd_ = c[1];
    proxy_upstream_fd_ = u[1];
  }
  void TearDown() override {
    ::close(client_.fd);
    ::close(upstream_.fd);
    test_support::expect_clean_close(loop_);
  }

  void start(bool websocket) {
    TunnelOptions options;
    options.websocket = websocket;
    start_tunnel(IOStream::from_fd(proxy_client_fd_, {}, &loop_), "",
                 IOStream::from_fd(proxy_upstream_fd_, {}, &loop_), "", options);
  }

  void run_until(const std::function<bool()>& done) {
    run_sync(
        [&]() -> Task<void> {
          for (;;) {
            client_.pump();
            upstream_.pump();
            if (done()) break;
            co_await tronada::sleep(1ms);
          }
        },
        10s);
  }

  IOLoop loop_;
  Peer client_, upstream_;
  int proxy_client_fd_ = -1, proxy_upstream_fd_ = -1;
};

}  // namespace

TEST_F(TunnelTest, DrainSendsGoingAwayBothWaysAtFrameBoundaries) {
  start(true);
  EXPECT_EQ(open_tunnels(), 1u);
  // The upstream is in the middle of a 1000-byte frame; the client sent a whole one.
  std::string big;
  ws::append_frame(big, ws::Opcode::kBinary, std::string(1000, 'b'));
  upstream_.send(big.substr(0, 104));
  std::string hi;
  ws::append_frame(hi, ws::Opcode::kText, "hi", true, false, kMask);
  client_.send(hi);
  run_until([&] { return client_.received.size() == 104 && upstream_.received == hi; });

  drain_tunnels(5s);
  // The client-to-upstream direction is between frames: the upstream gets its close now,
  // masked as a client's.
  run_until([&] { return upstream_.received.size() > hi.size(); });
  auto events = parse(std::string_view(upstream_.received).substr(hi.size()), ws::Role::kServer);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, ws::Event::Type::kClose);
  EXPECT_EQ(events[0].code, ws::close_code::kGoingAway);
  EXPECT_EQ(events[0].data, "proxy shutting down");
  // Nothing is put into the frame the client is receiving: its rest comes first, then
  // the close; a frame the upstream sends after it is not relayed.
  EXPECT_EQ(client_.received.size(), 104u);
  std::string after;
  ws::append_frame(after, ws::Opcode::kText, "too late");
  upstream_.send(big.substr(104) + after);
  run_until([&] { return client_.received.size() > big.size(); });
  events = parse(client_.received, ws::Role::kClient);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].data, std::string(1000, 'b'));
  EXPECT_EQ(events[1].type, ws::Event::Type::kClose);
  EXPECT_EQ(events[1].code, ws::close_code::kGoingAway);
  EXPECT_EQ(events[1].data, "server shutting down");
  EXPECT_EQ(open_tunnels(), 1u);  // waiting for the answering closes

  // Both answer: the handshakes are over and both connections close.
  std::string close_frame;
  ws::append_frame(close_frame, ws::Opcode::kClose, std::string("\x03\xe9", 2), true, false, kMask);
  client_.send(close_frame);
  close_frame.clear();
  ws::append_frame(close_frame, ws::Opcode::kClose, std::string("\x03\xe9", 2));
  upstream_.send(close_frame);
  std::size_t client_had = client_.received.size(), upstream_had = upstream_.received.size();
  run_until([&] { return client_.eof && upstream_.eof && open_tunnels() == 0; });
  // Neither close was passed on: each side got exactly one.
  EXPECT_EQ(client_.received.size(), client_had);
  EXPECT_EQ(upstream_.received.size(), upstream_had);
}

TEST_F(TunnelTest, ASideThatClosedAlreadyGetsNoSecondClose) {
  start(true);
  // The client started the close handshake before the drain: the upstream has its close.
  std::string close_frame;
  ws::append_frame(close_frame, ws::Opcode::kClose, std::string("\x03\xe8", 2), true, false, kMask);
  client_.send(close_frame);
  run_until([&] { return upstream_.received == close_frame; });
  drain_tunnels(5s);
  run_until([&] { return !client_.received.empty(); });
  auto events = parse(client_.received, ws::Role::kClient);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].code, ws::close_code::kGoingAway);
  // The upstream answers the client's close; the tunnel ends.
  std::string reply;
  ws::append_frame(reply, ws::Opcode::kClose, std::string("\x03\xe8", 2));
  upstream_.send(reply);
  run_until([&] { return client_.eof && upstream_.eof && open_tunnels() == 0; });
  EXPECT_EQ(upstream_.received, close_frame);  // no second close for the upstream
}

TEST_F(TunnelTest, TheDrainTimeoutClosesAFrameThatNeverEnds) {
  start(true);
  std::string big;
  ws::append_frame(big, ws::Opcode::kBinary, std::string(1000, 'b'));
  upstream_.send(big.substr(0, 50));
  run_until([&] { return client_.received.size() == 50; });
  drain_tunnels(50ms);
  run_until([&] { return client_.eof && upstream_.eof && open_tunnels() == 0; });
  EXPECT_EQ(client_.received.size(), 50u);  // no close inside the frame
}

TEST_F(TunnelTest, OtherProtocolsAreClosedAtOnce) {
  start(false);
  client_.send("hello");
  run_until([&] { return upstream_.received == "hello"; });
  drain_tunnels(5s);
  run_until([&] { return client_.eof && upstream_.eof && open_tunnels() == 0; });
  EXPECT_EQ(client_.received, "");
}
