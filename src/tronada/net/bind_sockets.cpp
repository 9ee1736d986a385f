#include "tronada/net/bind_sockets.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace tronada {

namespace {

[[noreturn]] void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

std::string describe(const std::string& address, int port) {
  return (address.empty() ? std::string("*") : address) + ":" + std::to_string(port);
}

}  // namespace

int socket_port(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) < 0) return -1;
  if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return -1;
}

std::vector<int> bind_sockets(int port, const std::string& address, const BindOptions& options) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  if (!address.empty()) hints.ai_flags |= AI_ADDRCONFIG;
  addrinfo* results = nullptr;
  std::string port_text = std::to_string(port);
  int rc =
      getaddrinfo(address.empty() ? nullptr : address.c_str(), port_text.c_str(), &hints, &results);
  if (rc != 0) {
    throw std::runtime_error("cannot resolve " + describe(address, port) + ": " + gai_strerror(rc));
  }
  std::vector<int> fds;
  int bound_port = port;
  try {
    for (addrinfo* ai = results; ai; ai = ai->ai_next) {
      // getaddrinfo can return the same address twice (once per protocol on some
      // systems); binding it twice would fail with EADDRINUSE.
      bool duplicate = false;
      for (addrinfo* prev = results; prev != ai; prev = prev->ai_next) {
        if (prev->ai_addrlen == ai->ai_addrlen &&
            std::memcmp(prev->ai_addr, ai->ai_addr, ai->ai_addrlen) == 0) {
          duplicate = true;
        }
      }
      if (duplicate) continue;
      int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) {
        // An IPv6 address on a host without IPv6 is skipped, as Tornado does.
        if (errno == EAFNOSUPPORT) continue;
        throw_errno(errno, "socket() for " + describe(address, port));
      }
      fds.push_back(fd);
      int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (options.reuse_port) {
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
          throw_errno(errno, "SO_REUSEPORT on " + describe(address, port));
        }
      }
      if (options.nodelay) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (options.defer_accept_seconds > 0) {
        setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &options.defer_accept_seconds,
                   sizeof options.defer_accept_seconds);
      }
      if (ai->ai_family == AF_INET6) {
        // Keep IPv6 sockets to IPv6 so the IPv4 socket of the same port can bind too.
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        if (port == 0 && bound_port != 0) {
          reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_port = htons(bound_port);
        }
      } else if (ai->ai_family == AF_INET && port == 0 && bound_port != 0) {
        reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_port = htons(bound_port);
      }
      if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        throw_errno(errno, "cannot bind " + describe(address, bound_port));
      }
      if (listen(fd, options.backlog) < 0) {
        throw_errno(errno, "cannot listen on " + describe(address, bound_port));
      }
      if (bound_port == 0) bound_port = socket_port(fd);
    }
  } catch (...) {
    freeaddrinfo(results);
    for (int fd : fds) ::close(fd);
    throw;
  }
  freeaddrinfo(results);
  if (fds.empty()) throw std::runtime_error("no usable address for " + describe(address, port));
  return fds;
}

int bind_unix_socket(const std::string& path, int mode, int backlog) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    throw std::invalid_argument("unix socket path is empty or too long: " + path);
  }
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      throw std::runtime_error("refusing to replace " + path + ": it exists and is not a socket");
    }
    ::unlink(path.c_str());
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno(errno, "socket(AF_UNIX)");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    int err = errno;
    ::close(fd);
    throw_errno(err, "cannot bind unix:" + path);
  }
  chmod(path.c_str(), static_cast<mode_t>(mode));
  if (listen(fd, backlog) < 0) {
    int err = errno;
    ::close(fd);
    throw_errno(err, "cannot listen on unix:" + path);
  }
  return fd;
}

}  // namespace tronada
