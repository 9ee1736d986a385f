#include "tronada/db/pg_listener.h"

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "tronada/async/event.h"
#include "tronada/async/spawn.h"
#include "tronada/base/log.h"

namespace tronada::pg {

struct Listener::State {
  std::string conninfo;
  ListenerOptions options;
  std::map<std::string, Handler> handlers;
  std::function<void()> on_reconnect;
  std::shared_ptr<Connection> conn;
  std::vector<Promise<void>> waiting_for_connection;
  Event wake;  // set by close() to cut a reconnect delay short
  bool closed = false;

  void dispatch(const Notification& n) {
    auto it = handlers.find(n.channel);
    if (it == handlers.end()) return;
    auto handler = it->second;  // the handler may unlisten itself
    handler(n);
  }

  void settle_waiters(std::exception_ptr error) {
    auto waiters = std::move(waiting_for_connection);
    waiting_for_connection.clear();
    for (auto& w : waiters) {
      if (error) {
        w.try_set_exception(error);
      } else {
        w.try_set_result();
      }
    }
  }
};

std::string quote_identifier(std::string_view name) {
  if (name.find('\0') != std::string_view::npos) {
    throw std::invalid_argument("pg: identifier contains a NUL byte");
  }
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

namespace {

// One connection's life: connect, LISTEN to every channel, wait until it breaks; then
// again after a delay, until the Listener closes.
Task<void> keep_listening(std::shared_ptr<Listener::State> state) {
  Duration delay = state->options.reconnect_delay;
  bool reconnecting = false;
  while (!state->closed) {
    bool listening = false;
    try {
      Future<std::shared_ptr<Connection>> connecting =
          Connection::connect(state->conninfo, state->options.connect_timeout);
      std::shared_ptr<Connection> conn = co_await connecting;
      if (state->closed) {
        conn->close();
        break;
      }
      auto lost = std::make_shared<Event>();
      std::weak_ptr<Listener::State> weak = state;
      conn->set_notification_handler([weak](const Notification& n) {
        if (auto s = weak.lock()) s->dispatch(n);
      });
      conn->set_close_handler([lost] { lost->set(); });
      state->conn = conn;
      std::vector<std::string> channels;
      for (auto& [channel, handler] : state->handlers) channels.push_back(channel);
      for (auto& channel : channels) {
        Future<Result> listened = conn->execute("LISTEN " + quote_identifier(channel), {});
        co_await listened;
      }
      listening = true;
      delay = state->options.reconnect_delay;
      state->settle_waiters(nullptr);
      if (reconnecting && state->on_reconnect) {
        auto handler = state->on_reconnect;
        IOLoop::invoke_logged("pg listener reconnect handler", handler);
      }
      co_await lost->wait();
      if (!state->closed) log::warning("pg", "listener connection lost: " + conn->close_reason());
      state->conn.reset();
    } catch (const std::exception& e) {
      if (state->conn) state->conn->close();
      state->conn.reset();
      if (!state->closed) log::warning("pg", std::string("listener: ") + e.what());
      state->settle_waiters(std::current_exception());
    }
    if (state->closed) break;
    reconnecting = true;
    if (!listening) delay = std::min(delay * 2, state->options.max_reconnect_delay);
    Future<void> woken = state->wake.wait(delay);
    try {
      co_await woken;
    } catch (const TimeoutError&) {
    }
  }
  state->settle_waiters(std::make_exception_ptr(ConnectionError("pg listener: closed")));
}

}  // namespace

Listener::Listener(std::string conninfo, ListenerOptions options)
    : state_(std::make_shared<State>()) {
  state_->conninfo = std::move(conninfo);
  state_->options = options;
  spawn_logged(keep_listening(state_), "pg listener");
}

Listener::~Listener() {
  close();
}

void Listener::close() {
  if (state_->closed) return;
  state_->closed = true;
  state_->wake.set();
  if (state_->conn) state_->conn->close();
}

bool Listener::connected() const {
  return state_->conn && state_->conn->is_open();
}

void Listener::set_reconnect_handler(std::function<void()> handler) {
  state_->on_reconnect = std::move(handler);
}

Future<void> Listener::listen(std::string channel, Handler handler) {
  std::string statement = "LISTEN " + quote_identifier(channel);
  state_->handlers[std::move(channel)] = std::move(handler);
  if (state_->closed) {
    Promise<void> failed;
    failed.set_exception(std::make_exception_ptr(ConnectionError("pg listener: closed")));
    return failed.get_future();
  }
  Promise<void> promise(&IOLoop::current());
  Future<void> future = promise.get_future();
  if (state_->conn && state_->conn->is_open()) {
    Future<Result> listened = state_->conn->execute(std::move(statement), {});
    listened.add_done_callback([promise, weak = listened.weak_state()]() mutable {
      auto s = weak.lock();
      if (s && s->exception) {
        promise.try_set_exception(s->exception);
      } else {
        promise.try_set_result();
      }
    });
  } else {
    state_->waiting_for_connection.push_back(std::move(promise));
  }
  return future;
}

Future<void> Listener::unlisten(std::string channel) {
  state_->handlers.erase(channel);
  Promise<void> promise(&IOLoop::current());
  Future<void> future = promise.get_future();
  if (state_->conn && state_->conn->is_open()) {
    Future<Result> done = state_->conn->execute("UNLISTEN " + quote_identifier(channel), {});
    done.add_done_callback([promise, weak = done.weak_state()]() mutable {
      auto s = weak.lock();
      if (s && s->exception) {
        promise.try_set_exception(s->exception);
      } else {
        promise.try_set_result();
      }
    });
  } else {
    promise.set_result();  // nothing is listening now; the next connection will not
  }
  return future;
}

}  // namespace tronada::pg
