// One Redis connection on the IOLoop, on hiredis's asynchronous API.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tronada/async/future.h"
#include "tronada/db/redis_reply.h"
#include "tronada/loop/io_loop.h"

struct redisAsyncContext;

namespace tronada::redis {

struct ConnectOptions {
  std::string host = "127.0.0.1";  // an IP address: hiredis resolves names blocking
  int port = 6379;
  std::string unix_path;  // used instead of host:port when set
  std::string password;   // AUTH before anything else when set
  int db = 0;             // SELECT when not 0
  Duration connect_timeout = std::chrono::seconds(5);
  /// Bound on each command; none if unset. A command that timed out leaves its reply
  /// to be read and dropped, so the connection stays in step.
  std::optional<Duration> command_timeout;
};

/// One hiredis async context whose socket the loop watches through fd handlers (the
/// adapter is hiredis's ev hooks: addRead/delRead/addWrite/delWrite/cleanup). Commands
/// may be sent at once, before the connection is up: hiredis buffers them. Commands
/// sent back to back without waiting are pipelined: they leave in one write and their
/// replies come back in order.
///
/// Arguments are sent as separate binary-safe strings (redisAsyncCommandArgv), never
/// through a format string.
///
/// Lifetime: owned by shared_ptr; while hiredis holds the context the connection keeps
/// itself alive (hiredis calls back into it until its cleanup hook runs). close() frees
/// the context; replies still awaited then fail with ConnectionError. Most code uses
/// Client (reconnects) or Subscriber (pub/sub) rather than this class.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  /// Called for pub/sub pushes: ("message", channel, payload) or ("pmessage", pattern,
  /// channel, payload), and (p)subscribe/(p)unsubscribe confirmations.
  using PushHandler = std::function<void(const Reply&)>;

  static std::shared_ptr<Connection> open(const ConnectOptions& options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Sends one command. The future fails with ServerError on an error reply,
  /// ConnectionError if the connection is or goes down first, TimeoutError after the
  /// command timeout.
  Future<Reply> command(const std::vector<std::string>& args);
  /// Sends one command whose error reply is returned as a Reply of type error.
  Future<Reply> command_raw(const std::vector<std::string>& args);

  /// Sends (P)SUBSCRIBE / (P)UNSUBSCRIBE; pushes go to the push handler. After a
  /// SUBSCRIBE the connection only takes subscription commands (Redis's rule).
  void subscribe_command(const std::vector<std::string>& args);
  void set_push_handler(PushHandler handler) { on_push_ = std::move(handler); }

  /// Completes when the connection is up (after AUTH/SELECT), fails if it never is.
  Future<void> connected() const { return connected_.get_future(); }
  /// Called once when the connection goes down, whatever the cause.
  void set_close_handler(std::function<void()> handler) { on_close_ = std::move(handler); }

  bool is_open() const { return ac_ != nullptr && !closing_; }
  void close();
  const std::string& close_reason() const { return close_reason_; }

 private:
  struct Pending;
  explicit Connection(IOLoop& loop, const ConnectOptions& options);
  void start(const ConnectOptions& options);
  Future<Reply> send(const std::vector<std::string>& args, bool raise_errors);
  void update_watch();
  void lost(const std::string& reason);

  static void on_connect(const redisAsyncContext* ac, int status);
  static void on_disconnect(const redisAsyncContext* ac, int status);
  static void on_reply(redisAsyncContext* ac, void* reply, void* privdata);
  static void on_push(redisAsyncContext* ac, void* reply, void* privdata);
  static void ev_add_read(void* data);
  static void ev_del_read(void* data);
  static void ev_add_write(void* data);
  static void ev_del_write(void* data);
  static void ev_cleanup(void* data);

  IOLoop& loop_;
  redisAsyncContext* ac_ = nullptr;
  int fd_ = -1;
  bool want_read_ = false;
  bool want_write_ = false;
  int watched_ = 0;  // the events the poll handle watches; -1: unknown, re-armed
  bool closing_ = false;
  bool up_ = false;
  std::optional<Duration> command_timeout_;
  Promise<void> connected_;
  TimeoutHandle connect_timer_;
  PushHandler on_push_;
  std::function<void()> on_close_;
  std::string close_reason_;
  std::shared_ptr<Connection> self_;  // while hiredis holds the context
};

/// hiredis's reply tree as a Reply.
Reply to_reply(const void* redis_reply);

}  // namespace tronada::redis
