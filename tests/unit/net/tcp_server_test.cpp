#include "tronada/net/tcp_server.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <set>
#include <thread>

#include "tronada/async/run_sync.h"
#include "tronada/async/sleep.h"
#include "tronada/async/spawn.h"
#include "tronada/net/process.h"

using namespace tronada;
using namespace std::chrono_literals;

namespace {

// A blocking connect to 127.0.0.1:port; the fd, or -1.
int connect_loopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  // A server that never answers fails the test instead of hanging it.
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// A blocking client in a thread: the loop under test must not be blocked by it.
std::string blocking_exchange(int port, const std::string& send, std::size_t expect) {
  int fd = connect_loopback(port);
  if (fd < 0) return "connect failed";
  if (!send.empty()) (void)!write(fd, send.data(), send.size());
  std::string got;
  char buf[4096];
  while (got.size() < expect) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  return got;
}

Task<void> echo_lines(std::shared_ptr<IOStream> stream) {
  try {
    for (;;) co_await stream->write(co_await stream->read_until("\n"));
  } catch (const StreamClosedError&) {
  }
}

class EchoServer : public TCPServer {
 protected:
  void handle_stream(std::shared_ptr<IOStream> stream) override {
    spawn_logged(echo_lines(std::move(stream)));
  }
};

// Clients closed their sockets; let the server see every EOF so no stream (and its
// coroutine) is still open when the loop closes, which LeakSanitizer would report.
void drain_connections(IOLoop& loop, TCPServer& server) {
  for (int i = 0; i < 500 && server.connection_count() > 0; ++i) {
    loop.call_later(std::chrono::milliseconds(10), [&loop] { loop.stop(); });
    loop.start();
  }
}

}  // namespace

TEST(TCPServer, EchoOverLoopbackOnEphemeralPort) {
  IOLoop loop;
  loop.make_current();
  EchoServer server;
  server.listen(0, "127.0.0.1");
  ASSERT_EQ(server.ports().size(), 1u);
  int port = server.ports()[0];
  EXPECT_GT(port, 0);
  std::string got;
  std::thread client([&] {
    got = blocking_exchange(port, "one\ntwo\n", 8);
    loop.add_callback([&] { loop.stop(); });
  });
  loop.start();
  client.join();
  EXPECT_EQ(got, "one\ntwo\n");
  drain_connections(loop, server);
  server.stop();
}

TEST(TCPServer, ManyConcurrentClients) {
  IOLoop loop;
  loop.make_current();
  EchoServer server;
  server.listen(0, "127.0.0.1");
  int port = server.ports()[0];
  constexpr int kClients = 32;
  std::atomic<int> ok{0}, finished{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      std::string line = "client " + std::to_string(i) + "\n";
      if (blocking_exchange(port, line, line.size()) == line) ++ok;
      if (++finished == kClients) loop.add_callback([&] { loop.stop(); });
    });
  }
  loop.start();
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), kClients);
  drain_connections(loop, server);
  EXPECT_EQ(server.connection_count(), 0u);
}

TEST(TCPServer, UnixSocket) {
  IOLoop loop;
  loop.make_current();
  EchoServer server;
  std::string path = "/tmp/tronada-test-" + std::to_string(getpid()) + ".sock";
  server.listen_unix(path);
  std::string got;
  std::thread client([&] {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path.c_str());
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      (void)!write(fd, "unix\n", 5);
      char buf[16];
      ssize_t n = read(fd, buf, sizeof buf);
      if (n > 0) got.assign(buf, static_cast<std::size_t>(n));
    }
    close(fd);
    loop.add_callback([&] { loop.stop(); });
  });
  loop.start();
  client.join();
  EXPECT_EQ(got, "unix\n");
  drain_connections(loop, server);
  server.stop();
  unlink(path.c_str());
}

TEST(TCPServer, RefusesToReplaceARegularFileWithASocket) {
  IOLoop loop;
  loop.make_current();
  std::string path = "/tmp/tronada-test-file-" + std::to_string(getpid());
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_TRUE(f);
  std::fclose(f);
  TCPServer server;
  EXPECT_THROW(server.listen_unix(path), std::runtime_error);
  unlink(path.c_str());
}

TEST(TCPServer, BindErrorNamesTheAddress) {
  IOLoop loop;
  loop.make_current();
  TCPServer first;
  first.listen(0, "127.0.0.1");
  TCPServer second;
  try {
    second.listen(first.ports()[0], "127.0.0.1");
    FAIL() << "second bind succeeded";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(first.ports()[0])),
              std::string::npos)
        << e.what();
  }
}

