#include "tronada/http/http1_connection.h"

#include <arpa/inet.h>

#include <cstring>
#include <stdexcept>
#include <tuple>
#include <type_traits>

#include "tronada/async/detail/pool_allocator.h"
#include "tronada/base/log.h"
#include "tronada/http/h2c_upgrade.h"

namespace tronada {

namespace detail {

HTTP1ServerContext::HTTP1ServerContext(IOLoop& loop, HTTPServerOptions opts, HTTPServerDelegate* d)
    : options(std::move(opts)),
      delegate(d),
      idle_timeouts(loop, options.idle_timeout),
      header_timeouts(loop, options.header_timeout),
      body_timeouts(loop, options.body_timeout),
      write_timeouts(loop, options.write_timeout),
      linger_timeouts(loop, options.linger_timeout) {}

void HTTP1ConnectionList::insert(HTTP1Connection* conn) {
  if (conn->listed_) return;
  conn->listed_ = true;
  conn->prev_listed_ = nullptr;
  conn->next_listed_ = head_;
  if (head_) head_->prev_listed_ = conn;
  head_ = conn;
  ++size_;
}

void HTTP1ConnectionList::erase(HTTP1Connection* conn) {
  if (!conn->listed_) return;
  conn->listed_ = false;
  if (conn->prev_listed_) {
    conn->prev_listed_->next_listed_ = conn->next_listed_;
  } else {
    head_ = conn->next_listed_;
  }
  if (conn->next_listed_) conn->next_listed_->prev_listed_ = conn->prev_listed_;
  conn->prev_listed_ = conn->next_listed_ = nullptr;
  --size_;
}

std::vector<HTTP1Connection*> HTTP1ConnectionList::snapshot() const {
  std::vector<HTTP1Connection*> conns;
  conns.reserve(size_);
  for (HTTP1Connection* c = head_; c; c = c->next_listed_) conns.push_back(c);
  return conns;
}

}  // namespace detail

namespace {

/// One request's response channel on an HTTP/1 connection. It names the request by
/// sequence number, so a handler that answers after its request ended (the connection
/// moved on to the next one) writes nothing.
class HTTP1Stream final : public HTTPConnection {
 public:
  HTTP1Stream(std::shared_ptr<HTTP1Connection> conn, std::uint64_t seq)
      : conn_(std::move(conn)), seq_(seq) {}
  void write_headers(int status, const HTTPHeaders& headers) override {
    conn_->write_headers(seq_, status, headers);
  }
  void write_headers_with_reason(int status, std::string_view reason,
                                 const HTTPHeaders& headers) override {
    conn_->write_headers(seq_, status, headers, reason);
  }
  void write(std::string_view chunk) override { conn_->write_body(seq_, chunk); }
  void finish() override { conn_->finish_response(seq_); }
  void abort() override { conn_->abort_response(seq_); }
  Future<void> drain() override { return conn_->drain(seq_); }
  bool closed() const override { return conn_->response_closed(seq_); }
  void set_close_callback(std::function<void()> cb) override {
    conn_->set_close_callback(seq_, std::move(cb));
  }
  void write_response(int status, const HTTPHeaders& headers, std::string_view body) override {
    conn_->write_response(seq_, status, headers, body);
  }
  void write_response_with_reason(int status, std::string_view reason, const HTTPHeaders& headers,
                                  std::string_view body) override {
    conn_->write_response(seq_, status, headers, body, reason);
  }
  void write_head(int status, std::span<const HeaderRef> fields) override {
    conn_->write_head(seq_, status, fields);
  }
  void write_whole_response(int status, std::span<const HeaderRef> fields,
                            std::string_view body) override {
    conn_->write_whole_response(seq_, status, fields, body);
  }
  bool can_write_file() const override { return true; }
  void write_file(FileRegion region) override { conn_->write_file(seq_, std::move(region)); }
  DetachedConnection detach() override { return conn_->detach(seq_); }
  void pause_reading() override { conn_->pause_body(seq_); }
  void resume_reading() override { conn_->resume_body(seq_); }
  std::pair<std::string, int> local_address() const override { return conn_->local_address(); }

 private:
  std::shared_ptr<HTTP1Connection> conn_;
  std::uint64_t seq_;
};

bool is_valid_ip(std::string_view ip) {
  char buf[INET6_ADDRSTRLEN + 1];
  if (ip.empty() || ip.size() >= sizeof buf) return false;
  std::memcpy(buf, ip.data(), ip.size());
  buf[ip.size()] = '\0';
  unsigned char addr[sizeof(in6_addr)];
  return inet_pton(AF_INET, buf, addr) == 1 || inet_pton(AF_INET6, buf, addr) == 1;
}

// The last element of a comma-separated list, without surrounding whitespace.
std::string_view last_element(std::string_view list) {
  auto comma = list.rfind(',');
  if (comma != std::string_view::npos) list.remove_prefix(comma + 1);
  return detail::trim_ows(list);
}

// Response bytes are gathered in state().out and handed to the stream once per loop iteration
// (or per read), so pipelined and small responses cost one system call. Bodies at least
// this big go to the stream directly instead of being copied into state().out first.
constexpr std::size_t kDirectWrite = 16 * 1024;
// state().out is flushed early once it holds this much.
constexpr std::size_t kFlushThreshold = 64 * 1024;
// Pipelined input held while a request is answered; beyond this, reading pauses.
constexpr std::size_t kPendingSlack = 64 * 1024;
// Buffers bigger than this are given back when they empty (idle connections stay small).
constexpr std::size_t kKeepCapacity = 16 * 1024;

// Empties a buffer that has been used up, giving its memory back past kKeepCapacity.
void empty_buffer(std::string& buffer) {
  if (buffer.capacity() > kKeepCapacity) {
    std::string().swap(buffer);
  } else {
    buffer.clear();
  }
}

// Request states kept per thread for reuse, so that a request costs no allocation for
// its parser and response buffer; beyond this many the rest are freed.
constexpr std::size_t kPooledStates = 64;

}  // namespace

/// What a connection needs only while a request is read or answered: the parser, the
/// response framing and buffer, and the current request. An idle keep-alive connection
/// holds none of it; it is taken from a per-thread pool when the first byte of a request
/// arrives and goes back there once the response is out and nothing of the next request
/// has been read (release_idle_state).
struct HTTP1Connection::RequestState {
  RequestState(HTTP1ParserDelegate& delegate, const HTTP1Limits& limits)
      : parser(delegate, limits) {}

