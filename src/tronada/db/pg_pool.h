// A pool of PostgreSQL connections with a maximum size, a wait queue and transactions.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tronada/async/semaphore.h"
#include "tronada/async/task.h"
#include "tronada/db/pg_connection.h"

namespace tronada::pg {

struct PoolOptions {
  /// libpq connection string or URI (see Connection::connect).
  std::string conninfo;
  /// Connections open at most; further callers wait in line (first come, first served).
  std::size_t max_size = 10;
  /// Callers allowed to wait at once; past that acquire() fails at once with
  /// PoolExhausted instead of queueing without bound.
  std::size_t max_waiting = 10000;
  /// How long a caller waits for a free connection before TimeoutError.
  Duration acquire_timeout = std::chrono::seconds(30);
  Duration connect_timeout = std::chrono::seconds(10);
  /// Default bound on each statement run through the pool (query/execute); none if unset.
  std::optional<Duration> statement_timeout;
};

/// acquire() refused because max_waiting callers already wait.
class PoolExhausted : public std::runtime_error {
 public:
  explicit PoolExhausted(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
struct PoolState;
}

/// A connection lent by a Pool, given back when this is destroyed or release()d (a
/// broken one is dropped instead). Move-only; use it like a pointer to Connection.
class PooledConnection {
 public:
  PooledConnection() = default;
  PooledConnection(PooledConnection&&) noexcept = default;
  PooledConnection& operator=(PooledConnection&& other) noexcept;
  ~PooledConnection() { release(); }

  Connection* operator->() const { return conn_.get(); }
  Connection& operator*() const { return *conn_; }
  const std::shared_ptr<Connection>& get() const { return conn_; }
  explicit operator bool() const { return static_cast<bool>(conn_); }
  /// Gives the connection back now. A connection left inside a transaction is rolled
  /// back first (the ROLLBACK is queued ahead of the next borrower's statements).
  void release() noexcept;

 private:
  friend struct detail::PoolState;
  PooledConnection(std::shared_ptr<detail::PoolState> pool, std::shared_ptr<Connection> conn,
                   Semaphore::Guard permit)
      : pool_(std::move(pool)), conn_(std::move(conn)), permit_(std::move(permit)) {}
  // Order matters: the permit refers to the pool's semaphore, so it goes first.
  std::shared_ptr<detail::PoolState> pool_;
  std::shared_ptr<Connection> conn_;
  Semaphore::Guard permit_;
};

/// A transaction on one pooled connection: BEGIN when made, COMMIT or ROLLBACK at the
/// end. Destroyed without commit() or rollback(), it rolls back.
///
///     pg::Transaction tx = co_await pool.begin();
///     co_await tx.query("UPDATE accounts SET balance = balance - $1 WHERE id = $2", 10, a);
///     co_await tx.query("UPDATE accounts SET balance = balance + $1 WHERE id = $2", 10, b);
///     co_await tx.commit();
class Transaction {
 public:
  Transaction() = default;
  explicit Transaction(PooledConnection conn) : conn_(std::move(conn)) {}
  Transaction(Transaction&&) noexcept = default;
  Transaction& operator=(Transaction&&) noexcept;
  ~Transaction() { abandon(); }

  template <typename... Args>
  Future<Result> query(std::string sql, const Args&... args) {
    return execute(std::move(sql), Params{Param(args)...});
  }
  Future<Result> execute(std::string sql, Params params,
                         std::optional<Duration> timeout = std::nullopt);
  /// Commits. If an earlier statement failed, the server rolled back instead: commit()
  /// then throws ServerError with SQLSTATE 25P02. The connection goes back to the pool.
  Task<void> commit();
  Task<void> rollback();
  Connection& connection() const { return *conn_; }

 private:
  void abandon() noexcept;
  PooledConnection conn_;
};

/// Connections to one database, shared by every coroutine on one loop: at most
/// `max_size` open, callers beyond that wait in a fair queue (bounded in length and in
/// time). A connection that broke (the server restarted, a network failure) is dropped
/// and the next caller opens a new one, so the pool recovers by itself once the server
/// is back; the statements that were in flight fail with ConnectionError.
///
///     pg::Pool pool({.conninfo = "host=127.0.0.1 dbname=app", .max_size = 20});
///     pg::Result r = co_await pool.query("SELECT $1::int + 1", 41);
///
/// Lifetime: the Pool may be destroyed while connections are lent out; they are closed
/// when given back. Use it on the thread of the loop it was made on.
class Pool {
 public:
  explicit Pool(PoolOptions options);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  /// Borrows a connection: an idle one, a new one if fewer than max_size are open, or
  /// the next one given back. Fails with TimeoutError after acquire_timeout,
  /// PoolExhausted if max_waiting callers already wait, ConnectionError if a new
  /// connection cannot be opened.
  Task<PooledConnection> acquire();

  /// One statement on a borrowed connection, given back as soon as it completes.
  template <typename... Args>
  Task<Result> query(std::string sql, const Args&... args) {
    return execute(std::move(sql), Params{Param(args)...});
  }
  Task<Result> execute(std::string sql, Params params);

  /// Borrows a connection and starts a transaction on it (`BEGIN`, or e.g.
  /// `BEGIN ISOLATION LEVEL SERIALIZABLE`).
  Task<Transaction> begin(std::string begin_sql = "BEGIN");

  /// Closes idle connections and refuses new work; lent ones close when given back.
  void close();

  const PoolOptions& options() const;
  /// Open connections, lent or idle (and ones being opened).
  std::size_t size() const;
  std::size_t idle() const;
  std::size_t waiting() const;

 private:
  std::shared_ptr<detail::PoolState> state_;
};

}  // namespace tronada::pg
