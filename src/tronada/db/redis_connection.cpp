#include "tronada/db/redis_connection.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "tronada/base/error.h"
#include "tronada/base/log.h"

namespace tronada::redis {

/// One command's reply slot. Owned by hiredis as privdata from the send until its reply
/// callback, which hiredis runs exactly once: with the reply, or with NULL when the
/// context is freed first.
struct Connection::Pending {
  Promise<Reply> promise;
  TimeoutHandle timer;
  bool raise_errors = true;
};

Reply to_reply(const void* raw) {
  const auto* r = static_cast<const redisReply*>(raw);
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::string;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::status;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::error;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::integer;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::array;
      out.elements.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(to_reply(r->element[i]));
      break;
    default:
      out.type = Reply::Type::nil;
  }
  return out;
}

Connection::Connection(IOLoop& loop, const ConnectOptions& options)
    : loop_(loop), command_timeout_(options.command_timeout), connected_(&loop) {}

Connection::~Connection() {
  // Only reached once hiredis let go of the context (it holds self_ until then).
  loop_.remove_timeout(connect_timer_);
}

std::shared_ptr<Connection> Connection::open(const ConnectOptions& options) {
  std::shared_ptr<Connection> conn(new Connection(IOLoop::current(), options));
  conn->start(options);
  return conn;
}

void Connection::start(const ConnectOptions& options) {
  redisAsyncContext* ac = options.unix_path.empty()
                              ? redisAsyncConnect(options.host.c_str(), options.port)
                              : redisAsyncConnectUnix(options.unix_path.c_str());
  if (!ac) throw std::bad_alloc();
  if (ac->err) {
    close_reason_ = ac->errstr;
    redisAsyncFree(ac);
    connected_.set_exception(std::make_exception_ptr(ConnectionError("redis: " + close_reason_)));
    return;
  }
  ac_ = ac;
  self_ = shared_from_this();
  ac->data = this;
  ac->ev.data = this;
  ac->ev.addRead = ev_add_read;
  ac->ev.delRead = ev_del_read;
  ac->ev.addWrite = ev_add_write;
  ac->ev.delWrite = ev_del_write;
  ac->ev.cleanup = ev_cleanup;
  fd_ = ac->c.fd;
  loop_.add_handler(
      fd_,
      [this](int, int events) {
        auto keep = shared_from_this();  // completed futures may drop the last reference
        // On a socket error (POLLERR) libuv stops the poll handle before it reports it.
        // A reply cut short by a reset reads as incomplete, not as an error, so the watch
        // is re-armed: the next readiness then shows hiredis the error (see
        // pg::Connection::on_io).
        if (events & IOLoop::ERROR) watched_ = -1;
        if (ac_ && (events & (IOLoop::READ | IOLoop::ERROR))) redisAsyncHandleRead(ac_);
        if (ac_ && (events & IOLoop::WRITE)) redisAsyncHandleWrite(ac_);
        if (ac_) update_watch();
      },
      0);
  redisAsyncSetConnectCallback(ac, on_connect);  // asks for writability: connect done
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  std::weak_ptr<Connection> weak = weak_from_this();
  connect_timer_ = loop_.call_later(options.connect_timeout, [weak] {
    auto self = weak.lock();
    if (!self) return;
    self->connect_timer_ = {};
    if (!self->up_) self->lost("connect timed out");
  });
  // Queued ahead of everything else, so they run first once connected.
  if (!options.password.empty()) {
    Future<Reply> auth = command({"AUTH", options.password});
    auth.add_done_callback([weak, state = auth.weak_state()] {
      auto s = state.lock();
      auto self = weak.lock();
      if (s && s->exception && self) self->lost("AUTH failed");
    });
  }
  if (options.db != 0) {
    Future<Reply> select = command({"SELECT", std::to_string(options.db)});
    select.add_done_callback([weak, state = select.weak_state()] {
      auto s = state.lock();
      auto self = weak.lock();
      if (s && s->exception && self) self->lost("SELECT failed");
    });
  }
}

void Connection::update_watch() {
  int events = (want_read_ ? IOLoop::READ : 0) | (want_write_ ? IOLoop::WRITE : 0);
  if (fd_ < 0 || events == watched_) return;
  loop_.update_handler(fd_, events);
  watched_ = events;
}

Future<Reply> Connection::command(const std::vector<std::string>& args) {
  return send(args, true);
}

Future<Reply> Connection::command_raw(const std::vector<std::string>& args) {
  return send(args, false);
}

