#include "tronada/db/redis_subscriber.h"

#include <algorithm>
#include <vector>

#include "tronada/async/event.h"
#include "tronada/async/spawn.h"
#include "tronada/base/log.h"

namespace tronada::redis {

struct Subscriber::State {
  ConnectOptions options;
  std::map<std::string, Handler> channels;
  std::map<std::string, Handler> patterns;
  // Subscriptions awaiting the server's confirmation, by "c:channel" or "p:pattern".
  std::map<std::string, std::vector<Promise<void>>> confirming;
  std::function<void()> on_reconnect;
  std::shared_ptr<Connection> conn;
  bool ready = false;  // conn is up and subscribed to everything registered
  Event wake;
  bool closed = false;

  void on_push(const Reply& r) {
    if (r.type != Reply::Type::array || r.elements.size() < 3) return;
    const std::string& kind = r.elements[0].str;
    if (kind == "message") {
      auto it = channels.find(r.elements[1].str);
      if (it != channels.end()) {
        auto handler = it->second;
        handler(r.elements[1].str, r.elements[2].str);
      }
    } else if (kind == "pmessage" && r.elements.size() >= 4) {
      auto it = patterns.find(r.elements[1].str);
      if (it != patterns.end()) {
        auto handler = it->second;
        handler(r.elements[2].str, r.elements[3].str);
      }
    } else if (kind == "subscribe" || kind == "psubscribe") {
      auto it = confirming.find((kind[0] == 'p' ? "p:" : "c:") + r.elements[1].str);
      if (it == confirming.end()) return;
      auto waiters = std::move(it->second);
      confirming.erase(it);
      for (auto& w : waiters) w.try_set_result();
    }
  }

  void fail_confirmations(std::exception_ptr error) {
    auto all = std::move(confirming);
    confirming.clear();
    for (auto& [name, waiters] : all) {
      for (auto& w : waiters) w.try_set_exception(error);
    }
  }
};

namespace {

Task<void> keep_subscribed(std::shared_ptr<Subscriber::State> state) {
  Duration delay = std::chrono::milliseconds(100);
  const Duration max_delay = std::chrono::seconds(5);
  bool reconnecting = false;
  while (!state->closed) {
    bool subscribed = false;
    try {
      std::shared_ptr<Connection> conn = Connection::open(state->options);
      state->conn = conn;
      auto lost = std::make_shared<Event>();
      conn->set_close_handler([lost] { lost->set(); });
      std::weak_ptr<Subscriber::State> weak = state;
      conn->set_push_handler([weak](const Reply& r) {
        if (auto s = weak.lock()) s->on_push(r);
      });
      Future<void> up = conn->connected();
      co_await up;
      if (state->closed) {
        conn->close();
        break;
      }
      std::vector<std::string> channels{"SUBSCRIBE"}, patterns{"PSUBSCRIBE"};
      for (auto& [name, h] : state->channels) channels.push_back(name);
      for (auto& [name, h] : state->patterns) patterns.push_back(name);
      if (channels.size() > 1) conn->subscribe_command(channels);
      if (patterns.size() > 1) conn->subscribe_command(patterns);
      state->ready = true;
      subscribed = true;
      delay = std::chrono::milliseconds(100);
      if (reconnecting && state->on_reconnect) {
        auto handler = state->on_reconnect;
        IOLoop::invoke_logged("redis subscriber reconnect handler", handler);
      }
      co_await lost->wait();
      if (!state->closed)
        log::warning("redis", "subscriber connection lost: " + conn->close_reason());
    } catch (const std::exception& e) {
      if (!state->closed) log::warning("redis", std::string("subscriber: ") + e.what());
      state->fail_confirmations(std::current_exception());
    }
    state->ready = false;
    if (state->conn) state->conn->close();
    state->conn.reset();
    if (state->closed) break;
    reconnecting = true;
    if (!subscribed) delay = std::min(delay * 2, max_delay);
    Future<void> woken = state->wake.wait(delay);
    try {
      co_await woken;
    } catch (const TimeoutError&) {
    }
  }
  state->fail_confirmations(std::make_exception_ptr(ConnectionError("redis subscriber: closed")));
}

Future<void> add(Subscriber::State& state, bool pattern, std::string name,
                 Subscriber::Handler handler) {
  Promise<void> promise(&IOLoop::current());
  Future<void> future = promise.get_future();
  if (state.closed) {
    promise.set_exception(std::make_exception_ptr(ConnectionError("redis subscriber: closed")));
    return future;
  }
  (pattern ? state.patterns : state.channels)[name] = std::move(handler);
  state.confirming[(pattern ? "p:" : "c:") + name].push_back(promise);
  // Not ready: the next (re)connect subscribes to everything registered.
  if (state.ready && state.conn && state.conn->is_open()) {
    state.conn->subscribe_command({pattern ? "PSUBSCRIBE" : "SUBSCRIBE", name});
  }
  return future;
}

}  // namespace

Subscriber::Subscriber(ConnectOptions options) : state_(std::make_shared<State>()) {
  state_->options = std::move(options);
  spawn_logged(keep_subscribed(state_), "redis subscriber");
}

Subscriber::~Subscriber() {
  close();
}

void Subscriber::close() {
  if (state_->closed) return;
  state_->closed = true;
  state_->wake.set();
  if (state_->conn) state_->conn->close();
}

Future<void> Subscriber::subscribe(std::string channel, Handler handler) {
  return add(*state_, false, std::move(channel), std::move(handler));
}

Future<void> Subscriber::psubscribe(std::string pattern, Handler handler) {
  return add(*state_, true, std::move(pattern), std::move(handler));
}

void Subscriber::unsubscribe(const std::string& channel) {
  state_->channels.erase(channel);
  if (state_->ready && state_->conn && state_->conn->is_open()) {
    state_->conn->subscribe_command({"UNSUBSCRIBE", channel});
  }
}

void Subscriber::punsubscribe(const std::string& pattern) {
  state_->patterns.erase(pattern);
  if (state_->ready && state_->conn && state_->conn->is_open()) {
    state_->conn->subscribe_command({"PUNSUBSCRIBE", pattern});
  }
}

void Subscriber::set_reconnect_handler(std::function<void()> handler) {
  state_->on_reconnect = std::move(handler);
}

bool Subscriber::connected() const {
  return state_->ready && state_->conn && state_->conn->is_open();
}

}  // namespace tronada::redis
