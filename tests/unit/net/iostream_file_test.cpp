// IOStream::write_file: file regions sent with sendfile (plain streams) or read in blocks
// (transports that must see the bytes), in order with ordinary writes, with backpressure,
// and letting go of the file when the stream closes.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "support/loop_check.h"
#include "tronada/async/run_sync.h"
#include "tronada/net/iostream.h"

using namespace tronada;
using namespace std::chrono_literals;
using test_support::next_tick;

namespace {

constexpr auto kTimeout = 20s;

struct FdPair {
  int ours;
  int peer;
};

FdPair unix_pair() {
  int sv[2] = {-1, -1};
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0) << std::strerror(errno);
  return {sv[0], sv[1]};
}

FdPair tcp_pair() {
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  EXPECT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(listen(listener, 1), 0);
  EXPECT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_EQ(connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  int accepted = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  EXPECT_GE(accepted, 0);
  ::close(listener);
  return {accepted, client};
}

void set_nonblocking(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

std::string read_available(int fd, std::size_t max = 1 << 20) {
  std::string out;
  char buf[65536];
  while (out.size() < max) {
    ssize_t n = ::read(fd, buf, std::min(sizeof buf, max - out.size()));
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

void run_until(const std::function<bool()>& done) {
  run_sync(
      [&]() -> Task<void> {
        while (!done()) co_await next_tick();
      },
      kTimeout);
}

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 4093) % 26);
  return s;
}

/// A temporary file with `data`, open for reading.
std::shared_ptr<const OpenFile> temp_file(const std::string& data) {
  std::FILE* f = std::tmpfile();
  EXPECT_NE(f, nullptr);
  EXPECT_EQ(std::fwrite(data.data(), 1, data.size(), f), data.size());
  std::fflush(f);
  int fd = ::dup(fileno(f));
  std::fclose(f);
  return std::make_shared<OpenFile>(fd);
}

// As TLS does: its bytes on the wire are not the plaintext (a 4-byte header per write),
// so write_file must read the file and hand the blocks down.
class FramingStream : public IOStream {
 public:
  static std::shared_ptr<FramingStream> wrap(int fd) {
    auto* pipe = new uv_pipe_t;
    uv_pipe_init(IOLoop::current().uv(), pipe, 0);
    EXPECT_EQ(uv_pipe_open(pipe, fd), 0);
    std::shared_ptr<FramingStream> s(new FramingStream(reinterpret_cast<uv_stream_t*>(pipe)));
    keep_alive_until_closed(s);
    return s;
  }
  std::size_t frames = 0;

 protected:
  explicit FramingStream(uv_stream_t* h) : IOStream(h, {}) {}
  void send_plain(const std::string_view* pieces, std::size_t count) override {
    std::size_t plain = 0;
    std::string framed = "HDR:";
    for (std::size_t i = 0; i < count; ++i) {
      plain += pieces[i].size();
      framed.append(pieces[i]);
    }
    ++frames;
    std::string_view view(framed);
    send_raw(&view, 1, plain);
  }
  bool transport_is_plaintext() const override { return false; }
};

class IOStreamFileTest : public ::testing::Test {
 protected:
  IOStreamFileTest() { loop_.make_current(); }
  void TearDown() override {
    for (int fd : fds_) ::close(fd);
    test_support::expect_clean_close(loop_);
  }
  void close_and_wait(const std::shared_ptr<IOStream>& stream) {
    stream->close();
    run_until([&] { return stream->handle() == nullptr; });
  }

  IOLoop loop_;
  std::vector<int> fds_;
};

TEST_F(IOStreamFileTest, RegionGoesOutBetweenTheWritesAroundIt) {
  for (auto make : {unix_pair, tcp_pair}) {
    auto [ours, peer] = make();
    fds_.push_back(peer);
    set_nonblocking(peer);
    auto stream = IOStream::from_fd(ours);
    const std::string data = pattern(300000);
    auto file = temp_file(data);
    bool file_done = false, tail_done = false;
    stream->write("head:", nullptr);
    stream->write_file({file, 1000, 200000}, [&] {
      file_done = true;
      EXPECT_FALSE(tail_done);
    });
    stream->write(":tail", [&] { tail_done = true; });
    std::string expected = "head:" + data.substr(1000, 200000) + ":tail";
    std::string received;
    run_until([&] {
      received += read_available(peer);
      return received.size() >= expected.size() && tail_done;
    });
    EXPECT_TRUE(received == expected);
    EXPECT_TRUE(file_done);
    EXPECT_EQ(stream->write_buffer_size(), 0u);
    // Sent: the stream holds the file no more.
    EXPECT_EQ(file.use_count(), 1);
    close_and_wait(stream);
  }
}

TEST_F(IOStreamFileTest, SlowReaderGetsTheFileWithBackpressure) {
  auto [ours, peer] = tcp_pair();
  fds_.push_back(peer);
  set_nonblocking(peer);
  IOStreamOptions options;
  options.write_high_water = 64 * 1024;
  auto stream = IOStream::from_fd(ours, options);
  const std::string data = pattern(16u << 20);
  auto file = temp_file(data);
  std::string received;
  run_sync(
      [&]() -> Task<void> {
        // Bytes queued in libuv first: the file must wait behind them.
        auto head = stream->write(pattern(8u << 20));
        stream->write_file({file, 0, data.size()});
        stream->write("END", nullptr);
        auto drained = stream->drain();
        for (int i = 0; i < 20; ++i) co_await next_tick();
        // The peer reads nothing: the file is far from sent, and counted as queued.
        EXPECT_FALSE(drained.done());
        EXPECT_GT(stream->write_buffer_size(), data.size());
        // Slowly: one read per loop iteration.
        while (received.size() < (8u << 20) + data.size() + 3) {
          received += read_available(peer, 256 * 1024);
          co_await next_tick();
        }
        co_await head;
        co_await drained;
      },
      kTimeout);
  ASSERT_EQ(received.size(), (8u << 20) + data.size() + 3);
  EXPECT_TRUE(received.compare(0, 8u << 20, pattern(8u << 20)) == 0);
  EXPECT_TRUE(received.compare(8u << 20, data.size(), data) == 0);
  EXPECT_EQ(received.substr(received.size() - 3), "END");
  EXPECT_EQ(file.use_count(), 1);
  close_and_wait(stream);
}

TEST_F(IOStreamFileTest, TransportThatMustSeeTheBytesGetsThemReadInBlocks) {
  auto [ours, peer] = unix_pair();
  fds_.push_back(peer);
  set_nonblocking(peer);
  auto stream = FramingStream::wrap(ours);
  const std::string data = pattern(200000);
  auto file = temp_file(data);
  bool done = false;
  stream->write("a", nullptr);
  stream->write_file({file, 5, data.size() - 5}, [&] { done = true; });
  stream->write("z", nullptr);
  std::string received;
  // Every frame is the plaintext and a 4-byte header.
  run_until([&] {
    received += read_available(peer);
    return done && received.size() == data.size() - 5 + 2 + 4 * stream->frames;
  });
  // Unframe: every write went down through send_plain as "HDR:" + plaintext.
  std::string plain;
  std::size_t pos = 0;
  while ((pos = received.find("HDR:", pos)) != std::string::npos) {
    auto next = received.find("HDR:", pos + 4);
    plain +=
        received.substr(pos + 4, next == std::string::npos ? std::string::npos : next - pos - 4);
    pos = next;
  }
  EXPECT_TRUE(plain == "a" + data.substr(5) + "z");
  EXPECT_GE(stream->frames, 2u + (data.size() - 5) / (64 * 1024));
  close_and_wait(stream);
}

TEST_F(IOStreamFileTest, FileShorterThanTheRegionClosesTheStream) {
  auto [ours, peer] = tcp_pair();
  fds_.push_back(peer);
  set_nonblocking(peer);
  auto stream = IOStream::from_fd(ours);
  auto file = temp_file(pattern(1000));
  bool closed = false;
  stream->set_close_callback([&] { closed = true; });
  bool completed = false;
  // 5000 bytes promised, 1000 there (a file truncated after it was opened).
  stream->write_file({file, 0, 5000}, [&] { completed = true; });
  std::string received;
  run_until([&] {
    received += read_available(peer);
    return closed;
  });
  EXPECT_FALSE(completed);
  EXPECT_EQ(stream->error(), uv_error(UV_EIO));
  EXPECT_EQ(received, pattern(1000));
  EXPECT_EQ(file.use_count(), 1);
}

TEST_F(IOStreamFileTest, PeerGoneMidFileReleasesTheFile) {
  auto [ours, peer] = tcp_pair();
  auto stream = IOStream::from_fd(ours);
  const std::string data = pattern(32u << 20);
  auto file = temp_file(data);
  bool closed = false;
  stream->set_close_callback([&] { closed = true; });
  stream->set_data_handler([](std::string_view) {});
  stream->write_file({file, 0, data.size()});
  run_until([&] { return stream->write_buffer_size() < data.size(); });
  EXPECT_GT(stream->write_buffer_size(), 0u);  // the peer read nothing: stuck
  EXPECT_GT(file.use_count(), 1);
  // The client vanishes (a reset, as a killed process's socket).
  linger l{1, 0};
  setsockopt(peer, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(peer);
  run_until([&] { return closed; });
  EXPECT_EQ(file.use_count(), 1);
}

TEST_F(IOStreamFileTest, WriteFileAfterCloseIsANoOp) {
  auto [ours, peer] = unix_pair();
  fds_.push_back(peer);
  auto stream = IOStream::from_fd(ours);
  auto file = temp_file("data");
  close_and_wait(stream);
  stream->write_file({file, 0, 4}, [] { ADD_FAILURE() << "must not complete"; });
  EXPECT_EQ(file.use_count(), 1);
}

}  // namespace
