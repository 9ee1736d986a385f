#include "db/loopback_peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <stdexcept>

namespace tronada::test_support {
namespace {

// Bounds for steps that take microseconds, generous for a loaded machine.
constexpr int kSocketTimeoutSeconds = 30;
constexpr int kHangupWaitSteps = 30000;  // of 1 ms each

void set_timeouts(int fd) {
  timeval tv{kSocketTimeoutSeconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

int port_of(const sockaddr_in& addr) {
  return ntohs(addr.sin_port);
}

// The socket of this process connected from local port `port` to peer port `peer_port`.
int find_socket(int port, int peer_port) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    int fd = 0;
    try {
      fd = std::stoi(entry.path().filename().string());
    } catch (const std::exception&) {
      continue;
    }
    sockaddr_in local{}, peer{};
    socklen_t len = sizeof local;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0 ||
        local.sin_family != AF_INET || port_of(local) != port)
      continue;
    len = sizeof peer;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) == 0 &&
        port_of(peer) == peer_port)
      return fd;
  }
  throw std::runtime_error("loopback peer: the client's socket is not in this process");
}

}  // namespace

LoopbackListener::LoopbackListener() {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd_, 4) != 0 || getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd_ >= 0) ::close(fd_);
    throw std::runtime_error("loopback peer: cannot listen on 127.0.0.1");
  }
  port_ = port_of(addr);
  set_timeouts(fd_);  // SO_RCVTIMEO bounds accept() too
}

LoopbackListener::~LoopbackListener() {
  ::close(fd_);
}

int LoopbackListener::accept() {
  int fd;
  do {
    fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) throw std::runtime_error("loopback peer: no client connected");
  set_timeouts(fd);
  return fd;
}

void LoopbackListener::shutdown() {
  ::shutdown(fd_, SHUT_RDWR);
}

void read_exact(int fd, void* buf, std::size_t n) {
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t got = ::recv(fd, p, n, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) throw std::runtime_error("loopback peer: the client is gone or silent");
    p += got;
    n -= static_cast<std::size_t>(got);
  }
}

void write_all(int fd, const std::string& bytes) {
  std::size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error("loopback peer: cannot write to the client");
    off += static_cast<std::size_t>(n);
  }
}

void hang_up_and_wait_until_seen(int fd, Hangup how) {
  // Found first: once reset, the client's socket has no peer address left to match.
  sockaddr_in local{}, peer{};
  socklen_t len = sizeof local;
  getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len);
  len = sizeof peer;
  getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len);
  int client = find_socket(port_of(peer), port_of(local));
  if (how == Hangup::reset) {
    linger reset{1, 0};  // a zero linger makes close() send a reset
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  }
  ::close(fd);
  short seen = how == Hangup::reset ? POLLERR : POLLRDHUP;
  for (int i = 0; i < kHangupWaitSteps; ++i) {
    pollfd p{client, POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, 0) == 1 && (p.revents & seen)) return;
    ::usleep(1000);
  }
  throw std::runtime_error("loopback peer: the client never saw the hang-up");
}

}  // namespace tronada::test_support