  HTTP1RequestParser parser;   // spans pipelined requests; reset when taken from the pool
  HTTP1ResponseWriter writer;  // the current response's framing
  std::string out;             // response bytes not yet handed to the stream
  // Pipelined input read ahead of the current request, unread from pending_pos on. Here
  // rather than in the connection: a connection holding any keeps its request state
  // (release_idle_state), so idle connections do not pay these 40 bytes.
  std::string pending;
  std::size_t pending_pos = 0;
  // A delegate whose request ended while one of its own methods ran; freed after it returns.
  std::unique_ptr<HTTPMessageDelegate> retired_message;
  // Within finish_upgrade_request: the bytes after the upgrade request in the input
  // being parsed, which detach() hands over.
  std::string_view upgrade_rest;
  bool in_upgrade_finish = false;

  /// The current request, made afresh when its header section arrives rather than reset
  /// field by field.
  struct Current {
    std::shared_ptr<HTTPServerRequest> request;
    std::unique_ptr<HTTPMessageDelegate> message;
    std::function<void()> close_callback;
    // Body bytes read while the handler paused the body (pause_body); delivered on resume.
    std::string held_body;
    bool has_body = false;
    bool message_complete = false;  // its body has been read whole
    bool stream_body = false;
    bool upgrade = false;             // the request asks to switch protocols
    bool upgrade_finish_due = false;  // ...and its finish() waits for feed() to return
    bool body_paused = false;         // the handler paused its streamed body
    bool finish_held = false;         // ...and the body ended meanwhile
  } current;

  // The per-thread pool. A flag that needs no destructor tells connections destroyed
  // after it at thread exit to free their state instead.
  struct Pool {
    std::vector<RequestState*> free;
    ~Pool();
  };
  static inline thread_local bool pool_gone = false;
  static Pool& pool() {
    thread_local Pool p;
    return p;
  }
};

HTTP1Connection::RequestState::Pool::~Pool() {
  pool_gone = true;
  for (RequestState* state : free) delete state;
}

void HTTP1Connection::RequestStateRecycler::operator()(RequestState* state) const {
  if (RequestState::pool_gone || RequestState::pool().free.size() >= kPooledStates) {
    delete state;
    return;
  }
  state->current = {};
  state->retired_message.reset();
  state->upgrade_rest = {};
  state->in_upgrade_finish = false;
  empty_buffer(state->out);
  empty_buffer(state->pending);
  state->pending_pos = 0;
  RequestState::pool().free.push_back(state);
}

void HTTP1Connection::make_state() {
  auto& free = RequestState::pool().free;
  if (free.empty()) {
    rs_.reset(new RequestState(*this, context_->options.limits));
  } else {
    rs_.reset(free.back());
    free.pop_back();
    rs_->parser.reset(*this, context_->options.limits);
    rs_->writer = HTTP1ResponseWriter();
  }
}

void HTTP1Connection::release_idle_state() {
  if (!rs_ || request_active_ || in_delegate_ || dispatching_ || closing_ ||
      rs_->parser.in_message() || !rs_->out.empty() || has_pending()) {
    return;
  }
  rs_.reset();
}

bool HTTP1Connection::has_pending() const {
  return rs_ && rs_->pending_pos < rs_->pending.size();
}

void HTTP1Connection::drop_pending() {
  if (!rs_) return;
  std::string().swap(rs_->pending);
  rs_->pending_pos = 0;
}

/// Marks a call into the request's delegate (its data_received or finish): a delegate
/// that ends its request from inside is kept (retired_message) until the call returned.
/// For an upgrade request's finish, also where the bytes after the request are.
class HTTP1Connection::DelegateCall {
 public:
  explicit DelegateCall(HTTP1Connection& conn) : conn_(conn) { conn_.in_delegate_ = true; }
  DelegateCall(HTTP1Connection& conn, std::string_view upgrade_rest) : DelegateCall(conn) {
    RequestState& state = conn_.state();
    state.in_upgrade_finish = true;
    state.upgrade_rest = upgrade_rest;
  }
  DelegateCall(const DelegateCall&) = delete;
  DelegateCall& operator=(const DelegateCall&) = delete;
  ~DelegateCall() {
    conn_.in_delegate_ = false;
    if (RequestState* state = conn_.rs_.get()) {
      state->in_upgrade_finish = false;
      state->upgrade_rest = {};
      state->retired_message.reset();
    }
  }

