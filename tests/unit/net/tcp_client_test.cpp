#include "tronada/net/tcp_client.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <system_error>
#include <vector>

#include "net/tls_test_support.h"
#include "tronada/async/run_sync.h"
#include "tronada/async/sleep.h"
#include "tronada/async/spawn.h"
#include "tronada/base/error.h"
#include "tronada/net/ssl_iostream.h"

using namespace tronada;
using namespace tronada::tls_test;
using namespace std::chrono_literals;

namespace {

Task<void> expect_round_trip(std::shared_ptr<IOStream> stream, std::string line) {
  co_await stream->write(line);
  std::string echoed = co_await stream->read_until("\n");
  EXPECT_EQ(echoed, line);
}

// A port nothing listens on: bound, then closed again.
int closed_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// A listener whose accept queue is full and never drained: Linux drops further SYNs, so
// a connect to it hangs until the client gives up. The listener is a plain socket, so
// the loop never accepts from it.
class BlackHole {
 public:
  BlackHole() {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    listen(listener_, 0);
    getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    // A backlog of 0 still queues one connection; a few more make sure it is full.
    for (int i = 0; i < 3; ++i) {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      fcntl(fd, F_SETFL, O_NONBLOCK);
      connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
      fillers_.push_back(fd);
    }
    usleep(50 * 1000);
  }
  ~BlackHole() {
    for (int fd : fillers_) ::close(fd);
    ::close(listener_);
  }
  int port() const { return port_; }

 private:
  int listener_;
  int port_ = 0;
  std::vector<int> fillers_;
};

class TCPClientTest : public ::testing::Test {
 protected:
  void SetUp() override { loop_.make_current(); }
  void TearDown() override {
    accepted_.clear();
    drain_and_close(loop_);
  }

  TestListener::OnStream echo_server() {
    return [this](std::shared_ptr<IOStream> stream) {
      accepted_.push_back(stream);
      spawn_logged(echo(std::move(stream)), "echo");
    };
  }

  template <typename F>
  void run(F&& make_task) {
    run_sync(std::forward<F>(make_task), 60s);
  }

  IOLoop loop_;
  std::vector<std::shared_ptr<IOStream>> accepted_;
};

}  // namespace

TEST_F(TCPClientTest, ConnectsToAnIPv4Literal) {
  TestListener server(loop_, nullptr, echo_server());
  ASSERT_EQ(server.status(), 0);
  run([&]() -> Task<void> {
    TCPClient client;
    auto stream = co_await client.connect("127.0.0.1", server.port());
    EXPECT_EQ(stream->peer_ip(), "127.0.0.1");
    EXPECT_EQ(stream->peer_port(), server.port());
    EXPECT_EQ(std::dynamic_pointer_cast<SSLIOStream>(stream), nullptr);
    co_await expect_round_trip(stream, "plain\n");
    stream->close();
  });
}

TEST_F(TCPClientTest, ResolvesLocalhost) {
  TestListener server(loop_, nullptr, echo_server());
  run([&]() -> Task<void> {
    TCPClient client;
    // If localhost also resolves to ::1, where nothing listens, the next address is tried.
    auto stream = co_await client.connect("localhost", server.port(), 5s);
    EXPECT_EQ(stream->peer_ip(), "127.0.0.1");
    co_await expect_round_trip(stream, "by name\n");
    stream->close();
  });
}

TEST_F(TCPClientTest, ConnectsToAnIPv6Literal) {
  TestListener server(loop_, nullptr, echo_server(), "::1");
  if (server.status() != 0) GTEST_SKIP() << "no IPv6 loopback: " << uv_strerror(server.status());
  run([&]() -> Task<void> {
    TCPClient client;
    auto stream = co_await client.connect("[::1]", server.port(), 5s);
    EXPECT_EQ(stream->peer_ip(), "::1");
    co_await expect_round_trip(stream, "six\n");
    stream->close();
  });
}

TEST_F(TCPClientTest, ClosedPortFailsFast) {
  int port = closed_port();
  run([&]() -> Task<void> {
    TCPClient client;
    auto start = std::chrono::steady_clock::now();
    try {
      co_await client.connect("127.0.0.1", port, 10s);
      ADD_FAILURE() << "connected to a closed port";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), uv_error(UV_ECONNREFUSED));
      EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(port)), std::string::npos)
          << e.what();
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  });
}

TEST_F(TCPClientTest, ConnectTimeoutCancelsTheAttempt) {
  BlackHole hole;
  run([&]() -> Task<void> {
    TCPClient client;
    auto start = std::chrono::steady_clock::now();
    try {
      co_await client.connect("127.0.0.1", hole.port(), 200ms);
      ADD_FAILURE() << "connected through a full backlog";
    } catch (const TimeoutError& e) {
      EXPECT_NE(std::string(e.what()).find("timed out"), std::string::npos);
    }
    auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_GE(elapsed, 190ms);
    EXPECT_LT(elapsed, 5s);
  });
  // drain_and_close (TearDown) checks the abandoned handle was closed and freed.
}

