// The Redis client most code uses: commands and pipelines, reconnecting on demand.
#pragma once

#include <concepts>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tronada/db/redis_connection.h"

namespace tronada::redis {

namespace detail {
inline std::string to_arg(std::string_view s) {
  return std::string(s);
}
inline std::string to_arg(const char* s) {
  return std::string(s);
}
inline std::string to_arg(const std::string& s) {
  return s;
}
template <typename T>
requires std::integral<T> || std::floating_point<T> std::string to_arg(T v) {
  return std::to_string(v);
}
}  // namespace detail

/// Commands to one Redis server over one connection, opened on first use and opened
/// again on the next command after it broke (a server restart costs only the commands
/// in flight, which fail with ConnectionError).
///
///     redis::Client redis({.port = 6379});
///     co_await redis.cmd("SET", "greeting", "hello");
///     redis::Reply r = co_await redis.cmd("GET", "greeting");   // r.str == "hello"
///
/// Every command sent without awaiting the previous one shares the connection's
/// pipeline; pipeline() sends a batch in one write and returns every reply. Use it on
/// its loop's thread; destroying it closes the connection.
class Client {
 public:
  explicit Client(ConnectOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// One command as separate arguments ({"SET", key, value}).
  Future<Reply> command(const std::vector<std::string>& args);
  /// The same with strings and numbers as arguments: cmd("INCRBY", "n", 5).
  template <typename... Args>
  Future<Reply> cmd(const Args&... args) {
    return command(std::vector<std::string>{detail::to_arg(args)...});
  }
  /// Sends every command in one write and completes with all replies in order. An error
  /// reply is returned as a Reply of type error (the other commands still ran); a lost
  /// connection fails the whole future with ConnectionError.
  Future<std::vector<Reply>> pipeline(const std::vector<std::vector<std::string>>& commands);

  bool connected() const { return conn_ && conn_->is_open(); }
  void close();

 private:
  Connection& connection();

  ConnectOptions options_;
  std::shared_ptr<Connection> conn_;
};

}  // namespace tronada::redis