 private:
  HTTP1Connection& conn_;
};

HTTP1Connection::HTTP1Connection(std::shared_ptr<IOStream> stream,
                                 std::shared_ptr<detail::HTTP1ServerContext> context)
    : stream_(std::move(stream)),
      context_(std::move(context)),
      read_timeout_(&HTTP1Connection::on_read_timeout, this),
      write_timeout_(&HTTP1Connection::on_write_timeout, this) {}

HTTP1Connection::~HTTP1Connection() {
  context_->connections.erase(this);
}

void HTTP1Connection::start(std::string_view initial) {
  context_->connections.insert(this);
  keep_alive_ = context_->options.keep_alive;
  // Once per connection: a getpeername per request would be a system call on a hot path.
  std::tie(remote_ip_, remote_port_) = stream_->peer_address();
  // We hold ourselves until the stream closes (on_stream_closed drops self_), which
  // breaks the cycle through stream_. The stream's handlers can therefore hold `this`.
  self_ = shared_from_this();
  stream_->set_close_callback([this] { on_stream_closed(); });
  stream_->set_data_handler([this](std::string_view data) { on_data(data); });
  stream_->set_eof_handler([this] { on_peer_eof(); });
  arm(context_->idle_timeouts);
  if (context_->draining) close_when_idle();  // sniffed after the stop began
  if (!initial.empty()) on_data(initial);
}

void HTTP1Connection::arm(TimeoutList& list) {
  if (list.duration() > Duration::zero()) {
    list.arm(read_timeout_);
  } else {
    read_timeout_.disarm();
  }
}

void HTTP1Connection::close() {
  closing_ = true;
  read_timeout_.disarm();
  write_timeout_.disarm();
  if (!detached_ && !stream_->closed()) stream_->close();
}

void HTTP1Connection::close_when_idle() {
  close_when_idle_ = true;
  keep_alive_ = false;
  if (!request_active_ && !(rs_ && rs_->parser.in_message()) && !has_pending()) {
    if (seq_ == 0 && phase_ == Phase::idle) {
      // Accepted but not heard from yet: its first request is most likely on the wire (a
      // client connects, then writes), and closing now would fail a client that did
      // nothing wrong, as a reload or an upgrade would otherwise do. nginx too closes
      // only kept-alive connections. It has the linger time to begin; its answer then
      // closes the connection (keep-alive is off).
      arm(context_->linger_timeouts);
      return;
    }
    close_after_flush(false);
  }
}

// The client shut down its sending side (`nc -N`, a script that sends and then reads to
// EOF, or a client that closed altogether: TCP cannot tell them apart). Responses
// already written still go out before we close, rather than being cancelled with the
// socket. A request still being answered ends as when the client vanished (the handler's
// on_connection_close runs), as in Tornado and nginx: a long poll must learn that its
// client left.
void HTTP1Connection::on_peer_eof() {
  if (closing_) {
    // Lingering waits for exactly this: the client has stopped sending.
    if (phase_ == Phase::lingering) close();
    return;
  }
  if (request_active_) {
    close();
    return;
  }
  close_after_flush(false);
}

void HTTP1Connection::on_read_timeout(void* p) {
  auto* self = static_cast<HTTP1Connection*>(p);
  switch (self->phase_) {
    case Phase::idle:
      if (self->stream_->write_buffer_size() > 0) {
        // The last response is still on its way: the write timeout watches that, and the
        // keep-alive wait starts once it is out.
        self->arm(self->context_->idle_timeouts);
        break;
      }
      self->close();
      break;
    case Phase::headers:
      // Slow or stuck header section (a slowloris client): 408 as nginx logs it.
      log::info("http", "header timeout from " + self->remote_ip_);
      self->send_error(408, "request header timeout");
      break;
    case Phase::body:
      log::info("http", "body timeout from " + self->remote_ip_);
      self->send_error(408, "request body timeout");
      break;
    case Phase::handling:
      break;  // the handler takes its time; nothing is read meanwhile
    case Phase::lingering:
      self->close();
      break;
  }
}

void HTTP1Connection::mark_write_progress() {
  write_mark_taken_ = bytes_handed_ - stream_->write_buffer_size();
  write_mark_handed_ = bytes_handed_;
  write_mark_unsent_ = stream_->unsent_bytes();
}

void HTTP1Connection::on_write_timeout(void* p) {
  auto* self = static_cast<HTTP1Connection*>(p);
  std::size_t queued = self->stream_->write_buffer_size();
  if (queued == 0) return;  // all written: stop watching
  // Progress shows as a write that completed, or, within one big write, as the unsent
  // bytes shrinking below what they were plus what was added since.
  std::uint64_t taken = self->bytes_handed_ - queued;
  std::uint64_t unsent_if_stuck =
      self->write_mark_unsent_ + (self->bytes_handed_ - self->write_mark_handed_);
  if (taken > self->write_mark_taken_ || self->stream_->unsent_bytes() < unsent_if_stuck) {
    // The client took some since the last look: give it another period.
    self->mark_write_progress();
    self->context_->write_timeouts.arm(self->write_timeout_);
    return;
  }
  log::info("http", "write timeout to " + self->remote_ip_);
  self->close();
}

void HTTP1Connection::on_data(std::string_view data) {
  // No shared_from_this() here: the stream's close callback owns us until the stream has
  // closed, which happens from the loop, never inside this call.
  if (closing_) return;  // lingering: what the client still sends is dropped
  if (phase_ == Phase::body && !state().current.body_paused) arm(context_->body_timeouts);
  dispatching_ = true;
  if (has_pending()) {
    if (!data.empty()) {
      if (rs_->pending_pos > 0) {
        rs_->pending.erase(0, rs_->pending_pos);
        rs_->pending_pos = 0;
      }
      rs_->pending.append(data);
    }
    process_pending();
  } else {
    std::size_t used = process(data);
    if (used < data.size() && !closing_) {
      state().pending.assign(data.substr(used));
      state().pending_pos = 0;
    }
  }
  dispatching_ = false;
  if (closing_) return;
  // A request begun but without its header section yet (possibly after a pipelined one
  // that was answered at once) runs against the header timeout from now on.
  if (phase_ == Phase::idle && !request_active_ && rs_ && rs_->parser.in_message()) {
    phase_ = Phase::headers;
    arm(context_->header_timeouts);
  }
  update_read_pause();
  flush();
  release_idle_state();
}

void HTTP1Connection::process_pending() {
  // Within on_data (dispatching_): the request state stays while process() runs.
  RequestState& rs = *rs_;
  std::string_view input(rs.pending);
  input.remove_prefix(rs.pending_pos);
  rs.pending_pos += process(input);
  if (rs.pending_pos >= rs.pending.size()) {
    rs.pending_pos = 0;
    empty_buffer(rs.pending);
  }
}

void HTTP1Connection::update_read_pause() {
  // While a request is answered, what the client pipelines behind it waits in pending;
  // past a bound, reading stops (TCP flow control holds the client back).
  std::size_t held = has_pending() ? rs_->pending.size() - rs_->pending_pos : 0;
  std::size_t limit = context_->options.limits.max_header_bytes + kPendingSlack;
  bool pause = (rs_ && rs_->current.body_paused) || held > limit;
  if (!reading_paused_ && pause) {
    reading_paused_ = true;
    stream_->pause_reading();
  } else if (reading_paused_ && !pause) {
    reading_paused_ = false;
    stream_->resume_reading();
  }
}

std::size_t HTTP1Connection::process(std::string_view data) {
  std::size_t used = 0;
  while (used < data.size() && !closing_) {
    if (state().current.message_complete) {
      // The previous request is still being answered: the rest waits (see on_data).
      return used;
    }
    FeedResult r;
    try {
      r = state().parser.feed(data.substr(used));
    } catch (...) {
      // A delegate (start_request, data_received, finish) threw through the parser.
      on_delegate_exception(std::current_exception());
      return data.size();
    }
    used += std::min(r.consumed, data.size() - used);
    switch (r.status) {
      case FeedStatus::kNeedMore:
        return data.size();
      case FeedStatus::kPaused:
      case FeedStatus::kUpgrade:
        if (state().current.upgrade_finish_due) {
          // Now that the parser stopped, the bytes after the request are known: a handler
          // that detaches from finish() takes them with the stream.
          finish_upgrade_request(data.substr(used));
          if (detached_) return data.size();
        }
        // on_message_complete ran; if the handler answered synchronously the response
        // is already finished and message_complete was cleared.
        if (!state().current.message_complete && !closing_) state().parser.resume();
        break;
      case FeedStatus::kError:
        send_error(state().parser.error_status(), state().parser.error_reason());
        return data.size();
    }
  }
  return used;
}

HeadersAction HTTP1Connection::on_headers(RequestStartLine&& start_line, HTTPHeaders&& headers,
                                          const RequestInfo& info) {
  auto req = make_server_request();
  req->method = std::move(start_line.method);
  req->uri = std::move(start_line.target);
  bool http10 = start_line.version_minor == 0;
  req->version = http10 ? "HTTP/1.0" : "HTTP/1.1";
  req->headers = std::move(headers);
  req->protocol = context_->options.protocol;
  req->remote_ip = remote_ip_;
  req->remote_port = remote_port_;
  req->start_time = Clock::now();
  if (!req->parse_target()) {
    // llhttp refuses such targets already; this keeps a bad one from reaching routing.
    send_error(400, "invalid request target");
    return HeadersAction::kDeclineUpgrade;
  }
  if (context_->options.xheaders) apply_xheaders(*req);

  ++seq_;
  RequestState& st = state();
  // Whatever the last request left is gone with it: the per-request state starts anew.
  st.current = RequestState::Current{};
  st.current.request = req;
  st.current.has_body = info.has_body();
  st.current.upgrade = info.upgrade;
  st.writer.start(http10, req->method == "HEAD");
  request_active_ = true;
  request_aborted_ = false;
  keep_alive_ = keep_alive_ && info.keep_alive && !close_when_idle_;
  req->connection = std::allocate_shared<HTTP1Stream>(detail::PoolAllocator<HTTP1Stream>(),
                                                      shared_from_this(), seq_);

  if (state().current.has_body) {
    phase_ = Phase::body;
    arm(context_->body_timeouts);
  } else {
    phase_ = Phase::handling;
    read_timeout_.disarm();
  }

  HTTPServerDelegate* delegate = context_->delegate;
  if (!delegate) {
    keep_alive_ = false;
    return HeadersAction::kDeclineUpgrade;
  }
  if (info.upgrade && context_->h2c_upgrade && !close_when_idle_) {
    if (auto settings = h2c_upgrade_settings(*req, state().current.has_body)) {
      state().current.message =
          detail::make_h2c_upgrade_message(req, std::move(*settings), context_);
      return HeadersAction::kContinue;
    }
  }
  // Exceptions propagate through the parser to process(), which answers 500.
  RequestStart start = delegate->start_request(req);
  if (!request_active_ || closing_) {
    // Answered (or the connection failed) from inside start_request.
    return HeadersAction::kDeclineUpgrade;
  }
  state().current.message = std::move(start.delegate);
  state().current.stream_body = start.stream_body;
  if (start.max_body_size) state().parser.set_max_body_bytes(*start.max_body_size);
  std::uint64_t limit = state().parser.max_body_bytes();
  if (info.expect_continue && state().current.has_body && !state().writer.head_written() &&
      !(limit && info.content_length && *info.content_length > limit)) {
    // The client waits for this before sending the body. A body over the limit gets
    // the parser's 413 instead, and the client never has to send it.
    HTTP1ResponseWriter::write_continue(state().out);
  }
  // Upgrades (WebSocket, CONNECT) are taken over by the handlers that support them
  // (detach); the parser stops after the request so that what follows stays unparsed.
  // A handler that answers normally declines it (RFC 9110 7.8), and parsing resumes.
  return info.upgrade ? HeadersAction::kContinue : HeadersAction::kDeclineUpgrade;
}

void HTTP1Connection::on_body(std::string_view chunk) {
  if (!request_active_) return;  // answered early: the rest of the body is dropped
  if (state().current.stream_body) {
    if (state().current.body_paused || !state().current.held_body.empty()) {
      // Paused by the handler: what this read still brought waits (at most one read,
      // since the stream reads no more).
      state().current.held_body.append(chunk);
    } else if (state().current.message) {
      DelegateCall call(*this);
      state().current.message->data_received(chunk);
    }
  } else if (state().current.request) {
    state().current.request->body.append(chunk);
  }
}

void HTTP1Connection::on_message_complete() {
  // A request answered (or aborted) before its end arrived needs nothing more; parsing
  // goes on (or the connection is closing).
  if (!request_active_) return;
  state().current.message_complete = true;
  if (phase_ == Phase::body) {
    phase_ = Phase::handling;
    read_timeout_.disarm();
  }
  if (state().current.message &&
      (state().current.body_paused || !state().current.held_body.empty())) {
    state().current.finish_held = true;  // delivered after the held body, on resume
    return;
  }
  if (state().current.message && state().current.upgrade) {
    state().current.upgrade_finish_due = true;  // process() calls finish once feed() returned
    return;
  }
  if (state().current.message) {
    DelegateCall call(*this);
    // Exceptions propagate through the parser to process(), which answers 500.
    state().current.message->finish();
  } else if (!state().writer.head_written()) {
    send_error(503, "server is shutting down");
  }
}

void HTTP1Connection::finish_upgrade_request(std::string_view rest) {
  state().current.upgrade_finish_due = false;
  if (!request_active_ || !state().current.message) return;
  DelegateCall call(*this, rest);
  try {
    state().current.message->finish();
  } catch (...) {
    on_delegate_exception(std::current_exception());
  }
}

void HTTP1Connection::deliver_held_body() {
  if (closing_ || !request_active_) return;
  RequestState::Current& cur = state().current;
  if (!cur.message || cur.body_paused) return;
  {
    DelegateCall call(*this);
    try {
      if (!cur.held_body.empty()) {
        std::string held = std::move(cur.held_body);
        cur.held_body.clear();
        cur.message->data_received(held);
      }
      if (cur.finish_held && !cur.body_paused && cur.held_body.empty() && request_active_ &&
          cur.message) {
        cur.finish_held = false;
        cur.message->finish();
      }
    } catch (...) {
      on_delegate_exception(std::current_exception());
    }
  }
  // Answered from inside: the state could not go back while the call ran.
  release_idle_state();
}

std::pair<std::string, int> HTTP1Connection::local_address() const {
  return stream_->local_address();
}

void HTTP1Connection::pause_body(std::uint64_t seq) {
  if (seq != seq_ || !request_active_ || closing_ || state().current.body_paused) return;
  state().current.body_paused = true;
  if (phase_ == Phase::body) read_timeout_.disarm();
  update_read_pause();
}

void HTTP1Connection::resume_body(std::uint64_t seq) {
  if (seq != seq_ || !rs_ || !rs_->current.body_paused) return;
  state().current.body_paused = false;
  if (closing_ || !request_active_) return;
  if (phase_ == Phase::body) arm(context_->body_timeouts);
  update_read_pause();
  if (!state().current.held_body.empty() || state().current.finish_held) {
    // From the loop: resume_reading is often called from inside the handler's own code.
    stream_->loop().add_callback([self = shared_from_this()] { self->deliver_held_body(); });
  }
}

DetachedConnection HTTP1Connection::detach(std::uint64_t seq) {
  if (seq != seq_ || !request_active_ || closing_) {
    throw std::logic_error("detach: the request is no longer active");
  }
  if (!state().current.message_complete)
    throw std::logic_error("detach before the request was read whole");
  if (state().writer.head_written() && !state().writer.switching()) {
    throw std::logic_error("detach after a response other than 101 began");
  }
  DetachedConnection result;
  result.stream = stream_;
  if (state().in_upgrade_finish) {
    result.leftover.assign(state().upgrade_rest);
  } else if (has_pending()) {
    result.leftover.assign(rs_->pending, rs_->pending_pos);
  }
  flush();  // the 101 head goes out ahead of anything the new owner writes
  // The stream's close callback holds the last reference but one to us (the response
  // channel the caller used holds another); keep us until the loop comes round, since
  // callers up the stack (on_data, process) still run on this object. Then the request
  // state (parser, response buffer) goes back to the pool: no more HTTP/1 is read or
  // written here, while the request and with it this connection may live on as long as
  // the new protocol (a WebSocket handler holds its request until the socket closes).
  stream_->loop().add_callback([self = shared_from_this()] {
    if (!self->in_delegate_ && !self->dispatching_) self->rs_.reset();
  });
  detached_ = true;
  closing_ = true;
  request_active_ = false;
  state().current.message_complete = false;
  read_timeout_.disarm();
  write_timeout_.disarm();
  context_->connections.erase(this);
  if (in_delegate_) {
    state().retired_message = std::move(state().current.message);
  } else {
    state().current.message.reset();
  }
  state().current.request.reset();
  state().current.close_callback = nullptr;
  drop_pending();
  std::string().swap(state().out);
  std::string().swap(state().current.held_body);
  if (reading_paused_) {
    reading_paused_ = false;
    stream_->resume_reading();
  }
  // Back to buffered mode: the socket is not read until the new owner reads or sets its
  // own handler.
  stream_->set_data_handler(nullptr);
  stream_->set_eof_handler(nullptr);
  stream_->set_close_callback(nullptr);
  self_.reset();  // not the last reference: the callback queued above holds one
  return result;
}

void HTTP1Connection::write_switching_head(const HTTPHeaders& headers) {
  state().writer.write_switching_head(state().out, headers);
  keep_alive_ = false;  // whatever happens next, this connection carries no more HTTP/1
  schedule_flush();
}

void HTTP1Connection::on_delegate_exception(std::exception_ptr e) {
  std::string what = "unknown exception";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    what = ex.what();
  } catch (...) {
  }
  log::error("http", "uncaught exception in request handler: " + what);
  // The parser stopped at the exception: this connection reads no further request.
  if (request_active_ && !state().writer.head_written()) {
    send_error(500, "internal server error");
  } else {
    if (request_active_) abort_request();
    keep_alive_ = false;
    close_after_flush(false);
  }
}

