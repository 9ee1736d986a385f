// Listening sockets made with plain system calls, so that they exist before fork()
// and before any loop touches them (Tornado's bind_sockets / bind_unix_socket).
#pragma once

#include <string>
#include <vector>

namespace tronada {

struct BindOptions {
  int backlog = 1024;
  /// SO_REUSEPORT: several processes bind the same port and the kernel spreads
  /// connections across them.
  bool reuse_port = false;
  /// TCP_NODELAY, set before listen(): Linux copies it to every accepted socket, so a
  /// server that wants it (HTTP) needs no system call per connection.
  bool nodelay = false;
  /// TCP_DEFER_ACCEPT, in seconds (0: off): the kernel hands a connection to accept()
  /// only once its first bytes arrived (or after about this long), so a server whose
  /// client speaks first (HTTP) is woken once per connection instead of twice. h2o sets
  /// 1 s; nginx's `listen ... deferred` does the same.
  int defer_accept_seconds = 0;
};

/// Listening, non-blocking, close-on-exec TCP sockets for `address` and `port`. An empty
/// address means every interface (IPv4 and IPv6); "localhost" may give both families.
/// Port 0 picks a free port, the same one for every family. Throws std::system_error
/// naming the address on failure, closing whatever it had opened.
std::vector<int> bind_sockets(int port, const std::string& address = "",
                              const BindOptions& options = {});

/// A listening Unix socket at `path`, replacing a stale socket file there (but never a
/// regular file). `mode` is applied to the socket file.
int bind_unix_socket(const std::string& path, int mode = 0600, int backlog = 1024);

/// The local port a bound socket listens on (for port 0).
int socket_port(int fd);

}  // namespace tronada