TEST(TCPServer, StopClosesListenerButKeepsConnections) {
  IOLoop loop;
  loop.make_current();
  TCPServer server;
  std::shared_ptr<IOStream> accepted;
  server.set_stream_handler([&](std::shared_ptr<IOStream> s) {
    accepted = s;
    server.stop();
    spawn_logged(
        [](std::shared_ptr<IOStream> st) -> Task<void> { co_await st->write("still here\n"); }(s));
  });
  server.listen(0, "127.0.0.1");
  int port = server.ports()[0];
  std::string first, second;
  std::thread client([&] {
    first = blocking_exchange(port, "", 11);
    second = blocking_exchange(port, "", 1);
    loop.add_callback([&] { loop.stop(); });
  });
  loop.start();
  client.join();
  EXPECT_EQ(first, "still here\n");
  EXPECT_EQ(second, "connect failed");
  if (accepted) accepted->close();
}

TEST(TCPServer, MaxConnectionsHoldsNewOnesInTheBacklog) {
  IOLoop loop;
  loop.make_current();
  TCPServer server;
  std::vector<std::shared_ptr<IOStream>> streams;
  server.set_max_connections(1);
  server.set_stream_handler([&](std::shared_ptr<IOStream> s) {
    streams.push_back(s);
    s->write("hi\n", [] {});
  });
  server.listen(0, "127.0.0.1");
  int port = server.ports()[0];
  std::string second;
  std::thread client([&] {
    // The first connection is accepted and left open; the second waits in the backlog
    // until the first closes.
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)!connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    char buf[8];
    (void)!read(fd, buf, 3);
    loop.add_callback([&] {
      EXPECT_EQ(server.connection_count(), 1u);
      loop.call_later(100ms, [&] {
        EXPECT_EQ(streams.size(), 1u);  // the second was not accepted meanwhile
        streams[0]->close();
      });
    });
    second = blocking_exchange(port, "", 3);
    close(fd);
    loop.add_callback([&] { loop.stop(); });
  });
  loop.start();
  client.join();
  EXPECT_EQ(second, "hi\n");
  EXPECT_EQ(streams.size(), 2u);
  for (auto& s : streams) s->close();
}

// Prefork: a supervisor forks three children that share the listening socket; each
// answers with its pid, and connections reach more than one child. Forking a process
// that already ran other tests' threads (OpenSSL, the executor) is fragile, which is why
// ctest runs every test in its own process.
TEST(TCPServer, PreforkServesFromSeveralProcesses) {
  int port_pipe[2];
  ASSERT_EQ(pipe(port_pipe), 0);
  pid_t supervisor = fork();
  ASSERT_GE(supervisor, 0);
  if (supervisor == 0) {
    setpgid(0, 0);
    close(port_pipe[0]);
    TCPServer server;
    server.bind(0, "127.0.0.1");
    // The socket bound before the fork is shared by the children; child 0 reports
    // its port.
    fork_processes(3);
    IOLoop& loop = IOLoop::current();
    server.set_stream_handler([](std::shared_ptr<IOStream> s) {
      s->write(std::to_string(getpid()) + "\n", [s] { s->close(); });
    });
    server.start(1);
    if (task_id() == 0) {
      std::string p = std::to_string(server.ports()[0]) + "\n";
      (void)!write(port_pipe[1], p.data(), p.size());
    }
    close(port_pipe[1]);
    loop.start();
    _exit(0);
  }
  close(port_pipe[1]);
  char buf[16] = {};
  ssize_t n = read(port_pipe[0], buf, sizeof buf - 1);
  close(port_pipe[0]);
  ASSERT_GT(n, 0);
  int port = std::atoi(buf);
  std::set<std::string> pids;
  for (int i = 0; i < 50 && pids.size() < 2; ++i) {
    std::string got = blocking_exchange(port, "", 64);
    if (!got.empty()) pids.insert(got);
    if (i % 20 == 19) usleep(10000);
  }
  kill(-supervisor, SIGTERM);
  int status = 0;
  waitpid(supervisor, &status, 0);
  EXPECT_GE(pids.size(), 2u);
}

namespace {

// TCP_NODELAY as an accepted stream has it: -1 if it cannot be read.
int nodelay_of(IOStream& stream) {
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<const uv_handle_t*>(stream.handle()), &fd) != 0) return -1;
  int on = -1;
  socklen_t len = sizeof on;
  if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len) != 0) return -1;
  return on ? 1 : 0;
}

