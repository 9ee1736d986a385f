// SqliteDatabase: a small blocking SQLite wrapper, meant to run on the executor.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace tronada::db {

/// A value SQLite stores: NULL, integer, real, text or blob.
struct SqliteBlob {
  std::string data;
  bool operator==(const SqliteBlob&) const = default;
};
using SqliteValue = std::variant<std::nullptr_t, std::int64_t, double, std::string, SqliteBlob>;

/// One result row, by column name and by index.
class SqliteRow {
 public:
  SqliteRow(std::shared_ptr<const std::vector<std::string>> columns,
            std::vector<SqliteValue> values)
      : columns_(std::move(columns)), values_(std::move(values)) {}
  const SqliteValue& operator[](std::size_t i) const { return values_.at(i); }
  const SqliteValue& operator[](std::string_view name) const;
  std::size_t size() const { return values_.size(); }
  /// The value as T (std::int64_t, double, std::string, SqliteBlob, or
  /// std::optional of those for NULL); throws std::bad_variant_access on a mismatch.
  template <typename T>
  T get(std::string_view name) const {
    const SqliteValue& v = (*this)[name];
    if constexpr (requires { typename T::value_type; } && !std::is_same_v<T, std::string>) {
      if (std::holds_alternative<std::nullptr_t>(v)) return std::nullopt;
      return std::get<typename T::value_type>(v);
    } else {
      return std::get<T>(v);
    }
  }

 private:
  std::shared_ptr<const std::vector<std::string>> columns_;
  std::vector<SqliteValue> values_;
};

/// SQLite said no: what() is its message, `code` its extended result code.
class SqliteError : public std::runtime_error {
 public:
  SqliteError(int code, const std::string& what) : std::runtime_error(what), code(code) {}
  int code;
};

/// One SQLite connection. Every call blocks (disk I/O, waiting on a lock): run it
/// through BlockingPool or run_in_executor, never on the loop thread. One thread at a
/// time may use it. Parameters bind to `?` placeholders, never spliced into SQL.
class SqliteDatabase {
 public:
  /// Opens (creating if needed) the database at `path`; waits up to `busy_timeout_ms`
  /// for another connection's write lock before SQLITE_BUSY.
  explicit SqliteDatabase(const std::string& path, int busy_timeout_ms = 5000);
  ~SqliteDatabase();
  SqliteDatabase(const SqliteDatabase&) = delete;
  SqliteDatabase& operator=(const SqliteDatabase&) = delete;

  /// Runs statements separated by ';' without parameters (schema setup).
  void execute_script(const std::string& sql);
  /// Runs one statement; returns the rows changed.
  std::int64_t execute(std::string_view sql, const std::vector<SqliteValue>& params = {});
  /// Runs one statement and returns its rows.
  std::vector<SqliteRow> query(std::string_view sql, const std::vector<SqliteValue>& params = {});
  std::int64_t last_insert_rowid() const;

 private:
  sqlite3_stmt* prepare(std::string_view sql, const std::vector<SqliteValue>& params);
  [[noreturn]] void fail(int code, const std::string& context) const;
  sqlite3* db_ = nullptr;
};

}  // namespace tronada::db
