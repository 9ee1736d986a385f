#include "tronada/db/pg_connection.h"

#include <libpq-fe.h>

#include <sys/socket.h>

#include <cerrno>
#include <stdexcept>

#include "tronada/base/log.h"

namespace tronada::pg {

struct Connection::Pending {
  std::string sql;
  Params params;
  bool script = false;
  Promise<Result> promise;
  TimeoutHandle timer;
  bool sent = false;
  Result result;
  std::exception_ptr error;  // the first error result of the statement
};

namespace {

std::string trimmed(const char* message) {
  std::string s = message ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s.empty() ? "connection failed" : s;
}

void on_notice(void*, const PGresult* result) {
  log::debug("pg", trimmed(PQresultErrorMessage(result)));
}

// Asks the server to cancel whatever `conn` runs now. PQcancel opens its own connection
// and blocks, so it runs on the executor; the PGcancel copy is independent of `conn`,
// which may be gone by the time it runs.
void send_cancel(IOLoop& loop, PGconn* conn) {
  PGcancel* cancel = PQgetCancel(conn);
  if (!cancel) return;
  loop.run_in_threadpool(
      [cancel] {
        char error[256];
        if (!PQcancel(cancel, error, sizeof error))
          log::warning("pg", std::string("cancel failed: ") + error);
      },
      [cancel](std::exception_ptr) { PQfreeCancel(cancel); });
}

}  // namespace

Connection::Connection(IOLoop& loop) : loop_(loop) {}

Connection::~Connection() {
  // Only reached once nothing is pending (pending work holds self_), so no future is
  // left uncompleted; just release the socket watch and the libpq connection.
  loop_.remove_timeout(connect_timer_);
  if (fd_ >= 0) loop_.remove_handler(fd_);
  if (conn_) PQfinish(conn_);
}

Future<std::shared_ptr<Connection>> Connection::connect(std::string conninfo, Duration timeout) {
  IOLoop& loop = IOLoop::current();
  std::shared_ptr<Connection> conn(new Connection(loop));
  conn->connect_promise_.emplace(&loop);
  Future<std::shared_ptr<Connection>> future = conn->connect_promise_->get_future();
  conn->start_connect(conninfo, timeout);
  return future;
}

void Connection::start_connect(const std::string& conninfo, Duration timeout) {
  conn_ = PQconnectStart(conninfo.c_str());
  if (!conn_) throw std::bad_alloc();
  connecting_ = true;
  self_ = shared_from_this();
  if (PQstatus(conn_) == CONNECTION_BAD) {
    fail(trimmed(PQerrorMessage(conn_)));
    return;
  }
  std::weak_ptr<Connection> weak = weak_from_this();
  connect_timer_ = loop_.call_later(timeout, [weak] {
    if (auto self = weak.lock()) {
      self->connect_timer_ = {};
      self->fail("connection timed out");
    }
  });
  // libpq's rule: start as though PQconnectPoll had asked for a writable socket.
  fd_ = PQsocket(conn_);
  if (fd_ < 0) {
    fail(trimmed(PQerrorMessage(conn_)));
    return;
  }
  loop_.add_handler(
      fd_, [this](int, int events) { on_io(events); }, IOLoop::WRITE);
  watched_ = IOLoop::WRITE;
}

void Connection::poll_connect() {
  PostgresPollingStatusType status = PQconnectPoll(conn_);
  if (status == PGRES_POLLING_FAILED) {
    fail(trimmed(PQerrorMessage(conn_)));
    return;
  }
  // libpq may switch sockets while it tries addresses or falls back from TLS.
  int fd = PQsocket(conn_);
  if (fd < 0) {
    fail(trimmed(PQerrorMessage(conn_)));
    return;
  }
  if (fd != fd_) {
    if (fd_ >= 0) loop_.remove_handler(fd_);
    fd_ = fd;
    loop_.add_handler(
        fd_, [this](int, int events) { on_io(events); }, 0);
  }
  // The new socket often gets the number of the one libpq just closed, and then the
  // check above cannot see the switch: the kernel dropped the closed socket from epoll,
  // while libuv, asked for an unchanged mask, would keep believing it is registered.
  // So every step re-arms the watch (a connect takes a handful of steps).
  watched_ = -1;
  if (status == PGRES_POLLING_READING) {
    watch(IOLoop::READ);
  } else if (status == PGRES_POLLING_WRITING) {
    watch(IOLoop::WRITE);
  } else if (status == PGRES_POLLING_OK) {
    connecting_ = false;
    loop_.remove_timeout(connect_timer_);
    connect_timer_ = {};
    PQsetnonblocking(conn_, 1);
    PQsetNoticeReceiver(conn_, on_notice, nullptr);
    // Always read: notifications and the server closing arrive unasked.
    watch(IOLoop::READ);
    auto promise = std::move(*connect_promise_);
    connect_promise_.reset();
    promise.set_result(shared_from_this());
    send_next();
    release_self_if_idle();
  }
}

void Connection::watch(int events) {
  if (fd_ < 0 || events == watched_) return;
  loop_.update_handler(fd_, events);
  watched_ = events;
}

void Connection::on_io(int events) {
  // A completed future's callbacks may drop the last outside reference.
  auto keep = shared_from_this();
  if (!conn_) return;
  if (events & IOLoop::ERROR) {
    // On a socket error (POLLERR) libuv stops the poll handle before it reports it, so
    // the watch in watched_ is gone. The socket may still hold data that arrived ahead
    // of the error (a backend's FATAL goodbye, then the reset for the statement it never
    // read), and reading that does not yet show libpq the error. Re-arming below lets
    // the next readiness report it; without that the statement would wait forever on a
    // handle that never fires again.
    watched_ = -1;
  }
  if (connecting_) {
    poll_connect();
    return;
  }
  if (events & (IOLoop::READ | IOLoop::ERROR)) {
    if (!PQconsumeInput(conn_)) {
      fail(trimmed(PQerrorMessage(conn_)));
      return;
    }
    deliver_notifications();
    if (!conn_) return;
  }
  // libpq's rule for non-blocking sends: keep flushing on either readiness.
  if (flushing_ && !flush()) return;
  drain_results();
  watch(flushing_ ? IOLoop::READ | IOLoop::WRITE : IOLoop::READ);
}

Future<Result> Connection::execute(std::string sql, Params params,
                                   std::optional<Duration> timeout) {
  auto pending = std::make_shared<Pending>();
  pending->sql = std::move(sql);
  pending->params = std::move(params);
  pending->promise = Promise<Result>(&loop_);
  for (const Param& p : pending->params) {
    // libpq sends text-format values up to their first NUL; refuse rather than truncate.
    if (!p.is_null() && !p.binary() && p.value().find('\0') != std::string::npos) {
      pending->promise.set_exception(std::make_exception_ptr(
          std::invalid_argument("pg: a text parameter contains a NUL byte (use pg::Bytea)")));
      return pending->promise.get_future();
    }
  }
  return enqueue(std::move(pending), timeout);
}

Future<Result> Connection::execute_script(std::string sql, std::optional<Duration> timeout) {
  auto pending = std::make_shared<Pending>();
  pending->sql = std::move(sql);
  pending->script = true;
  pending->promise = Promise<Result>(&loop_);
  return enqueue(std::move(pending), timeout);
}

Future<Result> Connection::enqueue(std::shared_ptr<Pending> pending,
                                   std::optional<Duration> timeout) {
  Future<Result> future = pending->promise.get_future();
  if (!conn_) {
    pending->promise.set_exception(std::make_exception_ptr(ConnectionError(
        "pg: connection is closed" + (close_reason_.empty() ? "" : ": " + close_reason_))));
    return future;
  }
  if (timeout) {
    std::weak_ptr<Connection> weak = weak_from_this();
    std::weak_ptr<Pending> weak_pending = pending;
    pending->timer = loop_.call_later(*timeout, [weak, weak_pending] {
      auto self = weak.lock();
      auto p = weak_pending.lock();
      if (self && p) self->on_timeout(p);
    });
  }
  queue_.push_back(std::move(pending));
  self_ = shared_from_this();
  send_next();
  return future;
}

void Connection::on_timeout(const std::shared_ptr<Pending>& pending) {
  pending->timer = {};
  if (!pending->promise.try_set_exception(
          std::make_exception_ptr(TimeoutError("pg: statement timed out")))) {
    return;
  }
  if (pending->sent && conn_) {
    // Still in flight: the server stops it, and its error result (57014) then finishes
    // the entry in order, so the connection stays in step. A statement not yet sent is
    // skipped by send_next.
    send_cancel(loop_, conn_);
  }
}

void Connection::cancel() {
  if (conn_ && !connecting_ && !queue_.empty() && queue_.front()->sent) send_cancel(loop_, conn_);
}

void Connection::send_next() {
  if (!conn_ || connecting_) return;
  while (!queue_.empty() && !queue_.front()->sent) {
    auto& pending = queue_.front();
    if (pending->promise.done()) {  // timed out while it waited its turn
      queue_.pop_front();
      continue;
    }
    int ok;
    if (pending->script) {
      ok = PQsendQuery(conn_, pending->sql.c_str());
    } else {
      std::size_t n = pending->params.size();
      std::vector<Oid> types(n);
      std::vector<const char*> values(n);
      std::vector<int> lengths(n);
      std::vector<int> formats(n);
      for (std::size_t i = 0; i < n; ++i) {
        const Param& p = pending->params[i];
        types[i] = p.type();
        values[i] = p.is_null() ? nullptr : p.value().c_str();
        lengths[i] = static_cast<int>(p.value().size());
        formats[i] = p.binary() ? 1 : 0;
      }
      ok = PQsendQueryParams(conn_, pending->sql.c_str(), static_cast<int>(n), types.data(),
                             values.data(), lengths.data(), formats.data(), 0);
    }
    if (!ok) {
      std::string message = trimmed(PQerrorMessage(conn_));
      if (PQstatus(conn_) == CONNECTION_BAD) {
        fail(message);
        return;
      }
      // A request libpq refused before sending (too many parameters...): only this
      // statement fails.
      auto failed = std::move(queue_.front());
      queue_.pop_front();
      loop_.remove_timeout(failed->timer);
      failed->promise.try_set_exception(
          std::make_exception_ptr(std::invalid_argument("pg: " + message)));
      continue;
    }
    pending->sent = true;
    flushing_ = true;
    flush();
    return;
  }
  release_self_if_idle();
}

bool Connection::flush() {
  int rc = PQflush(conn_);
  if (rc < 0) {
    fail(trimmed(PQerrorMessage(conn_)));
    return false;
  }
  flushing_ = rc == 1;
  watch(flushing_ ? IOLoop::READ | IOLoop::WRITE : IOLoop::READ);
  return true;
}

void Connection::drain_results() {
  while (conn_ && !queue_.empty() && queue_.front()->sent && !PQisBusy(conn_)) {
    PGresult* res = PQgetResult(conn_);
    auto& pending = queue_.front();
    if (res) {
      ExecStatusType status = PQresultStatus(res);
      if (status == PGRES_FATAL_ERROR) {
        if (!pending->error) pending->error = std::make_exception_ptr(ServerError(res));
        PQclear(res);
      } else if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH) {
        PQclear(res);
        fail("pg: COPY is not supported by this client");
        return;
      } else {
        pending->result = Result(res);  // a script keeps its last statement's result
      }
      continue;
    }
    // A null result: the statement is complete.
    auto done = std::move(queue_.front());
    queue_.pop_front();
    loop_.remove_timeout(done->timer);
    if (done->error) {
      done->promise.try_set_exception(done->error);
    } else {
      done->promise.try_set_result(std::move(done->result));
    }
    send_next();
  }
  if (conn_ && PQstatus(conn_) == CONNECTION_BAD) fail(trimmed(PQerrorMessage(conn_)));
}

