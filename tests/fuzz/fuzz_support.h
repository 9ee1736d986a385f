// Helpers shared by the libFuzzer targets: input splitting, invariant checks, and an
// in-memory IOStream for driving the connection classes without a peer.
#pragma once

#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tronada/base/log.h"
#include "tronada/loop/io_loop.h"
#include "tronada/net/iostream.h"

namespace fuzz {

inline std::string_view as_view(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

/// An invariant the target checks; a failure aborts, which libFuzzer reports as a crash
/// and saves the input.
#define FUZZ_CHECK(cond)                                                                \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)

/// Splits `data` at points derived from the data itself: small pieces, single bytes
/// often, so every parser is also fed its input in an arbitrary split. Deriving the
/// split from the bytes (rather than from a prefix of the input) keeps the seed corpus
/// made of real, unprefixed messages, while every mutation still changes the split.
inline std::vector<std::string_view> split(std::string_view data) {
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a over the input, then a mixer
  for (char c : data) {
    h ^= static_cast<std::uint8_t>(c);
    h *= 1099511628211ull;
  }
  std::vector<std::string_view> pieces;
  std::size_t pos = 0;
  while (pos < data.size()) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    std::size_t n = (h & 3) == 0 ? 1 : 1 + (h >> 8) % ((h & 4) ? 7 : 97);
    pieces.push_back(data.substr(pos, n));
    pos += pieces.back().size();
  }
  return pieces;
}

/// Quiets tronada's log (error responses and closed connections log at info/warning) so
/// that libFuzzer's output stays readable and fast.
inline void quiet_log() {
  static std::FILE* null = std::fopen("/dev/null", "w");
  tronada::log::set_sink(null);
}

/// An IOStream whose input is handed in by the target and whose output is collected in a
/// string, for HTTP1Connection and HTTP2Session. It still owns a real libuv pipe handle
/// (one end of a socketpair nobody writes to), because IOStream starts and stops reads
/// on its handle and closes it; the bytes themselves never touch the kernel.
///
/// Lifetime: as any IOStream, it holds itself from open() until the handle's close
/// callback; the socketpair's other end is closed by the destructor.
class MemoryStream final : public tronada::IOStream {
 public:
  static std::shared_ptr<MemoryStream> open(tronada::IOLoop& loop) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) std::abort();
    auto* pipe = new uv_pipe_t;
    uv_pipe_init(loop.uv(), pipe, 0);
    if (uv_pipe_open(pipe, sv[0]) != 0) std::abort();
    std::shared_ptr<MemoryStream> s(new MemoryStream(reinterpret_cast<uv_stream_t*>(pipe), sv[1]));
    keep_alive_until_closed(s);
    return s;
  }
  ~MemoryStream() override { ::close(peer_fd_); }

  /// Bytes from the peer, as if one socket read returned them.
  void receive(std::string_view data) { deliver(data.data(), data.size()); }
  /// The peer closed its side.
  void receive_eof() {
    if (!closed()) on_transport_eof();
  }
  const std::string& output() const { return output_; }

 protected:
  void send_plain(const std::string_view* pieces, std::size_t count) override {
    std::size_t total = 0;
    for (std::size_t i = 0; i < count; ++i) {
      output_.append(pieces[i]);
      total += pieces[i].size();
    }
    complete_written(total);
  }

 private:
  MemoryStream(uv_stream_t* handle, int peer_fd) : IOStream(handle, {}), peer_fd_(peer_fd) {}
  int peer_fd_;
  std::string output_;
};

/// Runs ready callbacks and due I/O without blocking, `rounds` times or until `done`.
template <typename Done>
inline void run_loop(tronada::IOLoop& loop, Done done, int rounds = 64) {
  for (int i = 0; i < rounds && !done(); ++i) uv_run(loop.uv(), UV_RUN_NOWAIT);
}

}  // namespace fuzz
