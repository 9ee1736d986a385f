#include "tronada/net/systemd.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

namespace tronada {

namespace {

constexpr int kFirstListenFd = 3;  // SD_LISTEN_FDS_START

bool parse_int(const char* text, long& out) {
  if (!text) return false;
  const char* end = text + std::strlen(text);
  auto [p, ec] = std::from_chars(text, end, out);
  return ec == std::errc() && p == end && p != text;
}

}  // namespace

std::vector<int> systemd_listen_fds() {
  std::vector<int> fds;
  long pid = 0;
  long count = 0;
  // The variables name one process: a child that inherited them from a parent that did
  // not call this must not take the parent's sockets.
  if (parse_int(std::getenv("LISTEN_PID"), pid) && pid == ::getpid() &&
      parse_int(std::getenv("LISTEN_FDS"), count) && count > 0 && count < 1024) {
    for (int fd = kFirstListenFd; fd < kFirstListenFd + count; ++fd) {
      int fl = ::fcntl(fd, F_GETFD);
      if (fl < 0) continue;  // not open: the manager's mistake; skip it rather than crash
      ::fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
      fds.push_back(fd);
    }
  }
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
  return fds;
}

bool systemd_notify(std::string_view state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (!path || !*path) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::size_t len = std::strlen(path);
  if (len >= sizeof(addr.sun_path)) return false;
  std::memcpy(addr.sun_path, path, len);
  // '@' names a socket in the abstract namespace, whose first byte is NUL.
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  auto addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  // A datagram to a local socket does not block for long; the manager reads it at once.
  ssize_t n = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                       reinterpret_cast<const sockaddr*>(&addr), addr_len);
  ::close(fd);
  return n == static_cast<ssize_t>(state.size());
}

}  // namespace tronada
