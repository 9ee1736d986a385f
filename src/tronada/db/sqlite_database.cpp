#include "tronada/db/sqlite_database.h"

#include <sqlite3.h>

#include <memory>

namespace tronada::db {

const SqliteValue& SqliteRow::operator[](std::string_view name) const {
  for (std::size_t i = 0; i < columns_->size(); ++i) {
    if ((*columns_)[i] == name) return values_.at(i);
  }
  throw std::out_of_range("sqlite: no column \"" + std::string(name) + "\"");
}

SqliteDatabase::SqliteDatabase(const std::string& path, int busy_timeout_ms) {
  int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    throw SqliteError(rc, "sqlite: cannot open " + path + ": " + message);
  }
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, busy_timeout_ms);
}

SqliteDatabase::~SqliteDatabase() {
  sqlite3_close_v2(db_);
}

void SqliteDatabase::fail(int code, const std::string& context) const {
  throw SqliteError(code, "sqlite: " + context + sqlite3_errmsg(db_));
}

void SqliteDatabase::execute_script(const std::string& sql) {
  char* error = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
  if (rc != SQLITE_OK) {
    std::string message = error ? error : sqlite3_errstr(rc);
    sqlite3_free(error);
    throw SqliteError(rc, "sqlite: " + message);
  }
}

sqlite3_stmt* SqliteDatabase::prepare(std::string_view sql,
                                      const std::vector<SqliteValue>& params) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) fail(rc, "");
  if (static_cast<int>(params.size()) != sqlite3_bind_parameter_count(stmt)) {
    sqlite3_finalize(stmt);
    throw SqliteError(SQLITE_RANGE, "sqlite: statement takes " +
                                        std::to_string(sqlite3_bind_parameter_count(stmt)) +
                                        " parameters, " + std::to_string(params.size()) + " given");
  }
  for (std::size_t i = 0; i < params.size(); ++i) {
    int index = static_cast<int>(i) + 1;
    const SqliteValue& v = params[i];
    if (std::holds_alternative<std::nullptr_t>(v)) {
      rc = sqlite3_bind_null(stmt, index);
    } else if (auto* n = std::get_if<std::int64_t>(&v)) {
      rc = sqlite3_bind_int64(stmt, index, *n);
    } else if (auto* d = std::get_if<double>(&v)) {
      rc = sqlite3_bind_double(stmt, index, *d);
    } else if (auto* s = std::get_if<std::string>(&v)) {
      rc = sqlite3_bind_text64(stmt, index, s->data(), s->size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    } else {
      const auto& b = std::get<SqliteBlob>(v);
      rc = sqlite3_bind_blob64(stmt, index, b.data.data(), b.data.size(), SQLITE_TRANSIENT);
    }
    if (rc != SQLITE_OK) {
      sqlite3_finalize(stmt);
      fail(rc, "binding parameter " + std::to_string(index) + ": ");
    }
  }
  return stmt;
}

std::int64_t SqliteDatabase::execute(std::string_view sql, const std::vector<SqliteValue>& params) {
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> stmt(prepare(sql, params),
                                                             sqlite3_finalize);
  int rc;
  while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
  }
  if (rc != SQLITE_DONE) fail(rc, "");
  return sqlite3_changes64(db_);
}

std::vector<SqliteRow> SqliteDatabase::query(std::string_view sql,
                                             const std::vector<SqliteValue>& params) {
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> stmt(prepare(sql, params),
                                                             sqlite3_finalize);
  int n = sqlite3_column_count(stmt.get());
  auto columns = std::make_shared<std::vector<std::string>>();
  for (int i = 0; i < n; ++i) columns->push_back(sqlite3_column_name(stmt.get(), i));
  std::vector<SqliteRow> rows;
  int rc;
  while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
    std::vector<SqliteValue> values;
    values.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      switch (sqlite3_column_type(stmt.get(), i)) {
        case SQLITE_INTEGER:
          values.emplace_back(static_cast<std::int64_t>(sqlite3_column_int64(stmt.get(), i)));
          break;
        case SQLITE_FLOAT:
          values.emplace_back(sqlite3_column_double(stmt.get(), i));
          break;
        case SQLITE_TEXT:
          values.emplace_back(
              std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), i)),
                          static_cast<std::size_t>(sqlite3_column_bytes(stmt.get(), i))));
          break;
        case SQLITE_BLOB: {
          const void* p = sqlite3_column_blob(stmt.get(), i);
          std::size_t len = static_cast<std::size_t>(sqlite3_column_bytes(stmt.get(), i));
          values.emplace_back(SqliteBlob{std::string(static_cast<const char*>(p), len)});
          break;
        }
        default:
          values.emplace_back(nullptr);
      }
    }
    rows.emplace_back(columns, std::move(values));
  }
  if (rc != SQLITE_DONE) fail(rc, "");
  return rows;
}

std::int64_t SqliteDatabase::last_insert_rowid() const {
  return sqlite3_last_insert_rowid(db_);
}

}  // namespace tronada::db