TEST_F(TCPClientTest, TimeoutRacingConnectsLeaksNothing) {
  TestListener plain(loop_, nullptr, echo_server());
  TestListener secure(loop_,
                      SSLContext::server({.cert_file = certs().localhost.cert_file,
                                          .key_file = certs().localhost.key_file}),
                      echo_server());
  auto client_ctx = SSLContext::client({.ca_file = certs().trust});
  int connected = 0;
  int timed_out = 0;
  run([&]() -> Task<void> {
    TCPClient client;
    // Timeouts of 0.5 to 3 ms against connects (resolution, TCP, TLS handshake) that take
    // about as long: the timeout strikes in every phase, or just after the connect won.
    // All at once, then one by one.
    std::vector<Future<std::shared_ptr<IOStream>>> attempts;
    for (int i = 0; i < 240; ++i) {
      bool tls = i % 4 >= 2;
      const char* host = i % 2 ? "127.0.0.1" : "localhost";
      Duration timeout = std::chrono::microseconds(500 + i % 6 * 500);
      attempts.push_back(client.connect(host, tls ? secure.port() : plain.port(), timeout,
                                        tls ? client_ctx : nullptr, "localhost"));
      if (i >= 120) {
        try {
          auto stream = co_await attempts.back();
          ++connected;
          stream->close();
        } catch (const TimeoutError&) {
          ++timed_out;
        }
      }
    }
    for (int i = 0; i < 120; ++i) {
      try {
        auto stream = co_await attempts[i];
        ++connected;
        stream->close();
      } catch (const TimeoutError&) {
        ++timed_out;
      }
    }
  });
  EXPECT_EQ(connected + timed_out, 240);
  // Sixty TLS handshakes at once cannot all beat a 3 ms timeout.
  EXPECT_GT(timed_out, 0);
  // TearDown's drain checks that every abandoned handle and request was freed.
}

TEST_F(TCPClientTest, TLSConnectReturnsAHandshakenStream) {
  SSLServerConfig config{.cert_file = certs().localhost.cert_file,
                         .key_file = certs().localhost.key_file,
                         .alpn_protocols = {"h2", "http/1.1"}};
  TestListener server(loop_, SSLContext::server(config), echo_server());
  auto client_ctx = SSLContext::client({.ca_file = certs().trust, .alpn_protocols = {"h2"}});
  run([&]() -> Task<void> {
    TCPClient client;
    auto stream = co_await client.connect("localhost", server.port(), 5s, client_ctx);
    auto tls = std::dynamic_pointer_cast<SSLIOStream>(stream);
    if (!tls) {
      ADD_FAILURE() << "not an SSLIOStream";
      co_return;
    }
    EXPECT_TRUE(tls->handshake_done());
    EXPECT_EQ(tls->selected_alpn(), "h2");
    EXPECT_EQ(tls->sni_hostname(), "localhost");
    co_await expect_round_trip(stream, "secure\n");
    tls->close_gracefully();
  });
}

TEST_F(TCPClientTest, TLSHandshakeTimeout) {
  // Accepts TCP, never answers the ClientHello.
  TestListener server(loop_, nullptr, [&](std::shared_ptr<IOStream> stream) {
    accepted_.push_back(stream);
    (void)stream->read_until_close();  // reads, so the server side sees our close
  });
  auto client_ctx = SSLContext::client({.ca_file = certs().trust});
  run([&]() -> Task<void> {
    TCPClient client;
    try {
      co_await client.connect("127.0.0.1", server.port(), 200ms, client_ctx, "localhost");
      ADD_FAILURE() << "handshake with a silent server";
    } catch (const TimeoutError&) {
    }
    // The abandoned TLS stream is closed: the server side sees EOF.
    for (int i = 0; i < 200 && !accepted_.at(0)->closed(); ++i) co_await sleep(5ms);
    EXPECT_TRUE(accepted_.at(0)->closed());
  });
}

TEST_F(TCPClientTest, TLSNeedsAClientContext) {
  auto server_ctx = SSLContext::server(
      {.cert_file = certs().localhost.cert_file, .key_file = certs().localhost.key_file});
  run([&]() -> Task<void> {
    TCPClient client;
    try {
      co_await client.connect("127.0.0.1", 1, 1s, server_ctx);
      ADD_FAILURE();
    } catch (const std::invalid_argument&) {
    }
  });
}

TEST_F(TCPClientTest, UnixSocket) {
  TempDir dir;
  std::string path = dir.file("echo.sock");
  TestListener server(loop_, UnixPath{path}, echo_server());
  ASSERT_EQ(server.status(), 0);
  run([&]() -> Task<void> {
    TCPClient client;
    auto stream = co_await client.connect_unix(path, 5s);
    EXPECT_EQ(stream->peer_ip(), "unix");
    co_await expect_round_trip(stream, "local\n");
    stream->close();
  });
}

TEST_F(TCPClientTest, UnixSocketErrors) {
  TempDir dir;
  run([&]() -> Task<void> {
    TCPClient client;
    try {
      co_await client.connect_unix(dir.file("missing.sock"), 5s);
      ADD_FAILURE();
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), uv_error(UV_ENOENT));
    }
    try {
      co_await client.connect_unix("/tmp/" + std::string(200, 'x'), 5s);
      ADD_FAILURE();
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), uv_error(UV_ENAMETOOLONG));
    }
  });
}

TEST_F(TCPClientTest, UnresolvableHostFails) {
  run([&]() -> Task<void> {
    TCPClient client;
    try {
      co_await client.connect("no-such-host.invalid", 80, 5s);
      ADD_FAILURE();
    } catch (const std::system_error& e) {
      EXPECT_EQ(&e.code().category(), &uv_category());
      EXPECT_NE(std::string(e.what()).find("no-such-host.invalid"), std::string::npos);
    } catch (const TimeoutError&) {
      // A resolver that does not answer at all; also fine, and also cleaned up.
    }
  });
}

TEST_F(TCPClientTest, InvalidPortIsRejected) {
  run([&]() -> Task<void> {
    TCPClient client;
    try {
      co_await client.connect("127.0.0.1", 70000);
      ADD_FAILURE();
    } catch (const std::invalid_argument&) {
    }
  });
}