void HTTP1Connection::apply_xheaders(HTTPServerRequest& req) {
  // Behind a proxy we run: the client's address is X-Real-IP, or the last
  // X-Forwarded-For hop (the one our proxy added); only a valid address replaces the
  // peer's, as Tornado does.
  std::optional<std::string_view> ip = req.headers.get("X-Real-IP");
  std::optional<std::string> xff;
  if (!ip) {
    xff = req.headers.get_joined("X-Forwarded-For");
    if (xff) ip = last_element(*xff);
  } else {
    ip = detail::trim_ows(*ip);
  }
  if (ip && is_valid_ip(*ip)) req.remote_ip.assign(*ip);
  auto proto = req.headers.get("X-Forwarded-Proto");
  if (!proto) proto = req.headers.get("X-Scheme");
  if (proto) {
    std::string_view p = last_element(*proto);
    if (p == "http" || p == "https") req.protocol.assign(p);
  }
}

void HTTP1Connection::write_headers(std::uint64_t seq, int status, const HTTPHeaders& headers,
                                    std::optional<std::string_view> reason) {
  write_head_fields(seq, status, headers, reason);
}

void HTTP1Connection::write_head(std::uint64_t seq, int status, std::span<const HeaderRef> fields) {
  write_head_fields(seq, status, fields, std::nullopt);
}

