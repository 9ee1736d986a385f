// Redis pub/sub: messages delivered as callbacks, resubscribing after reconnects.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "tronada/db/redis_connection.h"

namespace tronada::redis {

/// Subscribes to channels and patterns on a connection of its own (a subscribed Redis
/// connection takes no other commands) and calls a handler for every message. When the
/// connection breaks it reconnects with backoff and subscribes again; messages published
/// meanwhile are lost (Redis pub/sub keeps nothing), hence the reconnect handler.
///
///     redis::Subscriber sub({.port = port});
///     co_await sub.subscribe("news", [](const std::string& channel, const std::string& msg) {});
///
/// Lifetime: may be destroyed at any time (it closes its connection); use it on its
/// loop's thread.
class Subscriber {
 public:
  using Handler = std::function<void(const std::string& channel, const std::string& message)>;

  explicit Subscriber(ConnectOptions options = {});
  ~Subscriber();
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  /// Delivers messages on `channel` to `handler`. Completes when the server confirmed
  /// the subscription (with the next successful connect if none is open now).
  Future<void> subscribe(std::string channel, Handler handler);
  /// The same for a glob pattern (PSUBSCRIBE "news.*"); the handler gets the channel.
  Future<void> psubscribe(std::string pattern, Handler handler);
  void unsubscribe(const std::string& channel);
  void punsubscribe(const std::string& pattern);

  void set_reconnect_handler(std::function<void()> handler);
  bool connected() const;
  void close();

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace tronada::redis
