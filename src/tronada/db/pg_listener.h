// LISTEN/NOTIFY: PostgreSQL notifications delivered as callbacks, across reconnects.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "tronada/async/future.h"
#include "tronada/db/pg_connection.h"

namespace tronada::pg {

struct ListenerOptions {
  Duration connect_timeout = std::chrono::seconds(10);
  /// Wait before reconnecting after the connection broke, doubled after each failed
  /// attempt up to the maximum.
  Duration reconnect_delay = std::chrono::milliseconds(100);
  Duration max_reconnect_delay = std::chrono::seconds(5);
};

/// Keeps one connection open for LISTEN and calls a handler for every NOTIFY on its
/// channels. When the connection breaks it reconnects with backoff and LISTENs again;
/// notifications sent while it was away are lost (PostgreSQL queues them only for live
/// sessions), so the reconnect handler is the place to catch up (re-read the state).
///
///     pg::Listener listener(conninfo);
///     co_await listener.listen("jobs", [](const pg::Notification& n) { ... });
///     // elsewhere: SELECT pg_notify('jobs', $1)
///
/// Channel names are case-sensitive, exactly as pg_notify() takes them. Lifetime: the
/// Listener may be destroyed at any time (it closes its connection); use it on its
/// loop's thread.
class Listener {
 public:
  using Handler = std::function<void(const Notification&)>;

  explicit Listener(std::string conninfo, ListenerOptions options = {});
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  /// Calls `handler` for each notification on `channel` (replacing an earlier handler).
  /// Completes once the server has confirmed the LISTEN; if no connection is open it
  /// completes with the next successful (re)connect, or fails with ConnectionError if
  /// that attempt fails (the channel stays registered and the Listener keeps trying).
  Future<void> listen(std::string channel, Handler handler);
  /// Stops delivering `channel`.
  Future<void> unlisten(std::string channel);

  /// Called after every reconnect, once the channels are LISTENed again.
  void set_reconnect_handler(std::function<void()> handler);

  bool connected() const;
  /// Closes the connection and stops reconnecting. Idempotent.
  void close();

  struct State;

 private:
  std::shared_ptr<State> state_;
};

/// `name` as a quoted SQL identifier ("jobs" -> "\"jobs\""), for the statements that
/// take no parameters (LISTEN, UNLISTEN). Throws std::invalid_argument on a NUL byte.
std::string quote_identifier(std::string_view name);

}  // namespace tronada::pg
