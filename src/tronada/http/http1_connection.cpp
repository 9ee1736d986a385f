#include "tronada/http/http1_connection.h"

#include <charconv>
#include <stdexcept>

#include "tronada/base/log.h"
#include "tronada/http/http_date.h"
#include "tronada/http/http_status.h"

namespace tronada {

namespace detail {

HTTP1ServerContext::HTTP1ServerContext(IOLoop& loop, HTTPServerOptions opts,
                                       HTTPServerDelegate* d)
    : options(std::move(opts)),
      delegate(d),
      idle_timeouts(loop, options.idle_timeout),
      header_timeouts(loop, options.header_timeout),
      body_timeouts(loop, options.body_timeout),
      write_timeouts(loop, options.write_timeout) {}

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
  void write(std::string_view chunk) override { conn_->write_body(seq_, chunk); }
  void finish() override { conn_->finish_response(seq_); }
  Future<void> drain() override { return conn_->drain(seq_); }
  bool closed() const override { return conn_->response_closed(seq_); }
  void set_close_callback(std::function<void()> cb) override {
    conn_->set_close_callback(seq_, std::move(cb));
  }

 private:
  std::shared_ptr<HTTP1Connection> conn_;
  std::uint64_t seq_;
};

void append_number(std::string& out, std::uint64_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, end);
}

void append_hex(std::string& out, std::uint64_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n, 16);
  out.append(buf, end);
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

constexpr std::size_t kFlushThreshold = 64 * 1024;

}  // namespace

HTTP1Connection::HTTP1Connection(std::shared_ptr<IOStream> stream,
                                 std::shared_ptr<detail::HTTP1ServerContext> context)
    : stream_(std::move(stream)),
      context_(std::move(context)),
      parser_(*this, context_->options.limits),
      timeout_(&HTTP1Connection::on_timeout, this) {}

HTTP1Connection::~HTTP1Connection() { context_->connections.erase(this); }

void HTTP1Connection::start() {
  context_->connections.insert(this);
  keep_alive_ = context_->options.keep_alive;
  // The stream keeps us alive through its handlers until it closes; on close it drops
  // them, which breaks the cycle.
  auto self = shared_from_this();
  stream_->set_close_callback([self] { self->on_stream_closed(); });
  stream_->set_data_handler([this](std::string_view data) { on_data(data); });
  context_->idle_timeouts.arm(timeout_);
}

void HTTP1Connection::close() {
  closing_ = true;
  timeout_.disarm();
  if (!stream_->closed()) stream_->close();
}

void HTTP1Connection::close_when_idle() {
  close_when_idle_ = true;
  keep_alive_ = false;
  if (!request_active_ && !parser_.in_message()) close_after_flush();
}

void HTTP1Connection::on_timeout(void* p) {
  auto* self = static_cast<HTTP1Connection*>(p);
  switch (self->phase_) {
    case Phase::idle:
      self->close();
      break;
    case Phase::headers:
      // Slow or stuck header section (a slowloris client): 408 as nginx logs it.
      log::info("http", "header timeout from " + self->stream_->peer_ip());
      self->send_error(408, "request header timeout");
      break;
    case Phase::body:
      log::info("http", "body timeout from " + self->stream_->peer_ip());
      if (!self->headers_written_) {
        self->send_error(408, "request body timeout");
      } else {
        self->close();
      }
      break;
    case Phase::handling: {
      // Write timeout: close only if the client took nothing since we armed it.
      std::size_t queued = self->stream_->write_buffer_size();
      if (queued == 0) break;
      if (queued < self->write_timeout_queued_) {
        self->write_timeout_queued_ = queued;
        self->context_->write_timeouts.arm(self->timeout_);
      } else {
        log::info("http", "write timeout to " + self->stream_->peer_ip());
        self->close();
      }
      break;
    }
  }
}

void HTTP1Connection::on_data(std::string_view data) {
  if (closing_) return;
  auto self = shared_from_this();  // a handler may close us while we dispatch
  if (phase_ == Phase::idle) {
    phase_ = Phase::headers;
    context_->header_timeouts.arm(timeout_);
  } else if (phase_ == Phase::body) {
    context_->body_timeouts.arm(timeout_);
  }
  dispatching_ = true;
  if (!pending_.empty()) {
    std::string input = std::move(pending_);
    pending_.clear();
    input.append(data);
    process(input);
  } else {
    process(data);
  }
  dispatching_ = false;
  flush();
}

