#include "tronada/db/pg_pool.h"

#include "tronada/base/log.h"

namespace tronada::pg {

namespace detail {

/// Shared by the Pool and every PooledConnection it lent, so either may go first.
struct PoolState : std::enable_shared_from_this<PoolState> {
  explicit PoolState(PoolOptions o) : options(std::move(o)), permits(options.max_size) {}

  PoolOptions options;
  Semaphore permits;  // one per open (or opening) connection
  std::vector<std::shared_ptr<Connection>> idle;
  bool closed = false;

  PooledConnection lend(std::shared_ptr<Connection> conn, Semaphore::Guard permit) {
    return PooledConnection(shared_from_this(), std::move(conn), std::move(permit));
  }

  void give_back(std::shared_ptr<Connection> conn) {
    if (!conn->is_open()) return;  // broken: dropped, the next caller opens a new one
    if (closed) {
      conn->close();
      return;
    }
    if (conn->in_transaction() && conn->pending() == 0) {
      // Left mid-transaction (an exception skipped the commit): end it before anyone
      // else borrows the connection. Queued first, so it runs first.
      (void)conn->execute("ROLLBACK", {});
    }
    idle.push_back(std::move(conn));
  }
};

namespace {

Task<PooledConnection> acquire(std::shared_ptr<PoolState> state) {
  if (state->closed) throw ConnectionError("pg pool: closed");
  if (state->permits.value() == 0 && state->permits.waiting() >= state->options.max_waiting) {
    throw PoolExhausted("pg pool: " + std::to_string(state->options.max_waiting) +
                        " callers already wait for a connection");
  }
  Semaphore::Guard permit;
  try {
    permit = co_await state->permits.acquire(state->options.acquire_timeout);
  } catch (const TimeoutError&) {
    throw TimeoutError("pg pool: no connection free within the acquire timeout");
  }
  if (state->closed) throw ConnectionError("pg pool: closed");
  while (!state->idle.empty()) {
    // Most recently used first: its server process and caches are warm.
    std::shared_ptr<Connection> conn = std::move(state->idle.back());
    state->idle.pop_back();
    // A server that restarted closed its end while the connection sat idle, maybe so
    // recently that the loop has not read its goodbye yet: reading it here costs a
    // peek or two, and spares the caller a query that would fail on it.
    if (conn->check_open()) {
      co_return state->lend(std::move(conn), std::move(permit));
    }
    conn->close();
  }
  Future<std::shared_ptr<Connection>> connecting =
      Connection::connect(state->options.conninfo, state->options.connect_timeout);
  std::shared_ptr<Connection> conn = co_await connecting;
  co_return state->lend(std::move(conn), std::move(permit));
}

Task<Result> execute(std::shared_ptr<PoolState> state, std::string sql, Params params) {
  PooledConnection conn = co_await acquire(state);
  Future<Result> running =
      conn->execute(std::move(sql), std::move(params), state->options.statement_timeout);
  co_return co_await running;
}

Task<Transaction> begin(std::shared_ptr<PoolState> state, std::string begin_sql) {
  PooledConnection conn = co_await acquire(state);
  Future<Result> started =
      conn->execute(std::move(begin_sql), {}, state->options.statement_timeout);
  co_await started;
  co_return Transaction(std::move(conn));
}

}  // namespace
}  // namespace detail

PooledConnection& PooledConnection::operator=(PooledConnection&& other) noexcept {
  if (this != &other) {
    release();
    pool_ = std::move(other.pool_);
    conn_ = std::move(other.conn_);
    permit_ = std::move(other.permit_);
  }
  return *this;
}

void PooledConnection::release() noexcept {
  if (!conn_) return;
  try {
    pool_->give_back(std::move(conn_));
  } catch (const std::exception& e) {
    log::error("pg", std::string("returning a connection to the pool: ") + e.what());
  }
  conn_.reset();
  permit_.release();
  pool_.reset();
}

Transaction& Transaction::operator=(Transaction&& other) noexcept {
  if (this != &other) {
    abandon();
    conn_ = std::move(other.conn_);
  }
  return *this;
}

Future<Result> Transaction::execute(std::string sql, Params params,
                                    std::optional<Duration> timeout) {
  if (!conn_) {
    Promise<Result> failed;
    failed.set_exception(
        std::make_exception_ptr(std::logic_error("pg: the transaction has ended")));
    return failed.get_future();
  }
  return conn_->execute(std::move(sql), std::move(params), timeout);
}

Task<void> Transaction::commit() {
  if (!conn_) throw std::logic_error("pg: the transaction has ended");
  PooledConnection conn = std::move(conn_);
  Future<Result> committing = conn->execute("COMMIT", {});
  Result r = co_await committing;
  // COMMIT of a transaction that an error aborted succeeds with the tag ROLLBACK.
  if (r.command_tag() == "ROLLBACK") {
    throw ServerError("25P02", "transaction rolled back: an earlier statement failed");
  }
}

Task<void> Transaction::rollback() {
  if (!conn_) throw std::logic_error("pg: the transaction has ended");
  PooledConnection conn = std::move(conn_);
  Future<Result> rolling_back = conn->execute("ROLLBACK", {});
  co_await rolling_back;
}

void Transaction::abandon() noexcept {
  if (!conn_) return;
  // Queue the ROLLBACK before the connection goes back: later borrowers queue behind it.
  if (conn_->is_open()) (void)conn_->execute("ROLLBACK", {});
  conn_.release();
}

Pool::Pool(PoolOptions options) : state_(std::make_shared<detail::PoolState>(std::move(options))) {
  if (state_->options.max_size == 0)
    throw std::invalid_argument("pg pool: max_size must be at least 1");
}

Pool::~Pool() {
  close();
}

void Pool::close() {
  state_->closed = true;
  auto idle = std::move(state_->idle);
  state_->idle.clear();
  for (auto& conn : idle) conn->close();
}

Task<PooledConnection> Pool::acquire() {
  return detail::acquire(state_);
}

Task<Result> Pool::execute(std::string sql, Params params) {
  return detail::execute(state_, std::move(sql), std::move(params));
}

Task<Transaction> Pool::begin(std::string begin_sql) {
  return detail::begin(state_, std::move(begin_sql));
}

const PoolOptions& Pool::options() const {
  return state_->options;
}
std::size_t Pool::size() const {
  return state_->options.max_size - state_->permits.value() + state_->idle.size();
}
std::size_t Pool::idle() const {
  return state_->idle.size();
}
std::size_t Pool::waiting() const {
  return state_->permits.waiting();
}

}  // namespace tronada::pg