Future<Reply> Connection::send(const std::vector<std::string>& args, bool raise_errors) {
  auto pending = std::make_unique<Pending>();
  pending->promise = Promise<Reply>(&loop_);
  pending->raise_errors = raise_errors;
  Future<Reply> future = pending->promise.get_future();
  if (args.empty()) {
    pending->promise.set_exception(
        std::make_exception_ptr(std::invalid_argument("redis: empty command")));
    return future;
  }
  if (!is_open()) {
    pending->promise.set_exception(std::make_exception_ptr(ConnectionError(
        "redis: not connected" + (close_reason_.empty() ? "" : ": " + close_reason_))));
    return future;
  }
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (const auto& a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  if (command_timeout_) {
    pending->timer = loop_.call_later(*command_timeout_, [promise = pending->promise]() mutable {
      promise.try_set_exception(std::make_exception_ptr(TimeoutError("redis: command timed out")));
    });
  }
  Pending* raw = pending.get();
  if (redisAsyncCommandArgv(ac_, on_reply, raw, static_cast<int>(args.size()), argv.data(),
                            lengths.data()) != REDIS_OK) {
    loop_.remove_timeout(raw->timer);
    pending->promise.set_exception(
        std::make_exception_ptr(ConnectionError("redis: connection is closing")));
    return future;
  }
  pending.release();  // hiredis owns it until on_reply
  return future;
}

void Connection::subscribe_command(const std::vector<std::string>& args) {
  if (!is_open()) throw ConnectionError("redis: not connected");
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  // privdata is the connection itself: hiredis calls a subscription's callback for
  // every push on it, and once with NULL when the context is freed.
  redisAsyncCommandArgv(ac_, on_push, this, static_cast<int>(args.size()), argv.data(),
                        lengths.data());
}

void Connection::close() {
  if (!ac_ || closing_) return;
  if (close_reason_.empty()) close_reason_ = "connection closed";
  closing_ = true;
  // Frees at once, or after the callback hiredis is running returns.
  redisAsyncFree(ac_);
}

void Connection::lost(const std::string& reason) {
  if (!ac_ || closing_) return;
  close_reason_ = reason;
  close();
}

void Connection::on_connect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<Connection*>(ac->data);
  if (status != REDIS_OK) {
    if (self->close_reason_.empty()) self->close_reason_ = ac->errstr;
    return;  // hiredis frees the context next; the cleanup hook reports it
  }
  self->up_ = true;
  self->loop_.remove_timeout(self->connect_timer_);
  self->connect_timer_ = {};
  self->connected_.try_set_result();
}

void Connection::on_disconnect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<Connection*>(ac->data);
  if (status != REDIS_OK && self->close_reason_.empty()) self->close_reason_ = ac->errstr;
}

void Connection::on_reply(redisAsyncContext* ac, void* reply, void* privdata) {
  std::unique_ptr<Pending> pending(static_cast<Pending*>(privdata));
  auto* self = static_cast<Connection*>(ac->data);
  self->loop_.remove_timeout(pending->timer);
  if (!reply) {
    std::string reason = ac->err ? ac->errstr : self->close_reason_;
    if (reason.empty()) reason = "connection closed";
    pending->promise.try_set_exception(
        std::make_exception_ptr(ConnectionError("redis: " + reason)));
    return;
  }
  Reply r = to_reply(reply);
  if (r.is_error() && pending->raise_errors) {
    pending->promise.try_set_exception(std::make_exception_ptr(ServerError(r.str)));
  } else {
    pending->promise.try_set_result(std::move(r));
  }
}

void Connection::on_push(redisAsyncContext* ac, void* reply, void*) {
  if (!reply) return;
  auto* self = static_cast<Connection*>(ac->data);
  if (!self->on_push_) return;
  Reply r = to_reply(reply);
  auto handler = self->on_push_;
  IOLoop::invoke_logged("redis push handler", [&] { handler(r); });
}

void Connection::ev_add_read(void* data) {
  auto* self = static_cast<Connection*>(data);
  self->want_read_ = true;
  self->update_watch();
}
void Connection::ev_del_read(void* data) {
  auto* self = static_cast<Connection*>(data);
  self->want_read_ = false;
  self->update_watch();
}
void Connection::ev_add_write(void* data) {
  auto* self = static_cast<Connection*>(data);
  self->want_write_ = true;
  self->update_watch();
}
void Connection::ev_del_write(void* data) {
  auto* self = static_cast<Connection*>(data);
  self->want_write_ = false;
  self->update_watch();
}

void Connection::ev_cleanup(void* data) {
  // hiredis is freeing the context (it closes the socket right after): stop watching
  // the fd now, and let go of ourselves only on the next iteration, because hiredis
  // still calls on_disconnect with this connection after this hook.
  auto* self = static_cast<Connection*>(data);
  if (self->ac_ && self->ac_->err && self->close_reason_.empty())
    self->close_reason_ = self->ac_->errstr;
  if (self->close_reason_.empty()) self->close_reason_ = "connection closed";
  if (self->fd_ >= 0) self->loop_.remove_handler(self->fd_);
  self->fd_ = -1;
  self->ac_ = nullptr;
  self->loop_.remove_timeout(self->connect_timer_);
  self->connect_timer_ = {};
  self->connected_.try_set_exception(
      std::make_exception_ptr(ConnectionError("redis: " + self->close_reason_)));
  auto on_close = std::move(self->on_close_);
  self->on_close_ = nullptr;
  self->loop_.add_callback([keep = std::move(self->self_), on_close = std::move(on_close)] {
    if (on_close) IOLoop::invoke_logged("redis close handler", on_close);
  });
}

}  // namespace tronada::redis
