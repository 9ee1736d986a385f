// FileRegion: a byte range of an open file, what IOStream::write_file sends (sendfile(2)
// on plain sockets) and what HTTP connections take as a response body.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <memory>

namespace tronada {

/// An open file descriptor shared by everyone sending from it (a file cache entry, the
/// responses in flight); closed when the last owner lets go, so a client that vanishes
/// mid-download gives its reference back with its stream.
class OpenFile {
 public:
  /// Takes ownership of `fd`.
  explicit OpenFile(int fd) noexcept : fd_(fd) {}
  ~OpenFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  OpenFile(const OpenFile&) = delete;
  OpenFile& operator=(const OpenFile&) = delete;

  int fd() const { return fd_; }

 private:
  int fd_;
};

/// `length` bytes of `file` starting at `offset`.
struct FileRegion {
  std::shared_ptr<const OpenFile> file;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

}  // namespace tronada