template <typename Fields>
void HTTP1Connection::write_head_fields(std::uint64_t seq, int status, const Fields& headers,
                                        std::optional<std::string_view> reason) {
  if (seq != seq_ || !request_active_ || closing_) return;
  if (state().writer.head_written()) throw std::logic_error("write_headers called twice");
  if (status == 101 && state().current.upgrade && !state().writer.http10()) {
    if constexpr (std::is_same_v<Fields, HTTPHeaders>) {
      write_switching_head(headers);
    } else {
      HTTPHeaders copy;
      for (const auto& f : headers) copy.add(f.name, f.value);
      write_switching_head(copy);
    }
    return;
  }
  state().writer.write_head(state().out, status, headers, reason, context_->options.server_name,
                            keep_alive_,
                            !state().current.message_complete && state().current.has_body);
  schedule_flush();
}

void HTTP1Connection::write_body(std::uint64_t seq, std::string_view chunk) {
  if (seq != seq_ || !request_active_ || closing_ || chunk.empty()) return;
  if (!state().writer.head_written()) throw std::logic_error("write before write_headers");
  if (state().writer.no_body()) return;
  std::uint64_t allowed = state().writer.begin_body_piece(state().out, chunk.size());
  if (allowed < chunk.size()) {
    log::error("http", "response body longer than its Content-Length; closing");
    keep_alive_ = false;
    chunk = chunk.substr(0, allowed);
    if (chunk.empty()) return;
  }
  std::string_view end = state().writer.body_piece_end();
  if (chunk.size() >= kDirectWrite) {
    // Big pieces go to the stream as they are: one copy fewer.
    std::string_view pieces[3] = {state().out, chunk, end};
    write_raw(pieces, end.empty() ? 2 : 3);
    state().out.clear();
    return;
  }
  state().out.append(chunk);
  state().out.append(end);
  if (state().out.size() >= kFlushThreshold) {
    flush();
  } else {
    schedule_flush();
  }
}