void HTTP1Connection::process(std::string_view data) {
  while (!data.empty() && !closing_) {
    if (message_complete_) {
      // The previous request is still being answered: hold the pipelined bytes and
      // stop reading until it is done (backpressure against pipelining floods).
      pending_.append(data);
      if (pending_.size() > context_->options.limits.max_header_bytes + 65536) {
        stream_->pause_reading();
      }
      return;
    }
    FeedResult r = parser_.feed(data);
    data.remove_prefix(std::min(r.consumed, data.size()));
    switch (r.status) {
      case FeedStatus::kNeedMore:
        return;
      case FeedStatus::kPaused:
      case FeedStatus::kUpgrade:
        // on_message_complete ran; if the handler answered synchronously the
        // response is already finished and message_complete_ was cleared.
        if (!message_complete_) parser_.resume();
        break;
      case FeedStatus::kError:
        send_error(parser_.error_status(), parser_.error_reason());
        return;
    }
  }
}

HeadersAction HTTP1Connection::on_headers(RequestStartLine&& start_line, HTTPHeaders&& headers,
                                          const RequestInfo& info) {
  auto req = std::make_shared<HTTPServerRequest>();
  req->method = std::move(start_line.method);
  req->uri = std::move(start_line.target);
  http10_ = start_line.version_minor == 0;
  req->version = http10_ ? "HTTP/1.0" : "HTTP/1.1";
  req->headers = std::move(headers);
  req->protocol = context_->options.protocol;
  req->remote_ip = stream_->peer_ip();
  req->start_time = Clock::now();
  req->parse_target();
  if (context_->options.xheaders) apply_xheaders(*req);

  ++seq_;
  request_ = req;
  request_active_ = true;
  message_complete_ = false;
  headers_written_ = false;
  chunked_ = fixed_length_ = no_body_ = false;
  head_request_ = req->method == "HEAD";
  keep_alive_ = keep_alive_ && info.keep_alive && !close_when_idle_;
  req->connection = std::make_shared<HTTP1Stream>(shared_from_this(), seq_);

  phase_ = info.has_body() ? Phase::body : Phase::handling;
  if (phase_ == Phase::body) {
    context_->body_timeouts.arm(timeout_);
  } else {
    timeout_.disarm();
  }

  HTTPServerDelegate* delegate = context_->delegate;
  if (!delegate) {
    keep_alive_ = false;
    return HeadersAction::kDeclineUpgrade;
  }
  RequestStart start = delegate->start_request(req);
  message_ = std::move(start.delegate);
  stream_body_ = start.stream_body;
  if (start.max_body_size) parser_.set_max_body_bytes(*start.max_body_size);
  std::uint64_t limit = parser_.max_body_bytes();
  if (info.expect_continue && !headers_written_ &&
      !(limit && info.content_length && *info.content_length > limit)) {
    // The client waits for this before sending the body. A body over the limit gets
    // the parser's 413 instead, and the client never has to send it.
    out_.append("HTTP/1.1 100 Continue\r\n\r\n");
    if (!dispatching_) flush();
  }
  // Upgrades (WebSocket, h2c) are taken over by the handlers that support them; a
  // plain server answers them as ordinary requests (RFC 9110 7.8 allows ignoring it).
  return HeadersAction::kDeclineUpgrade;
}

void HTTP1Connection::on_body(std::string_view chunk) {
  if (!request_) return;
  if (stream_body_) {
    if (message_) message_->data_received(chunk);
  } else {
    request_->body.append(chunk);
  }
}

void HTTP1Connection::on_message_complete() {
  message_complete_ = true;
  if (phase_ == Phase::body) {
    phase_ = Phase::handling;
    timeout_.disarm();
  }
  if (message_) {
    auto msg = message_.get();
    IOLoop::invoke_logged("request handler", [msg] { msg->finish(); });
  } else if (request_active_ && !headers_written_) {
    send_error(503, "server is shutting down");
  }
}

void HTTP1Connection::apply_xheaders(HTTPServerRequest& req) {
  // Behind a proxy we run: the client's address is the last X-Forwarded-For hop (the
  // one our proxy added), or X-Real-IP.
  if (auto real_ip = req.headers.get("X-Real-IP")) {
    req.remote_ip.assign(*real_ip);
  } else if (auto xff = req.headers.get_joined("X-Forwarded-For")) {
    std::string_view list = *xff;
    auto comma = list.rfind(',');
    std::string_view last = comma == std::string_view::npos ? list : list.substr(comma + 1);
    while (!last.empty() && last.front() == ' ') last.remove_prefix(1);
    while (!last.empty() && last.back() == ' ') last.remove_suffix(1);
    if (!last.empty()) req.remote_ip.assign(last);
  }
  auto proto = req.headers.get("X-Forwarded-Proto");
  if (!proto) proto = req.headers.get("X-Scheme");
  if (proto && (*proto == "http" || *proto == "https")) req.protocol.assign(*proto);
}

