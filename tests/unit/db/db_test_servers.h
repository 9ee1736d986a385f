// Throwaway PostgreSQL and Redis servers for the database tests: started by the test in a
// temporary directory, on a free loopback port and a private socket directory.
#pragma once

#include <sys/types.h>
#include <string>

namespace tronada::test_support {

/// A PostgreSQL server of its own. initdb runs once per machine into a cached template
/// that every server copies (initdb takes seconds, a copy a fraction of one). As root,
/// initdb and postgres run as the `postgres` user (or `nobody`), since postgres refuses
/// to run as root. The server dies with the test process (PR_SET_PDEATHSIG).
class PgTestServer {
 public:
  /// Whether Debian's postgresql binaries are installed; tests skip when they are not.
  static bool available();

  PgTestServer();  // starts it; throws std::runtime_error with the server log on failure
  ~PgTestServer();
  PgTestServer(const PgTestServer&) = delete;
  PgTestServer& operator=(const PgTestServer&) = delete;

  /// SIGKILL to the postmaster (no shutdown). Its backends run in sessions of their own
  /// (postgres's InitPostmasterChild calls setsid), so the signal does not reach them:
  /// each notices its postmaster's death on its own, sends its client a FATAL
  /// "terminating connection due to unexpected postmaster exit" and exits, as after a
  /// real crash. Until then an idle backend may still take a statement.
  void kill();
  /// Starts it again on the same port and data (crash recovery runs first).
  void start();

  int port() const { return port_; }
  /// TCP on 127.0.0.1.
  std::string conninfo() const;
  /// The Unix socket in the server's directory.
  std::string socket_conninfo() const;
  std::string log() const;

 private:
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

/// A redis-server of its own, without persistence.
class RedisTestServer {
 public:
  static bool available();

  RedisTestServer();
  ~RedisTestServer();
  RedisTestServer(const RedisTestServer&) = delete;
  RedisTestServer& operator=(const RedisTestServer&) = delete;

  void kill();
  void start();
  int port() const { return port_; }

 private:
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace tronada::test_support