// Runs the loop until `server` accepts a connection; its TCP_NODELAY, then stops the
// server.
int nodelay_of_next(IOLoop& loop, TCPServer& server) {
  int seen = -1;
  server.set_stream_handler([&](std::shared_ptr<IOStream> stream) {
    seen = nodelay_of(*stream);
    stream->close();
    loop.stop();
  });
  loop.start();
  drain_connections(loop, server);
  server.stop();
  return seen;
}

// Connects a client to `server` (listening on `port`); the accepted stream's TCP_NODELAY.
int nodelay_of_accepted(IOLoop& loop, TCPServer& server, int port) {
  std::thread client([port] { blocking_exchange(port, "", 1); });
  int seen = nodelay_of_next(loop, server);
  client.join();
  return seen;
}

}  // namespace

TEST(TCPServer, NodelayIsInheritedFromTheListener) {
  IOLoop loop;
  loop.make_current();
  TCPServer server;
  server.set_nodelay(true);
  server.listen(0, "127.0.0.1");
  EXPECT_EQ(nodelay_of_accepted(loop, server, server.ports()[0]), 1);
}

TEST(TCPServer, NodelayOnAListenerMadeElsewhereWithoutIt) {
  // The socket listens before the server sets the option: a connection queued in between
  // must get it too (set on the accepted socket, since it inherited nothing).
  IOLoop loop;
  loop.make_current();
  std::vector<int> fds = bind_sockets(0, "127.0.0.1");
  int port = socket_port(fds.at(0));
  int early = connect_loopback(port);  // queued in the backlog, not yet accepted
  ASSERT_GE(early, 0);
  TCPServer server;
  server.set_nodelay(true);
  server.add_sockets(fds);
  EXPECT_EQ(nodelay_of_next(loop, server), 1);
  close(early);
}

TEST(TCPServer, NoNodelayUnlessAsked) {
  IOLoop loop;
  loop.make_current();
  TCPServer server;
  server.listen(0, "127.0.0.1");
  EXPECT_EQ(nodelay_of_accepted(loop, server, server.ports()[0]), 0);
}

TEST(TCPServer, DeferredAcceptReadsTheFirstBytesInTheAcceptCallback) {
  // With TCP_DEFER_ACCEPT the kernel hands over a connection once its first bytes came:
  // they reach the stream before the loop turns again (a callback queued by the accept
  // has not run yet), not on the next poll.
  IOLoop loop;
  loop.make_current();
  std::vector<int> fds = bind_sockets(0, "127.0.0.1", BindOptions{.defer_accept_seconds = 1});
  int defer = 0;
  socklen_t len = sizeof defer;
  ASSERT_EQ(getsockopt(fds.at(0), IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, &len), 0);
  EXPECT_GT(defer, 0);
  int port = socket_port(fds.at(0));
  TCPServer server;
  server.add_sockets(fds);
  bool turned = false;
  std::string first;
  bool before_turn = false;
  server.set_stream_handler([&](std::shared_ptr<IOStream> stream) {
    loop.add_callback([&] { turned = true; });
    stream->set_data_handler([&, raw = stream.get()](std::string_view data) {
      first.assign(data);
      before_turn = !turned;
      raw->write("pong\n");
      raw->close();
    });
  });
  std::string got;
  std::thread client([&] {
    got = blocking_exchange(port, "ping\n", 5);
    loop.add_callback([&] { loop.stop(); });
  });
  loop.start();
  client.join();
  EXPECT_EQ(first, "ping\n");
  EXPECT_TRUE(before_turn);
  EXPECT_EQ(got, "pong\n");
  drain_connections(loop, server);
  server.stop();
}

TEST(TCPServer, DeferredAcceptStillTakesAClientThatSendsNothing) {
  // The kernel accepts a silent connection after the deferral (about a second here): the
  // server then sees it, and its own timeouts apply, as without the option.
  IOLoop loop;
  loop.make_current();
  std::vector<int> fds = bind_sockets(0, "127.0.0.1", BindOptions{.defer_accept_seconds = 1});
  int port = socket_port(fds.at(0));
  TCPServer server;
  server.add_sockets(fds);
  int silent = connect_loopback(port);
  ASSERT_GE(silent, 0);
  bool accepted = false;
  server.set_stream_handler([&](std::shared_ptr<IOStream> stream) {
    accepted = true;
    stream->close();
    loop.stop();
  });
  loop.call_later(20s, [&] { loop.stop(); });  // a bound, not a measured time
  loop.start();
  EXPECT_TRUE(accepted);
  close(silent);
  drain_connections(loop, server);
  server.stop();
}
