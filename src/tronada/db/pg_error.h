// The exceptions of the PostgreSQL client: what the server said, and lost connections.
#pragma once

#include <stdexcept>
#include <string>

#include "tronada/base/error.h"

typedef struct pg_result PGresult;

namespace tronada::pg {

/// The server refused a statement: a syntax error, a constraint violation, a cancelled
/// query... `what()` is the server's primary message followed by its SQLSTATE, e.g.
/// `duplicate key value violates unique constraint "users_pkey" (SQLSTATE 23505)`.
/// The connection stays usable (outside a transaction, which the server has aborted).
class ServerError : public std::runtime_error {
 public:
  /// From an error result's fields (PQresultErrorField).
  explicit ServerError(const PGresult* result);
  ServerError(std::string sqlstate, std::string message);

  std::string severity;    // ERROR, FATAL, PANIC
  std::string sqlstate;    // five characters: 23505, 42601, 57014...
  std::string message;     // the primary message, without severity or SQLSTATE
  std::string detail;      // optional secondary message
  std::string hint;        // optional suggestion
  std::string constraint;  // the violated constraint's name, if any
  std::string table;       // the table concerned, if any
  std::string column;      // the column concerned, if any
};

/// No connection to the server: it could not be opened, or it broke (the server went
/// away, restarted, or closed it). A statement in flight when this happens may or may
/// not have been committed; the pool never reuses a broken connection.
class ConnectionError : public std::runtime_error {
 public:
  explicit ConnectionError(const std::string& what) : std::runtime_error(what) {}
};

/// A field could not be read as the requested C++ type (NULL into a non-optional, "abc"
/// into an int, a number out of the type's range).
class ConversionError : public std::runtime_error {
 public:
  explicit ConversionError(const std::string& what) : std::runtime_error(what) {}
};

/// SQLSTATE classes worth testing for by name.
namespace sqlstate {
inline constexpr const char* unique_violation = "23505";
inline constexpr const char* foreign_key_violation = "23503";
inline constexpr const char* not_null_violation = "23502";
inline constexpr const char* check_violation = "23514";
inline constexpr const char* syntax_error = "42601";
inline constexpr const char* undefined_table = "42P01";
inline constexpr const char* query_canceled = "57014";
inline constexpr const char* serialization_failure = "40001";
inline constexpr const char* deadlock_detected = "40P01";
}  // namespace sqlstate

}  // namespace tronada::pg