void HTTP1Connection::write_headers(std::uint64_t seq, int status, const HTTPHeaders& headers) {
  if (seq != seq_ || !request_active_ || closing_) return;
  if (headers_written_) throw std::logic_error("write_headers called twice");
  for (const auto& f : headers) {
    if (!is_valid_header_name(f.name) || !is_valid_header_value(f.value)) {
      throw std::invalid_argument("invalid response header field: " + f.name);
    }
  }
  headers_written_ = true;
  no_body_ = head_request_ || status == 204 || status == 304 || (status >= 100 && status < 200);
  std::optional<std::string_view> content_length = headers.get("Content-Length");
  bool has_te = headers.contains("Transfer-Encoding");
  if (content_length) {
    fixed_length_ = true;
    std::uint64_t n = 0;
    auto cl = *content_length;
    auto [p, ec] = std::from_chars(cl.data(), cl.data() + cl.size(), n);
    if (ec != std::errc() || p != cl.data() + cl.size()) {
      throw std::invalid_argument("invalid Content-Length in response");
    }
    body_remaining_ = head_request_ ? 0 : n;
  } else if (!no_body_ && !has_te) {
    if (http10_) {
      keep_alive_ = false;  // HTTP/1.0 without a length: the close ends the body
    } else {
      chunked_ = true;
    }
  }
  if (!message_complete_) {
    // Answering before the request body arrived (an error, usually): the rest of the
    // body would have to be read and discarded; closing is simpler and safe.
    keep_alive_ = false;
  }

  out_.append(http10_ ? "HTTP/1.0 " : "HTTP/1.1 ");
  append_number(out_, static_cast<std::uint64_t>(status));
  out_ += ' ';
  out_.append(http_reason(status));
  out_.append("\r\n");
  bool has_date = false, has_server = false, has_connection = false;
  for (const auto& f : headers) {
    if (iequals(f.name, "Date")) has_date = true;
    if (iequals(f.name, "Server")) has_server = true;
    if (iequals(f.name, "Connection")) {
      has_connection = true;
      if (iequals(f.value, "close")) keep_alive_ = false;
    }
    out_.append(f.name);
    out_.append(": ");
    out_.append(f.value);
    out_.append("\r\n");
  }
  if (!has_date) {
    out_.append("Date: ");
    out_.append(http_date_now());
    out_.append("\r\n");
  }
  if (!has_server && !context_->options.server_name.empty()) {
    out_.append("Server: ");
    out_.append(context_->options.server_name);
    out_.append("\r\n");
  }
  if (chunked_) out_.append("Transfer-Encoding: chunked\r\n");
  if (!has_connection) {
    if (!keep_alive_) {
      out_.append("Connection: close\r\n");
    } else if (http10_) {
      out_.append("Connection: keep-alive\r\n");
    }
  }
  out_.append("\r\n");
  if (!dispatching_) schedule_flush();
}

void HTTP1Connection::write_body(std::uint64_t seq, std::string_view chunk) {
  if (seq != seq_ || !request_active_ || closing_ || chunk.empty()) return;
  if (!headers_written_) throw std::logic_error("write before write_headers");
  if (no_body_) return;
  if (chunked_) {
    append_hex(out_, chunk.size());
    out_.append("\r\n");
    out_.append(chunk);
    out_.append("\r\n");
  } else {
    if (fixed_length_) {
      if (chunk.size() > body_remaining_) {
        log::error("http", "response body longer than its Content-Length; closing");
        keep_alive_ = false;
        chunk = chunk.substr(0, body_remaining_);
      }
      body_remaining_ -= chunk.size();
    }
    out_.append(chunk);
  }
  if (out_.size() >= kFlushThreshold) {
    flush();
  } else if (!dispatching_) {
    schedule_flush();
  }
}

void HTTP1Connection::finish_response(std::uint64_t seq) {
  if (seq != seq_ || !request_active_) return;
  if (closing_) return;
  if (!headers_written_) {
    HTTPHeaders h;
    h.add("Content-Length", "0");
    write_headers(seq, 200, h);
  }
  if (chunked_) out_.append("0\r\n\r\n");
  if (fixed_length_ && body_remaining_ > 0) {
    log::error("http", "response body shorter than its Content-Length; closing");
    keep_alive_ = false;
  }
  request_->mark_finished();
  if (!message_complete_) {
    // The request body is still arriving: finish it off by closing after the response.
    keep_alive_ = false;
  }
  on_request_done();
}

