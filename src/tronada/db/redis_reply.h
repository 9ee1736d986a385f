// Replies and errors of the Redis client.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace tronada::redis {

/// One reply from the server, as RESP2 types it.
struct Reply {
  enum class Type { nil, string, status, integer, array, error };
  Type type = Type::nil;
  std::string str;  // string, status ("OK") or error text
  long long integer = 0;
  std::vector<Reply> elements;

  bool is_nil() const { return type == Type::nil; }
  bool is_error() const { return type == Type::error; }
  /// The bulk string, or nullopt for nil (GET of a missing key).
  std::optional<std::string> value() const {
    if (type == Type::nil) return std::nullopt;
    return str;
  }
};

/// The server answered with an error ("WRONGTYPE Operation against a key holding the
/// wrong kind of value", "ERR unknown command ..."); what() is its text verbatim.
class ServerError : public std::runtime_error {
 public:
  explicit ServerError(const std::string& what) : std::runtime_error(what) {}
};

/// No connection: refused, timed out, or lost (commands in flight may or may not have
/// run). The client reconnects on the next command.
class ConnectionError : public std::runtime_error {
 public:
  explicit ConnectionError(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace tronada::redis
