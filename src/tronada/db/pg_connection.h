// One PostgreSQL connection on the IOLoop, on libpq's non-blocking API.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "tronada/async/future.h"
#include "tronada/db/pg_error.h"
#include "tronada/db/pg_param.h"
#include "tronada/db/pg_result.h"
#include "tronada/loop/io_loop.h"

typedef struct pg_conn PGconn;

namespace tronada::pg {

/// A NOTIFY received on a channel this connection LISTENs to.
struct Notification {
  std::string channel;
  std::string payload;
  int backend_pid = 0;  // the notifying session's server process
};

/// One connection to a PostgreSQL server, driven by the loop: its socket is watched with
/// the loop's fd handlers and libpq is only ever called in non-blocking mode, so a slow
/// statement never stalls the loop. Statements are queued and run one at a time in
/// order; every call returns a Future that can be co_awaited.
///
///     auto conn = co_await pg::Connection::connect("host=/run/postgresql dbname=app");
///     pg::Result r = co_await conn->query("SELECT name FROM users WHERE id = $1", id);
///     std::string name = r[0].get<std::string>("name");
///
/// Parameters always travel apart from the SQL text (PQsendQueryParams), so values are
/// never spliced into a statement. Failures arrive as exceptions: ServerError (with the
/// server's message and SQLSTATE), ConnectionError, TimeoutError.
///
/// Lifetime: owned by shared_ptr. While statements are queued or a connect is under way
/// the connection keeps itself alive, so their futures always complete; an idle
/// connection whose last owner lets go is closed (PQfinish) at once. Use it on its
/// loop's thread only. Name resolution: give `host` an IP address or a socket directory
/// (or set `hostaddr`), since libpq resolves host names with a blocking call.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using NotificationHandler = std::function<void(const Notification&)>;

  /// Opens a connection. `conninfo` is a libpq connection string ("host=127.0.0.1
  /// port=5432 dbname=app user=app") or URI ("postgresql://app@127.0.0.1/app"). Fails
  /// with ConnectionError if the server refuses, is unreachable or takes longer than
  /// `timeout`.
  static Future<std::shared_ptr<Connection>> connect(std::string conninfo,
                                                     Duration timeout = std::chrono::seconds(10));

  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Runs one statement with `$1`, `$2`... bound to `args` (see Param for the types).
  template <typename... Args>
  Future<Result> query(std::string sql, const Args&... args) {
    return execute(std::move(sql), Params{Param(args)...});
  }

  /// Runs one statement with `params`. With a timeout (counted from this call, so it
  /// covers waiting behind earlier statements), fails with TimeoutError once it passes
  /// and asks the server to cancel the statement; the connection stays usable.
  Future<Result> execute(std::string sql, Params params,
                         std::optional<Duration> timeout = std::nullopt);

  /// Runs a script of several statements separated by ';', without parameters (for
  /// schema setup); the result is the last statement's. Never build a script from
  /// values: use execute() with parameters for those.
  Future<Result> execute_script(std::string sql, std::optional<Duration> timeout = std::nullopt);

  /// Asks the server to cancel the statement running now (a cancel request on a
  /// separate connection, sent from the executor since libpq's call blocks). The
  /// statement then fails with ServerError, SQLSTATE 57014.
  void cancel();

  /// Called (on the loop) for every NOTIFY on a channel this session LISTENs to.
  void set_notification_handler(NotificationHandler handler) {
    on_notification_ = std::move(handler);
  }
  /// Called once when the connection breaks or is closed.
  void set_close_handler(std::function<void()> handler) { on_close_ = std::move(handler); }

  /// Closes the connection; queued statements fail with ConnectionError. Idempotent.
  void close();

  bool is_open() const { return conn_ != nullptr && !connecting_; }
  /// Takes in, without waiting, what the server sent since the loop last looked (as the
  /// loop's next readiness would) and returns is_open(). An idle connection whose
  /// server went away, with its goodbye (a FATAL message) and hang-up still unread,
  /// closes here rather than failing the next statement; notifications found are
  /// delivered. A few non-blocking reads.
  bool check_open();
  /// Statements queued or running.
  std::size_t pending() const { return queue_.size(); }
  /// True inside BEGIN ... COMMIT, also while a failed transaction awaits its ROLLBACK
  /// (as of the last statement that completed).
  bool in_transaction() const;
  int server_version() const;
  int backend_pid() const;
  /// Why the connection closed (libpq's message), empty while it is open.
  const std::string& close_reason() const { return close_reason_; }

 private:
  struct Pending;
  explicit Connection(IOLoop& loop);

  void start_connect(const std::string& conninfo, Duration timeout);
  void poll_connect();
  void watch(int events);
  void on_io(int events);
  Future<Result> enqueue(std::shared_ptr<Pending> pending, std::optional<Duration> timeout);
  void send_next();
  bool flush();
  void drain_results();
  void deliver_notifications();
  void on_timeout(const std::shared_ptr<Pending>& pending);
  void fail(const std::string& reason);
  void release_self_if_idle();

  IOLoop& loop_;
  PGconn* conn_ = nullptr;
  int fd_ = -1;
  int watched_ = 0;  // the events the poll handle watches; -1: unknown, watch() re-arms
  bool connecting_ = false;
  bool flushing_ = false;
  std::optional<Promise<std::shared_ptr<Connection>>> connect_promise_;
  TimeoutHandle connect_timer_;
  std::deque<std::shared_ptr<Pending>> queue_;  // front is in flight once sent
  std::shared_ptr<Connection> self_;            // set while work is pending
  NotificationHandler on_notification_;
  std::function<void()> on_close_;
  std::string close_reason_;
};

}  // namespace tronada::pg
