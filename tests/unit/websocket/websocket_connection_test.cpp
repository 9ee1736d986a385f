// WebSocketConnection over a socketpair: our server end against our client end, or against
// a raw socket the test drives (a peer that never answers).
#include "tronada/websocket/websocket_connection.h"

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

using namespace tronada;
using namespace std::chrono_literals;

namespace {

struct Side final : ws::ConnectionDelegate {
  std::shared_ptr<ws::WebSocketConnection> conn;
  std::vector<std::string> messages;
  std::vector<std::string> pings;
  int closes = 0;
  std::uint16_t code = 0;
  std::string reason;

  void on_message(std::string&& m, bool binary) override {
    messages.push_back((binary ? "b:" : "t:") + m);
  }
  void on_ping(std::string_view d) override { pings.emplace_back(d); }
  void on_close(std::uint16_t c, std::string r) override {
    ++closes;
    code = c;
    reason = std::move(r);
  }
  // Owns nothing: the fixture outlives the connection's use of it.
  std::shared_ptr<ws::ConnectionDelegate> delegate() {
    return std::shared_ptr<ws::ConnectionDelegate>(std::shared_ptr<void>(), this);
  }
};

class WsConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    loop_.make_current();
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    server_fd_ = sv[0];
    client_fd_ = sv[1];
  }
  void TearDown() override {
    server_.conn.reset();
    client_.conn.reset();
    if (raw_ >= 0) ::close(raw_);
    test_support::expect_clean_close(loop_);
  }

  void start_server(ws::ConnectionOptions options = {}) {
    options.role = ws::Role::kServer;
    server_.conn = ws::WebSocketConnection::create(IOStream::from_fd(server_fd_, {}, &loop_),
                                                   options, server_.delegate());
    server_.conn->start();
  }
  void start_client(ws::ConnectionOptions options = {}) {
    options.role = ws::Role::kClient;
    client_.conn = ws::WebSocketConnection::create(IOStream::from_fd(client_fd_, {}, &loop_),
                                                   options, client_.delegate());
    client_.conn->start();
  }
  // The client end stays a raw socket the test reads (and never answers on).
  void raw_client() {
    raw_ = client_fd_;
    fcntl(raw_, F_SETFL, fcntl(raw_, F_GETFL) | O_NONBLOCK);
  }
  std::string raw_read() {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(raw_, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    return out;
  }

  void run_until(const std::function<bool()>& done) {
    run_sync(
        [&]() -> Task<void> {
          while (!done()) co_await tronada::sleep(1ms);
        },
        20s);
  }

  IOLoop loop_;
  int server_fd_ = -1, client_fd_ = -1, raw_ = -1;
  Side server_, client_;
};

}  // namespace

TEST_F(WsConnectionTest, MessagesBothWaysAndCloseHandshake) {
  start_server();
  start_client();
  (void)client_.conn->write_message("hi");
  (void)client_.conn->write_message(std::string(70000, 'z'), true);
  client_.conn->ping("p");
  (void)server_.conn->write_message("back");
  run_until([&] { return server_.messages.size() == 2 && client_.messages.size() == 1; });
  EXPECT_EQ(server_.messages[0], "t:hi");
  EXPECT_EQ(server_.messages[1].size(), 70002u);
  EXPECT_EQ(server_.pings, std::vector<std::string>{"p"});
  EXPECT_EQ(client_.messages[0], "t:back");
  client_.conn->close(4000, "done");
  EXPECT_THROW((void)client_.conn->write_message("late"), WebSocketClosedError);
  run_until([&] { return server_.closes && client_.closes; });
  EXPECT_EQ(server_.code, 4000);
  EXPECT_EQ(server_.reason, "done");
  EXPECT_EQ(client_.code, 4000);  // echoed
  EXPECT_EQ(server_.closes, 1);
}

TEST_F(WsConnectionTest, CompressedBothWays) {
  ws::ConnectionOptions options;
  options.deflate = ws::DeflateParams{};
  start_server(options);
  start_client(options);
  std::string big(200000, 'q');
  (void)client_.conn->write_message(big);
  (void)server_.conn->write_message(big, true);
  run_until([&] { return server_.messages.size() == 1 && client_.messages.size() == 1; });
  EXPECT_EQ(server_.messages[0], "t:" + big);
  EXPECT_EQ(client_.messages[0], "b:" + big);
  server_.conn->close();
  run_until([&] { return server_.closes && client_.closes; });
  EXPECT_EQ(client_.code, 1000);
}

TEST_F(WsConnectionTest, ProtocolErrorSendsItsCodeAndCloses) {
  raw_client();
  start_server();
  ASSERT_EQ(::write(raw_, "\x81\x02hi", 4), 4);  // unmasked: 1002
  run_until([&] { return server_.closes == 1; });
  EXPECT_EQ(server_.code, ws::close_code::kAbnormal);  // the client sent no close frame
  std::string got = raw_read();
  ASSERT_GE(got.size(), 4u);
  EXPECT_EQ(static_cast<unsigned char>(got[0]), 0x88);
  EXPECT_EQ((static_cast<unsigned char>(got[2]) << 8) | static_cast<unsigned char>(got[3]), 1002);
}

TEST_F(WsConnectionTest, PingTimeoutDropsASilentPeer) {
  raw_client();
  ws::ConnectionOptions options;
  options.ping_interval = 20ms;
  options.ping_timeout = 60ms;
  start_server(options);
  run_until([&] { return server_.closes == 1; });
  EXPECT_EQ(server_.code, ws::close_code::kAbnormal);
  // It did ping first.
  std::string got = raw_read();
  ASSERT_GE(got.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(got[0]), 0x89);
}

TEST_F(WsConnectionTest, CloseTimeoutWhenThePeerNeverAnswers) {
  raw_client();
  ws::ConnectionOptions options;
  options.close_timeout = 50ms;
  start_server(options);
  server_.conn->close(1001, "bye");
  EXPECT_TRUE(server_.conn->closing());
  run_until([&] { return server_.closes == 1; });
  std::string got = raw_read();
  ASSERT_GE(got.size(), 4u);
  EXPECT_EQ(static_cast<unsigned char>(got[0]), 0x88);
}

TEST_F(WsConnectionTest, WriteBackpressureFutureCompletesOnceDrained) {
  raw_client();
  start_server();
  std::string big(4 * 1024 * 1024, 'x');  // over the 1 MiB high-water mark
  Future<void> drained = server_.conn->write_message(big, true);
  std::size_t read = 0;
  run_until([&] {
    read += raw_read().size();
    return drained.done();
  });
  EXPECT_GT(read, 0u);
  server_.conn->abort();
  run_until([&] { return server_.closes == 1; });
}

TEST_F(WsConnectionTest, CloseAllServerSendsGoingAwayToServerConnectionsOnly) {
  start_server();
  start_client();
  EXPECT_EQ(ws::WebSocketConnection::open_server_connections(), 1u);  // the client is not
  ws::WebSocketConnection::close_all_server(ws::close_code::kGoingAway, "shutting down");
  run_until([&] { return server_.closes && client_.closes; });
  EXPECT_EQ(client_.code, ws::close_code::kGoingAway);
  EXPECT_EQ(client_.reason, "shutting down");
  EXPECT_EQ(ws::WebSocketConnection::open_server_connections(), 0u);
}