void HTTP1Connection::finish_response(std::uint64_t seq) {
  if (seq != seq_ || !request_active_ || closing_) return;
  if (!state().writer.head_written()) {
    HTTPHeaders h;
    h.add("Content-Length", "0");
    write_headers(seq, 200, h);
  }
  if (!state().writer.finish(state().out)) {
    log::error("http", "response body shorter than its Content-Length; closing");
    keep_alive_ = false;
  }
  if (state().current.request) state().current.request->mark_finished();
  on_request_done();
}

void HTTP1Connection::abort_response(std::uint64_t seq) {
  if (seq != seq_ || !request_active_ || closing_) return;
  if (!state().writer.head_written()) {
    HTTPHeaders h;
    h.add("Content-Length", "0");
    write_headers(seq, 502, h);
  }
  // No last chunk, and a Content-Length left short: the close is what tells the client
  // the body is incomplete.
  keep_alive_ = false;
  if (state().current.request) state().current.request->mark_finished();
  on_request_done();
}

void HTTP1Connection::write_response(std::uint64_t seq, int status, const HTTPHeaders& headers,
                                     std::string_view body,
                                     std::optional<std::string_view> reason) {
  write_response_fields(seq, status, headers, body, reason);
}

void HTTP1Connection::write_whole_response(std::uint64_t seq, int status,
                                           std::span<const HeaderRef> fields,
                                           std::string_view body) {
  write_response_fields(seq, status, fields, body, std::nullopt);
}

