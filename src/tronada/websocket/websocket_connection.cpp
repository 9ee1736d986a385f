#include "tronada/websocket/websocket_connection.h"

#include <vector>

#include "tronada/base/log.h"

namespace tronada::ws {

namespace {

// Server-side connections between start() and their stream's close, linked through the
// connections themselves. Per process: a server runs one loop; tests running several
// loops in turn leave none behind, since every connection leaves when its stream closes.
WebSocketConnection* open_servers_head = nullptr;
std::size_t open_servers_count = 0;

// The future write_message() returns when the write queue is below its high-water mark,
// the usual case: one done state per thread, shared, instead of a promise per message.
// Nothing completes it again, and awaiting or adding a callback to a done state only
// reads it.
Future<void> ready_future() {
  thread_local const std::shared_ptr<detail::FutureState<void>> done = [] {
    auto state = std::make_shared<detail::FutureState<void>>();
    state->value.emplace(true);
    state->done = true;
    return state;
  }();
  return Future<void>(done);
}

// The decoded events of one read, kept per thread so that their storage is reused read
// after read without each idle connection holding a vector of its own.
thread_local std::vector<Event> spare_events;
// The messages of one read, unmasked (FrameParser's arena), likewise per thread.
thread_local std::string spare_arena;
constexpr std::size_t kArenaKeep = 256 * 1024;  // a larger one goes back to malloc

}  // namespace

std::size_t WebSocketConnection::open_server_connections() {
  return open_servers_count;
}

void WebSocketConnection::close_all_server(std::uint16_t code, std::string_view reason) {
  std::vector<std::shared_ptr<WebSocketConnection>> all;
  all.reserve(open_servers_count);
  for (WebSocketConnection* c = open_servers_head; c; c = c->next_open_) {
    all.push_back(c->shared_from_this());
  }
  for (auto& c : all) c->close(code, reason);
}

void WebSocketConnection::link_open_server() {
  if (open_listed_) return;
  open_listed_ = true;
  next_open_ = open_servers_head;
  if (next_open_) next_open_->prev_open_ = this;
  open_servers_head = this;
  ++open_servers_count;
}

void WebSocketConnection::unlink_open_server() {
  if (!open_listed_) return;
  open_listed_ = false;
  if (prev_open_) {
    prev_open_->next_open_ = next_open_;
  } else {
    open_servers_head = next_open_;
  }
  if (next_open_) next_open_->prev_open_ = prev_open_;
  prev_open_ = next_open_ = nullptr;
  --open_servers_count;
}

std::shared_ptr<WebSocketConnection> WebSocketConnection::create(
    std::shared_ptr<IOStream> stream, ConnectionOptions options,
    std::shared_ptr<ConnectionDelegate> delegate) {
  // One block for the object and its count.
  auto c = std::make_shared<WebSocketConnection>(Token{}, std::move(stream), std::move(options),
                                                 std::move(delegate));
  // We hold ourselves until the stream closed (see Lifetime); this also makes a stream
  // that closes before start() still report on_close.
  c->self_ = c;
  c->stream_->set_close_callback([raw = c.get()] { raw->on_stream_closed(); });
  if (c->stream_->closed()) {
    c->stream_->loop().add_callback([c] {
      if (!c->stream_closed_) c->on_stream_closed();
    });
  }
  return c;
}

WebSocketConnection::WebSocketConnection(Token, std::shared_ptr<IOStream> stream,
                                         ConnectionOptions options,
                                         std::shared_ptr<ConnectionDelegate> delegate)
    : stream_(std::move(stream)),
      delegate_(std::move(delegate)),
      deflate_(options.deflate
                   ? std::make_unique<PerMessageDeflate>(
                         *options.deflate, options.role == Role::kServer, options.deflate_options)
                   : nullptr),
      parser_(options.role, options.max_message_size, deflate_.get()),
      writer_(options.role, deflate_.get()),
      ping_interval_(options.ping_interval),
      ping_timeout_(options.ping_timeout),
      close_timeout_(options.close_timeout),
      role_(options.role) {}

WebSocketConnection::~WebSocketConnection() {
  unlink_open_server();
}

Future<void> WebSocketConnection::wait_closed() {
  if (!closed_promise_) {
    closed_promise_ = std::make_unique<Promise<void>>(&stream_->loop());
    if (close_reported_) closed_promise_->set_result();
  }
  return closed_promise_->get_future();
}

void WebSocketConnection::start(std::string leftover) {
  if (stream_closed_) return;
  if (role_ == Role::kServer) link_open_server();
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
    // `this` is safe in the handler: we hold ourselves until the stream closed.
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
  // The thread's vector and arena, used in place; a callback below that made another
  // connection read (nothing does today) would get fresh ones instead.
  thread_local bool reading = false;
  std::vector<Event> own_events;
  std::string own_arena;
  std::vector<Event>& events = reading ? own_events : spare_events;
  std::string& arena = reading ? own_arena : spare_arena;
  struct Done {
    bool& reading;
    bool was;
    std::vector<Event>& events;
    std::string& arena;
    ~Done() {
      // Message buffers go now (an idle connection holds none); the vector's room stays.
      events.clear();
      arena.clear();
      if (arena.capacity() > kArenaKeep) std::string().swap(arena);
      reading = was;
    }
  } done{reading, reading, events, arena};
  reading = true;
  bool ok = parser_.feed(data, events, &arena);
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
  if (!delegate_) return;  // on_close ran
  switch (e.type) {
    case Event::Type::kText:
    case Event::Type::kBinary:
      if (close_sent_) return;  // we are closing: what the peer still sends is dropped
      if (e.view.data()) {
        delegate_->on_message_view(e.view, e.type == Event::Type::kBinary);
      } else {
        delegate_->on_message(std::move(e.data), e.type == Event::Type::kBinary);
      }
      return;
    case Event::Type::kPing:
      if (!close_sent_) send(writer_.pong(e.data));
      delegate_->on_ping(e.data);
      return;
    case Event::Type::kPong:
      delegate_->on_pong(e.data);
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
      if (role_ == Role::kServer) {
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
  unsigned char header[kMaxFrameHeader];
  if (std::size_t n = writer_.plain_message_header(header, message, binary)) {
    // The payload straight from the caller's memory: the stream copies only what the
    // socket does not take at once.
    std::string_view pieces[2] = {{reinterpret_cast<const char*>(header), n}, message};
    if (!stream_->closed()) stream_->write_pieces(pieces, 2);
  } else {
    send(writer_.message(message, binary));
  }
  if (stream_->write_buffer_size() <= stream_->options().write_high_water) return ready_future();
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
  if (close_received_ && role_ == Role::kServer) {
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
  if (close_timer_ || close_timeout_ <= Duration::zero()) return;
  std::weak_ptr<WebSocketConnection> weak = shared_from_this();
  close_timer_ = stream_->loop().call_later(close_timeout_, [weak] {
    if (auto self = weak.lock()) {
      self->close_timer_ = {};
      self->abort();
    }
  });
}

void WebSocketConnection::schedule_ping() {
  if (ping_interval_ <= Duration::zero() || stream_closed_) return;
  std::weak_ptr<WebSocketConnection> weak = shared_from_this();
  ping_timer_ = stream_->loop().call_later(ping_interval_, [weak] {
    auto self = weak.lock();
    if (!self) return;
    self->ping_timer_ = {};
    if (self->closing()) return;
    self->send(self->writer_.ping({}));
    if (self->ping_timeout_ > Duration::zero() && !self->awaiting_pong_) {
      self->awaiting_pong_ = true;
      self->pong_timer_ = self->stream_->loop().call_later(self->ping_timeout_, [weak] {
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
  // Whoever else holds us (the user, a timer's lock) decides when we go; until this
  // function returns, `keep` does.
  std::shared_ptr<WebSocketConnection> keep = std::move(self_);
  stream_closed_ = true;
  unlink_open_server();
  IOLoop& loop = stream_->loop();
  for (TimeoutHandle* t : {&ping_timer_, &pong_timer_, &close_timer_}) {
    if (*t) loop.remove_timeout(*t);
    *t = {};
  }
  // The delegate goes when on_close returned: it may hold the user's objects, which
  // may hold us.
  std::shared_ptr<ConnectionDelegate> delegate = std::move(delegate_);
  if (delegate) {
    IOLoop::invoke_logged("WebSocket on_close",
                          [&] { delegate->on_close(peer_code_, std::move(peer_reason_)); });
  }
  close_reported_ = true;
  if (closed_promise_) closed_promise_->try_set_result();
}

}  // namespace tronada::ws
