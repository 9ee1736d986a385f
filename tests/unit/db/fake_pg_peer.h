// A scripted stand-in for a PostgreSQL server, for the failures a real server produces
// only by chance (a backend's goodbye and its hang-up landing in one readiness).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "db/loopback_peer.h"

namespace tronada::test_support {

/// A server on 127.0.0.1 that the test drives message by message. A thread accepts
/// clients and answers their startup (no TLS, trust, ReadyForQuery); after that the
/// test runs each accepted socket itself with blocking calls on the loop's thread, so
/// the loop polls only once a scripted step is complete on the client's socket. Every
/// wait is bounded, and the destructor stops the thread.
class FakePgPeer {
 public:
  FakePgPeer();
  ~FakePgPeer();
  FakePgPeer(const FakePgPeer&) = delete;
  FakePgPeer& operator=(const FakePgPeer&) = delete;

  /// For Connection::connect and Pool: TCP to this peer, TLS and GSS encryption off.
  std::string conninfo() const;
  /// The backend pid the `client`-th client (from 0, in order of connecting) is told.
  static int backend_pid(std::size_t client) { return 4242 + static_cast<int>(client); }

  /// Reads the client's next statement through its Sync (extended protocol) or a
  /// simple Query, and returns its SQL. Throws std::runtime_error if the client is gone
  /// or nothing arrives.
  std::string read_statement(std::size_t client = 0);

  /// What a backend does when its postmaster dies: a FATAL ErrorResponse with
  /// `message`, then it exits; `how` says whether the client's data was left unread (a
  /// reset) or not (an orderly close). Returns once the client's socket holds both.
  void say_fatal_and_hang_up(const std::string& message, Hangup how, std::size_t client = 0);

 private:
  void serve();                                     // the thread: answers startups until stopped
  bool answer_startup(int fd, std::size_t client);  // false if the client gave up
  int client_fd(std::size_t client);                // waits (bounded) for that client's startup

  LoopbackListener listener_;
  std::mutex mutex_;
  std::condition_variable answered_;
  std::vector<int> clients_;  // accepted sockets, -1 once hung up
  bool serving_ = true;
  std::thread thread_;
};

}  // namespace tronada::test_support
