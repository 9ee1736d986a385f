// The server's end of loopback TCP connections, scripted by a test with blocking calls:
// for failures that real servers produce only by chance.
#pragma once

#include <cstddef>
#include <string>

namespace tronada::test_support {

/// A listening socket on 127.0.0.1 whose accepted connections the test drives itself.
/// Every blocking call on it or on what it accepts gives up after a generous bound, so a
/// broken script fails its test rather than hanging it.
class LoopbackListener {
 public:
  LoopbackListener();  // on a free port; throws std::runtime_error if it cannot listen
  ~LoopbackListener();
  LoopbackListener(const LoopbackListener&) = delete;
  LoopbackListener& operator=(const LoopbackListener&) = delete;

  int port() const { return port_; }
  /// The next client's connection (blocking, bounded); throws if none comes.
  int accept();
  /// Wakes an accept() waiting in another thread; it then throws.
  void shutdown();

 private:
  int fd_ = -1;
  int port_ = 0;
};

/// Reads exactly `n` bytes; throws std::runtime_error on EOF, error or the bound.
void read_exact(int fd, void* buf, std::size_t n);
/// Writes all of `bytes`; throws std::runtime_error if it cannot.
void write_all(int fd, const std::string& bytes);

/// How a peer's end goes away.
enum class Hangup {
  fin,    // an orderly close: the client reads EOF
  reset,  // what a process that dies with unread data does: the client gets ECONNRESET
};

/// Closes `fd`, an accepted connection, and returns once the client's end, a socket of
/// this process, shows it. Loopback delivers the close asynchronously; waiting makes the
/// loop see the data sent before it and the close in one readiness, as it does when it
/// was busy elsewhere while the peer went away.
void hang_up_and_wait_until_seen(int fd, Hangup how);

}  // namespace tronada::test_support
