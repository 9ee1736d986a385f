// IOStream's socket queries and half-close: shutdown_write, unsent_bytes, socket_quiet.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "support/loop_check.h"
#include "tronada/async/executor.h"
#include "tronada/async/run_sync.h"
#include "tronada/net/iostream.h"

using namespace tronada;
using namespace std::chrono_literals;
using test_support::next_tick;

namespace {

class IOStreamSocketTest : public ::testing::Test {
 protected:
  IOStreamSocketTest() { loop_.make_current(); }
  void TearDown() override {
    for (int fd : fds_) ::close(fd);
    test_support::expect_clean_close(loop_);
  }
  // A connected Unix socket pair: the stream wraps the first, the test keeps the second.
  std::pair<int, int> pair() {
    int sv[2] = {-1, -1};
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0) << std::strerror(errno);
    fds_.push_back(sv[1]);
    return {sv[0], sv[1]};
  }
  void run_until(const std::function<bool()>& done) {
    run_sync(
        [&]() -> Task<void> {
          while (!done()) co_await next_tick();
        },
        20s);
  }
  void close_and_wait(const std::shared_ptr<IOStream>& stream) {
    stream->close();
    run_until([&] { return stream->handle() == nullptr; });
  }

  IOLoop loop_;
  std::vector<int> fds_;
};

// Reads from a blocking fd until EOF.
std::string read_to_eof(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

TEST_F(IOStreamSocketTest, ShutdownWriteEndsOurSideAfterEverythingQueuedAndReadingGoesOn) {
  auto [ours, peer] = pair();
  auto stream = IOStream::from_fd(ours);
  // More than the socket takes at once: the FIN must wait for the queue.
  const std::string data(4u << 20, 'r');
  bool written = false;
  stream->write(data, [&] { written = true; });
  EXPECT_GT(stream->write_buffer_size(), 0u);
  stream->shutdown_write();
  std::string got;
  std::string heard;
  run_sync(
      [&]() -> Task<void> {
        // The peer reads everything, then EOF, on a thread of its own.
        Future<std::string> reading = run_in_executor([fd = peer] { return read_to_eof(fd); });
        got = co_await reading;
        // Our reading side is still open.
        EXPECT_EQ(::write(peer, "late", 4), 4);
        heard = co_await stream->read_bytes(4);
      },
      20s);
  EXPECT_TRUE(written);
  EXPECT_EQ(got.size(), data.size());
  EXPECT_EQ(heard, "late");
  close_and_wait(stream);
}

TEST_F(IOStreamSocketTest, UnsentBytesCountWhatThePeerHasNotRead) {
  auto [ours, peer] = pair();
  auto stream = IOStream::from_fd(ours);
  EXPECT_EQ(stream->unsent_bytes(), 0u);
  bool written = false;
  stream->write(std::string(1000, 'x'), [&] { written = true; });
  run_until([&] { return written; });
  // Gone from our buffer, still in the kernel's.
  EXPECT_EQ(stream->write_buffer_size(), 0u);
  EXPECT_GE(stream->unsent_bytes(), 1000u);
  char buf[1000];
  EXPECT_EQ(::read(peer, buf, sizeof buf), 1000);
  EXPECT_EQ(stream->unsent_bytes(), 0u);
  close_and_wait(stream);
  EXPECT_EQ(stream->unsent_bytes(), 0u);
}

TEST_F(IOStreamSocketTest, SocketQuietUntilThePeerSendsOrCloses) {
  auto [ours, peer] = pair();
  auto stream = IOStream::from_fd(ours);
  EXPECT_TRUE(stream->socket_quiet());
  EXPECT_EQ(::write(peer, "x", 1), 1);
  EXPECT_FALSE(stream->socket_quiet());
  close_and_wait(stream);
  EXPECT_FALSE(stream->socket_quiet());

  auto [ours2, peer2] = pair();
  auto stream2 = IOStream::from_fd(ours2);
  ::shutdown(peer2, SHUT_WR);
  EXPECT_FALSE(stream2->socket_quiet()) << "an EOF waits";
  close_and_wait(stream2);
}

}  // namespace

TEST(IPv4TextTest, WritesWhatInetNtopWrites) {
  // Every octet value in every position, and the extremes.
  std::vector<std::uint32_t> hosts = {0x00000000u, 0xffffffffu, 0x7f000001u, 0x0a006409u};
  for (std::uint32_t v = 0; v < 256; ++v) {
    hosts.push_back(v << 24 | 0x010203u);
    hosts.push_back(0x01000000u | v << 16 | 0x0203u);
    hosts.push_back(0x01020000u | v << 8 | 0x03u);
    hosts.push_back(0x01020300u | v);
  }
  for (std::uint32_t host : hosts) {
    in_addr a{};
    a.s_addr = htonl(host);
    char expected[INET_ADDRSTRLEN];
    ASSERT_NE(inet_ntop(AF_INET, &a, expected, sizeof expected), nullptr);
    EXPECT_EQ(detail::ipv4_text(a.s_addr), expected);
  }
}