template <typename Fields>
void HTTP1Connection::write_response_fields(std::uint64_t seq, int status, const Fields& headers,
                                            std::string_view body,
                                            std::optional<std::string_view> reason) {
  if (seq != seq_ || !request_active_ || closing_) return;
  // Headers and body are flushed together by finish(), with no flush scheduled between.
  bool saved = defer_flush_;
  defer_flush_ = true;
  struct Restore {  // defer_flush_ is a bit-field: no reference to it
    HTTP1Connection& conn;
    bool value;
    ~Restore() { conn.defer_flush_ = value; }
  } restore{*this, saved};
  write_head_fields(seq, status, headers, reason);
  write_body(seq, body);
  defer_flush_ = saved;
  finish_response(seq);
}

void HTTP1Connection::write_file(std::uint64_t seq, FileRegion region) {
  if (seq != seq_ || !request_active_ || closing_ || region.length == 0) return;
  if (!state().writer.head_written()) throw std::logic_error("write before write_headers");
  if (state().writer.no_body()) return;
  std::uint64_t allowed = state().writer.begin_body_piece(state().out, region.length);
  if (allowed < region.length) {
    log::error("http", "response body longer than its Content-Length; closing");
    keep_alive_ = false;
    region.length = allowed;
    if (region.length == 0) return;
  }
  // What precedes the region (the head) goes to the stream first; the stream keeps
  // later writes behind the region.
  // Corked, the head and the file's first bytes share segments, and the file leaves in
  // full segments pushed by this sendfile, on this thread (nginx's tcp_nopush). On
  // loopback this moves the transmit work off the peer's core.
  stream_->set_cork(true);
  flush();
  bytes_handed_ += region.length;
  stream_->write_file(std::move(region));
  stream_->set_cork(false);
  if (std::string_view end = state().writer.body_piece_end(); !end.empty()) {
    state().out.append(end);
    schedule_flush();
  }
  watch_writes();
}

void HTTP1Connection::on_request_done() {
  request_active_ = false;
  if (state().writer.switching())
    keep_alive_ = false;  // a 101 without detach(): nothing sane can follow
  state().current.upgrade = state().current.upgrade_finish_due = false;
  if (state().current.body_paused || !state().current.held_body.empty()) {
    state().current.body_paused = state().current.finish_held = false;
    std::string().swap(state().current.held_body);
    update_read_pause();
  }
  // A delegate whose own method is running (it answered from finish() or data_received())
  // is freed once that method returned.
  if (in_delegate_) {
    state().retired_message = std::move(state().current.message);
  } else {
    state().current.message.reset();
  }
  state().current.request.reset();
  state().current.close_callback = nullptr;
  if (!keep_alive_) {
    // A body still (or maybe still) on its way: linger so the client sees the response.
    close_after_flush(!state().current.message_complete && state().current.has_body);
    return;
  }
  phase_ = Phase::idle;
  arm(context_->idle_timeouts);
  bool was_complete = state().current.message_complete;
  state().current.message_complete = false;
  // While dispatching, process() resumes the parser and goes on with pipelined input,
  // and on_data flushes at its end.
  if (dispatching_) return;
  flush();
  if (was_complete) state().parser.resume();
  if (has_pending()) {
    // Pipelined requests read while this one was answered: go on with them from the
    // loop, not from inside the handler's finish() call.
    stream_->loop().add_callback([self = shared_from_this()] {
      if (self->closing_ || self->request_active_ || self->dispatching_) return;
      self->on_data(std::string_view());
    });
  }
  release_idle_state();
}

