// The admin listener (`--admin ADDR`, `[server] admin`): /metrics, /healthz and /readyz
// on an address of its own, never on the public ports.
#pragma once

#include <sys/types.h>

#include <pthread.h>

#include <optional>
#include <string>
#include <string_view>

#include "cli/bind_address.h"
#include "tronada/metrics/shared_region.h"

namespace tronada::cli {

/// What the admin listener needs of a request: the method, the path without its query
/// and the Accept header (for OpenMetrics).
struct AdminRequest {
  std::string method;
  std::string path;
  std::string accept;
};

/// Parses a request head (request line and header lines up to the blank line, CRLF or
/// LF). nullopt for anything that is not an HTTP/1.x request line.
std::optional<AdminRequest> parse_admin_request(std::string_view head);

/// The whole response (head and body, `Connection: close`) to `request`, from the
/// region's state now: /metrics, /healthz, /readyz; 404 elsewhere, 405 for methods other
/// than GET and HEAD, 400 for a malformed head (`request` nullopt).
std::string answer_admin(const std::optional<AdminRequest>& request,
                         const metrics::SharedRegion& region);

/// Whether /readyz answers 200 for `snapshot`: some process is serving and not draining.
bool is_ready(const metrics::Snapshot& snapshot);

/// The listener: a socket bound at construction (so a bad address fails before the
/// server forks or serves) and one thread that answers it, off the event loop, so a
/// scrape never costs the loop anything and still answers while the loop is stuck
/// (which is what /healthz reports). The thread reads only the shared region; it takes
/// no lock a forked child could inherit held, and a child closes the inherited socket
/// (pthread_atfork). Requests are answered one at a time, each bounded by a 2 s
/// timeout.
class AdminServer {
 public:
  /// Binds `address` (TCP, or unix: with mode 0660). Throws std::system_error.
  AdminServer(const BindAddress& address, const metrics::SharedRegion& region);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  /// Starts answering.
  void start();

 private:
  static void* run(void* self);
  void serve_one(int fd);
  static void on_fork_child();

  const metrics::SharedRegion& region_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};  // a pipe whose write end stops the thread
  pthread_t thread_{};
  bool started_ = false;
  pid_t owner_;
  std::string unix_path_;
  ino_t unix_inode_ = 0;  // of the socket file bound here
};

}  // namespace tronada::cli
