#include "tronada/db/pg_error.h"

#include <libpq-fe.h>

namespace tronada::pg {
namespace {

std::string field(const PGresult* result, int code) {
  const char* value = PQresultErrorField(result, code);
  return value ? value : "";
}

std::string describe(const PGresult* result) {
  std::string message = field(result, PG_DIAG_MESSAGE_PRIMARY);
  if (message.empty()) {
    // Errors that libpq made up itself (a lost connection mid-result) carry only text.
    message = PQresultErrorMessage(result);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
      message.pop_back();
    }
  }
  std::string state = field(result, PG_DIAG_SQLSTATE);
  if (!state.empty()) message += " (SQLSTATE " + state + ")";
  return message;
}

}  // namespace

ServerError::ServerError(const PGresult* result)
    : std::runtime_error(describe(result)),
      severity(field(result, PG_DIAG_SEVERITY_NONLOCALIZED)),
      sqlstate(field(result, PG_DIAG_SQLSTATE)),
      message(field(result, PG_DIAG_MESSAGE_PRIMARY)),
      detail(field(result, PG_DIAG_MESSAGE_DETAIL)),
      hint(field(result, PG_DIAG_MESSAGE_HINT)),
      constraint(field(result, PG_DIAG_CONSTRAINT_NAME)),
      table(field(result, PG_DIAG_TABLE_NAME)),
      column(field(result, PG_DIAG_COLUMN_NAME)) {
  if (message.empty()) message = what();
}

ServerError::ServerError(std::string state, std::string text)
    : std::runtime_error(text + " (SQLSTATE " + state + ")"),
      severity("ERROR"),
      sqlstate(std::move(state)),
      message(std::move(text)) {}

}  // namespace tronada::pg