void HTTP1Connection::abort_request() {
  request_active_ = false;
  request_aborted_ = true;
  auto msg = std::move(state().current.message);
  auto cb = std::move(state().current.close_callback);
  state().current.close_callback = nullptr;
  state().current.request.reset();
  if (msg) IOLoop::invoke_logged("on_connection_close", [&] { msg->on_connection_close(); });
  if (cb) IOLoop::invoke_logged("request close callback", cb);
  if (in_delegate_ && msg) state().retired_message = std::move(msg);
}

void HTTP1Connection::send_error(int status, std::string_view reason) {
  if (closing_) return;
  // A response that has begun cannot be replaced by an error: the close tells.
  bool can_answer = !(request_active_ && state().writer.head_written());
  if (request_active_) abort_request();
  if (can_answer) {
    HTTP1ResponseWriter::write_error(state().out, status, reason, context_->options.server_name);
  }
  keep_alive_ = false;
  close_after_flush(true);
}

void HTTP1Connection::schedule_flush() {
  // Coalesce the headers and body pieces a handler writes in one loop iteration into
  // one system call. Inside on_data and write_response the flush comes anyway.
  if (flush_scheduled_ || dispatching_ || defer_flush_) return;
  flush_scheduled_ = true;
  stream_->loop().add_callback([self = shared_from_this()] {
    self->flush_scheduled_ = false;
    self->flush();
    self->release_idle_state();
  });
}

void HTTP1Connection::flush() {
  if (!rs_ || rs_->out.empty() || closing_) return;
  std::string& out = rs_->out;
  std::string_view piece(out);
  write_raw(&piece, 1);
  if (out.capacity() > kFlushThreshold * 2) {
    std::string().swap(out);
  } else {
    out.clear();
  }
}

void HTTP1Connection::write_raw(const std::string_view* pieces, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) bytes_handed_ += pieces[i].size();
  stream_->write_pieces(pieces, count);
  watch_writes();
}

void HTTP1Connection::watch_writes() {
  // Most responses leave at once (uv_try_write); only what the kernel did not take is
  // watched, and the watch checks progress when it fires rather than on every write.
  std::size_t queued = stream_->write_buffer_size();
  if (queued == 0 || write_timeout_.armed()) return;
  if (context_->write_timeouts.duration() <= Duration::zero()) return;
  mark_write_progress();
  context_->write_timeouts.arm(write_timeout_);
}

void HTTP1Connection::close_after_flush(bool linger) {
  flush();
  if (closing_) return;
  closing_ = true;
  keep_alive_ = false;
  read_timeout_.disarm();
  if (stream_->closed()) return;
  if (!linger) {
    if (stream_->write_buffer_size() == 0) {
      stream_->close();
    } else {
      // Close once the queued response has left; the write timeout watches that.
      stream_->write_pieces(nullptr, 0, [self = shared_from_this()] { self->stream_->close(); });
    }
    return;
  }
  // Lingering close: the client may still be sending (a body we refused, pipelined
  // requests). Closing with unread input would make the kernel reset the connection,
  // and a reset can destroy the response before the client read it. So send FIN after
  // the response, then read and drop what arrives until the client closes or the linger
  // time is up.
  phase_ = Phase::lingering;
  arm(context_->linger_timeouts);
  if (!read_timeout_.armed()) {
    // Lingering disabled: close as above.
    closing_ = false;
    close_after_flush(false);
    return;
  }
  drop_pending();
  if (reading_paused_) {
    reading_paused_ = false;
    stream_->resume_reading();
  }
  // FIN after the response (over TLS, close_notify first): the client sees the end of
  // the response while we go on reading.
  stream_->shutdown_write();
}

Future<void> HTTP1Connection::drain(std::uint64_t seq) {
  if (seq == seq_ && !request_aborted_ && !closing_) {
    flush();
    return stream_->drain();
  }
  Promise<void> p;
  p.set_exception(std::make_exception_ptr(StreamClosedError(stream_->error())));
  return p.get_future();
}

bool HTTP1Connection::response_closed(std::uint64_t seq) const {
  return seq != seq_ || request_aborted_ || closing_ || stream_->closed();
}

void HTTP1Connection::set_close_callback(std::uint64_t seq, std::function<void()> cb) {
  if (seq != seq_) return;
  if (request_active_) {
    state().current.close_callback = std::move(cb);
  } else if (request_aborted_ && cb) {
    // The connection went away before the handler asked: tell it soon, not never.
    stream_->loop().add_callback(std::move(cb));
  }
}

void HTTP1Connection::on_stream_closed() {
  // Our own reference goes when this returns; the last one may go with it.
  std::shared_ptr<HTTP1Connection> keep = std::move(self_);
  closing_ = true;
  read_timeout_.disarm();
  write_timeout_.disarm();
  context_->connections.erase(this);
  if (request_active_) abort_request();
  drop_pending();
  if (!rs_) return;
  if (!in_delegate_ && !dispatching_) {
    rs_.reset();  // nothing runs on it any more: back to the pool
    return;
  }
  rs_->current.request.reset();
  rs_->current.message.reset();
  std::string().swap(rs_->out);
}

}  // namespace tronada