void Connection::deliver_notifications() {
  while (conn_) {
    PGnotify* n = PQnotifies(conn_);
    if (!n) break;
    Notification notification{n->relname ? n->relname : "", n->extra ? n->extra : "", n->be_pid};
    PQfreemem(n);
    if (on_notification_) {
      auto handler = on_notification_;
      IOLoop::invoke_logged("pg notification handler", [&] { handler(notification); });
    }
  }
}

void Connection::fail(const std::string& reason) {
  if (!conn_) return;
  auto keep = shared_from_this();
  close_reason_ = reason;
  loop_.remove_timeout(connect_timer_);
  connect_timer_ = {};
  if (fd_ >= 0) loop_.remove_handler(fd_);
  fd_ = -1;
  watched_ = 0;
  PQfinish(conn_);
  conn_ = nullptr;
  connecting_ = false;
  flushing_ = false;
  auto error = std::make_exception_ptr(ConnectionError("pg: " + reason));
  if (connect_promise_) {
    auto promise = std::move(*connect_promise_);
    connect_promise_.reset();
    promise.try_set_exception(error);
  }
  auto queue = std::move(queue_);
  queue_.clear();
  for (auto& pending : queue) {
    loop_.remove_timeout(pending->timer);
    pending->promise.try_set_exception(error);
  }
  if (on_close_) {
    auto handler = std::move(on_close_);
    on_close_ = nullptr;
    IOLoop::invoke_logged("pg close handler", handler);
  }
  self_.reset();
}

void Connection::close() {
  fail("connection closed");
}

void Connection::release_self_if_idle() {
  if (queue_.empty() && !connecting_) {
    // The caller (an event handler or a public method) holds its own reference.
    self_.reset();
  }
}

bool Connection::in_transaction() const {
  if (!conn_) return false;
  PGTransactionStatusType s = PQtransactionStatus(conn_);
  return s == PQTRANS_INTRANS || s == PQTRANS_INERROR;
}

int Connection::server_version() const {
  return conn_ ? PQserverVersion(conn_) : 0;
}
int Connection::backend_pid() const {
  return conn_ ? PQbackendPID(conn_) : 0;
}

bool Connection::check_open() {
  if (!is_open()) return false;
  // libpq reads one batch per call, and only a read that finds nothing after the last
  // message tells it the server hung up: so peek, and hand libpq whatever waits (data,
  // EOF or an error) until nothing does. Bounded, for a server that keeps notifying.
  for (int round = 0; round < 8 && conn_; ++round) {
    char byte;
    ssize_t n = ::recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
    on_io(IOLoop::READ);
  }
  return is_open();
}

}  // namespace tronada::pg
