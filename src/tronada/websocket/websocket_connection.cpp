#include "tronada/websocket/websocket_connection.h"

#include <unordered_set>
#include <vector>

#include "tronada/base/log.h"

namespace tronada::ws {

namespace {

// Server-side connections between start() and their stream's close. Per process: a
// server runs one loop; tests running several loops in turn leave none behind, since
// every connection leaves the set when its stream closes.
std::unordered_set<WebSocketConnection*>& open_servers() {
  static std::unordered_set<WebSocketConnection*> set;
  return set;
}

}  // namespace

std::size_t WebSocketConnection::open_server_connections() {
  return open_servers().size();
}

void WebSocketConnection::close_all_server(std::uint16_t code, std::string_view reason) {
  std::vector<std::shared_ptr<WebSocketConnection>> all;
  for (WebSocketConnection* c : open_servers()) all.push_back(c->shared_from_this());
  for (auto& c : all) c->close(code, reason);
}

std::shared_ptr<WebSocketConnection> WebSocketConnection::create(std::shared_ptr<IOStream> stream,
                                                                 ConnectionOptions options,
                                                                 ConnectionCallbacks callbacks) {
  std::shared_ptr<WebSocketConnection> c(
      new WebSocketConnection(std::move(stream), std::move(options), std::move(callbacks)));
  // The stream holds us until it closed (see Lifetime); this also makes a stream that
  // closes before start() still report on_close.
  c->stream_->set_close_callback([c] { c->on_stream_closed(); });
  if (c->stream_->closed()) {
    c->stream_->loop().add_callback([c] {
      if (!c->stream_closed_) c->on_stream_closed();
    });
  }
  return c;
}

WebSocketConnection::WebSocketConnection(std::shared_ptr<IOStream> stream,
                                         ConnectionOptions options, ConnectionCallbacks callbacks)
    : stream_(std::move(stream)),
      options_(std::move(options)),
      callbacks_(std::move(callbacks)),
      deflate_(options_.deflate ? std::make_unique<PerMessageDeflate>(
                                      *options_.deflate, options_.role == Role::kServer,
                                      options_.deflate_options)
                                : nullptr),
      parser_(options_.role, options_.max_message_size, deflate_.get()),
      writer_(options_.role, deflate_.get()),
      closed_promise_(&stream_->loop()) {}

WebSocketConnection::~WebSocketConnection() {
  open_servers().erase(this);
}

void WebSocketConnection::start(std::string leftover) {
  if (stream_closed_) return;
  if (options_.role == Role::kServer) open_servers().insert(this);
  stream_->set_nodelay(true);
  if (!leftover.empty()) {
    // From the loop: start() is called from the user's code (a handler's get()).
    stream_->loop().add_callback([self = shared_from_this(), data = std::move(leftover)] {
      self->on_data(data);
      if (!self->stream_closed_ && !self->stream_->closed()) {
        self->stream_->set_data_handler(
            [raw = self.get()](std::string_view d) { raw->on_data(d); });
      }
    });
  } else {
    // `this` is safe in the handler: the stream owns us until it closed.
    stream_->set_data_handler([this](std::string_view d) { on_data(d); });
  }
  schedule_ping();
}

void WebSocketConnection::on_data(std::string_view data) {
  if (stream_closed_) return;
  // Any frame shows the peer is alive (a pong most often).
  if (awaiting_pong_) {
    awaiting_pong_ = false;
    stream_->loop().remove_timeout(pong_timer_);
    pong_timer_ = {};
  }
  bool ok = parser_.feed(data, events_);
  std::vector<Event> events = std::move(events_);
  events_.clear();
  dispatching_ = true;
  for (auto& e : events) {
    if (stream_closed_) break;
    try {
      handle(e);
    } catch (const std::exception& ex) {
      log::error("websocket",
                 std::string("uncaught exception in a WebSocket callback: ") + ex.what());
      fail(close_code::kInternalError, "internal error");
      break;
    }
  }
  dispatching_ = false;
  if (!ok && !stream_closed_) {
    log::info("websocket", "closing: " + parser_.error_reason());
    fail(parser_.error_code(), parser_.error_reason());
  }
}

void WebSocketConnection::handle(Event& e) {
  switch (e.type) {
    case Event::Type::kText:
    case Event::Type::kBinary:
      if (close_sent_) return;  // we are closing: what the peer still sends is dropped
      callbacks_.on_message(std::move(e.data), e.type == Event::Type::kBinary);
      return;
    case Event::Type::kPing:
      if (!close_sent_) send(writer_.pong(e.data));
      if (callbacks_.on_ping) callbacks_.on_ping(e.data);
      return;
    case Event::Type::kPong:
      if (callbacks_.on_pong) callbacks_.on_pong(e.data);
      return;
    case Event::Type::kClose:
      close_received_ = true;
      peer_code_ = e.code;
      peer_reason_ = std::move(e.data);
      if (!close_sent_) {
        close_sent_ = true;
        // Echo the peer's code, as RFC 6455 5.5.1 suggests; none if it sent none.
        send(writer_.close(e.code == close_code::kNoStatus ? 0 : e.code));
      }
      if (options_.role == Role::kServer) {
        close_after_flush();  // the server closes the TCP connection first (7.1.1)
      } else {
        arm_close_timeout();  // the client waits for the server to close
      }
      return;
  }
}

void WebSocketConnection::fail(std::uint16_t code, const std::string& reason) {
  if (!close_sent_ && !stream_->closed()) {
    close_sent_ = true;
    send(writer_.close(code, reason));
  }
  close_after_flush();
}

void WebSocketConnection::send(std::string frame) {
  if (stream_->closed()) return;
  std::string_view piece(frame);
  stream_->write_pieces(&piece, 1);
}

void WebSocketConnection::close_after_flush() {
  if (stream_->closed()) return;
  stream_->set_data_handler(nullptr);  // nothing more is read
  if (stream_->write_buffer_size() == 0) {
    stream_->close();
    return;
  }
  stream_->write_pieces(nullptr, 0, [self = shared_from_this()] { self->stream_->close(); });
  arm_close_timeout();  // a peer that never reads must not hold us
}

Future<void> WebSocketConnection::write_message(std::string_view message, bool binary) {
  if (closing()) throw WebSocketClosedError();
  send(writer_.message(message, binary));
  if (stream_->write_buffer_size() <= stream_->options().write_high_water) {
    Promise<void> done(&stream_->loop());
    done.set_result();
    return done.get_future();
  }
  return stream_->drain();
}

void WebSocketConnection::ping(std::string_view data) {
  if (closing()) throw WebSocketClosedError();
  send(writer_.ping(data));
}

void WebSocketConnection::close(std::uint16_t code, std::string_view reason) {
  if (stream_closed_ || close_sent_) return;
  close_sent_ = true;
  send(writer_.close(code, reason));
  if (close_received_ && options_.role == Role::kServer) {
    close_after_flush();
  } else {
    arm_close_timeout();
  }
}

void WebSocketConnection::abort() {
  if (!stream_->closed()) stream_->close();
}

void WebSocketConnection::pause_reading() {
  stream_->pause_reading();
}

void WebSocketConnection::resume_reading() {
  stream_->resume_reading();
}

void WebSocketConnection::arm_close_timeout() {
  if (close_timer_ || options_.close_timeout <= Duration::zero()) return;
  std::weak_ptr<WebSocketConnection> weak = shared_from_this();
  close_timer_ = stream_->loop().call_later(options_.close_timeout, [weak] {
    if (auto self = weak.lock()) {
      self->close_timer_ = {};
      self->abort();
    }
  });
}

void WebSocketConnection::schedule_ping() {
  if (options_.ping_interval <= Duration::zero() || stream_closed_) return;
  std::weak_ptr<WebSocketConnection> weak = shared_from_this();
  ping_timer_ = stream_->loop().call_later(options_.ping_interval, [weak] {
    auto self = weak.lock();
    if (!self) return;
    self->ping_timer_ = {};
    if (self->closing()) return;
    self->send(self->writer_.ping({}));
    if (self->options_.ping_timeout > Duration::zero() && !self->awaiting_pong_) {
      self->awaiting_pong_ = true;
      self->pong_timer_ = self->stream_->loop().call_later(self->options_.ping_timeout, [weak] {
        auto s = weak.lock();
        if (!s || !s->awaiting_pong_) return;
        s->pong_timer_ = {};
        log::info("websocket", "no pong within ping_timeout: closing");
        s->abort();
      });
    }
    self->schedule_ping();
  });
}

void WebSocketConnection::on_stream_closed() {
  if (stream_closed_) return;
  stream_closed_ = true;
  open_servers().erase(this);
  IOLoop& loop = stream_->loop();
  for (TimeoutHandle* t : {&ping_timer_, &pong_timer_, &close_timer_}) {
    if (*t) loop.remove_timeout(*t);
    *t = {};
  }
  // Callbacks go before on_close runs: they may hold the user's objects, which may hold
  // us; on_close itself is moved out so that it can drop them.
  ConnectionCallbacks callbacks = std::move(callbacks_);
  callbacks_ = {};
  if (callbacks.on_close) {
    IOLoop::invoke_logged("WebSocket on_close",
                          [&] { callbacks.on_close(peer_code_, std::move(peer_reason_)); });
  }
  closed_promise_.try_set_result();
}

}  // namespace tronada::ws