void HTTP1Connection::on_request_done() {
  request_active_ = false;
  message_.reset();
  request_.reset();
  request_close_callback_ = nullptr;
  if (!keep_alive_) {
    close_after_flush();
    return;
  }
  phase_ = Phase::idle;
  context_->idle_timeouts.arm(timeout_);
  message_complete_ = false;
  // While dispatching, process() resumes the parser and goes on with pipelined input.
  if (dispatching_) return;
  flush();
  parser_.resume();
  stream_->resume_reading();
  if (!pending_.empty()) {
    // Pipelined requests read while this one was answered: go on with them from the
    // loop, not from inside the handler's finish() call.
    stream_->loop().add_callback([self = shared_from_this()] {
      if (self->closing_ || self->request_active_ || self->pending_.empty()) return;
      self->on_data(std::string_view());
    });
  }
}

void HTTP1Connection::send_error(int status, std::string_view reason) {
  if (closing_) return;
  if (request_active_ && message_) {
    auto msg = std::move(message_);
    IOLoop::invoke_logged("on_connection_close", [&] { msg->on_connection_close(); });
  }
  if (!headers_written_ || !request_active_) {
    std::string body(reason);
    body += '\n';
    out_.append("HTTP/1.1 ");
    append_number(out_, static_cast<std::uint64_t>(status));
    out_ += ' ';
    out_.append(http_reason(status));
    out_.append("\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ");
    append_number(out_, body.size());
    out_.append("\r\nConnection: close\r\nDate: ");
    out_.append(http_date_now());
    out_.append("\r\n\r\n");
    out_.append(body);
  }
  request_active_ = false;
  request_.reset();
  keep_alive_ = false;
  close_after_flush();
}

void HTTP1Connection::schedule_flush() {
  // Coalesce the headers and body pieces a handler writes in one loop iteration into
  // one system call.
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  stream_->loop().add_callback([self = shared_from_this()] {
    self->flush_scheduled_ = false;
    self->flush();
  });
}

void HTTP1Connection::flush() {
  if (out_.empty() || closing_) return;
  std::string_view piece(out_);
  stream_->write_pieces(&piece, 1);
  out_.clear();
  if (out_.capacity() > kFlushThreshold * 2) std::string().swap(out_);
  if (request_active_ && stream_->write_buffer_size() > 0) {
    // The client is slow to read: watch that it keeps taking bytes.
    phase_ = Phase::handling;
    write_timeout_queued_ = stream_->write_buffer_size();
    context_->write_timeouts.arm(timeout_);
  }
}

void HTTP1Connection::close_after_flush() {
  flush();
  if (closing_) return;
  timeout_.disarm();
  if (stream_->write_buffer_size() == 0) {
    close();
    return;
  }
  // Give the queued response its write timeout, then close.
  phase_ = Phase::handling;
  write_timeout_queued_ = stream_->write_buffer_size();
  context_->write_timeouts.arm(timeout_);
  closing_ = true;
  stream_->write_pieces(nullptr, 0, [self = shared_from_this()] { self->stream_->close(); });
}

Future<void> HTTP1Connection::drain(std::uint64_t seq) {
  if (seq == seq_ && request_active_ && !closing_) {
    flush();
    return stream_->drain();
  }
  Promise<void> p;
  p.set_exception(std::make_exception_ptr(StreamClosedError(stream_->error())));
  return p.get_future();
}

bool HTTP1Connection::response_closed(std::uint64_t seq) const {
  return seq != seq_ || closing_ || stream_->closed();
}

void HTTP1Connection::set_close_callback(std::uint64_t seq, std::function<void()> cb) {
  if (seq == seq_ && request_active_) request_close_callback_ = std::move(cb);
}

void HTTP1Connection::on_stream_closed() {
  closing_ = true;
  timeout_.disarm();
  context_->connections.erase(this);
  if (request_active_) {
    request_active_ = false;
    if (message_) {
      auto msg = std::move(message_);
      IOLoop::invoke_logged("on_connection_close", [&] { msg->on_connection_close(); });
    }
    if (request_close_callback_) {
      auto cb = std::move(request_close_callback_);
      IOLoop::invoke_logged("request close callback", cb);
    }
  }
  request_.reset();
  message_.reset();
}

}  // namespace tronada
