#include "tronada/http/http2_session.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <new>
#include <stdexcept>
#include <tuple>

#include "tronada/async/detail/pool_allocator.h"
#include "tronada/base/log.h"
#include "tronada/http/http2_stream_state.h"

namespace tronada {

using detail::HTTP2StreamState;

namespace {

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
// Output gathered from nghttp2 before it is handed to the socket in one write.
constexpr std::size_t kWriteChunk = 64 * 1024;

// flush()'s gathering buffer; one per thread, so an idle connection holds none.
std::string& flush_buffer() {
  thread_local std::string buffer;
  return buffer;
}

// nghttp2's allocations go to the thread's pool (frame_pool.h): a request costs it about
// five (the stream, its outbound items, the copied header array, decoded field buffers),
// each malloc'd and freed in the same sizes request after request. nghttp2 frees without
// a size, so each block carries its own in front; kHeader keeps operator new's alignment.
// The pool's bounds and its sanitizer bypass apply as they do to coroutine frames.
constexpr std::size_t kHeader = __STDCPP_DEFAULT_NEW_ALIGNMENT__;

void* pool_malloc(std::size_t size, void*) {
  try {
    auto* block = static_cast<char*>(detail::allocate_frame(size + kHeader));
    std::memcpy(block, &size, sizeof size);
    return block + kHeader;
  } catch (const std::bad_alloc&) {
    return nullptr;  // nghttp2 reports NGHTTP2_ERR_NOMEM; no exception crosses into C
  }
}

void pool_free(void* p, void*) {
  if (!p) return;
  char* block = static_cast<char*>(p) - kHeader;
  std::size_t size;
  std::memcpy(&size, block, sizeof size);
  detail::free_frame(block, size + kHeader);
}

void* pool_calloc(std::size_t n, std::size_t size, void* user) {
  if (size && n > SIZE_MAX / size) return nullptr;
  void* p = pool_malloc(n * size, user);
  if (p) std::memset(p, 0, n * size);
  return p;
}

void* pool_realloc(void* p, std::size_t size, void* user) {
  if (!p) return pool_malloc(size, user);
  std::size_t old;
  std::memcpy(&old, static_cast<char*>(p) - kHeader, sizeof old);
  void* q = pool_malloc(size, user);
  if (!q) return nullptr;  // realloc's contract: the old block stays valid
  std::memcpy(q, p, std::min(old, size));
  pool_free(p, user);
  return q;
}

nghttp2_mem pool_mem{nullptr, &pool_malloc, &pool_free, &pool_calloc, &pool_realloc};

HTTP2StreamState* state_of(nghttp2_session* session, std::int32_t id) {
  return static_cast<HTTP2StreamState*>(nghttp2_session_get_stream_user_data(session, id));
}

}  // namespace

namespace detail {

void HTTP2StreamConnection::write_headers(int status, const HTTPHeaders& headers) {
  session->write_headers(state_, status, headers);
}
void HTTP2StreamConnection::write_head(int status, std::span<const HeaderRef> fields) {
  session->write_head(state_, status, fields);
}
void HTTP2StreamConnection::write_response(int status, const HTTPHeaders& headers,
                                           std::string_view body) {
  session->write_response(state_, status, headers, body);
}
void HTTP2StreamConnection::write_whole_response(int status, std::span<const HeaderRef> fields,
                                                 std::string_view body) {
  session->write_whole_response(state_, status, fields, body);
}
void HTTP2StreamConnection::write(std::string_view chunk) {
  session->write_body(state_, chunk);
}
void HTTP2StreamConnection::write_file(FileRegion region) {
  session->write_file(state_, std::move(region));
}
void HTTP2StreamConnection::finish() {
  session->finish_response(state_);
}
void HTTP2StreamConnection::abort() {
  session->abort_response(state_);
}
Future<void> HTTP2StreamConnection::drain() {
  return session->drain(state_);
}
bool HTTP2StreamConnection::closed() const {
  return state_.closed && !state_.response_done;
}
void HTTP2StreamConnection::set_close_callback(std::function<void()> cb) {
  if (state_.closed) {
    if (!state_.response_done && cb) IOLoop::current().add_callback(std::move(cb));
    return;
  }
  state_.close_callback = std::move(cb);
}
// Per stream through flow control: held bytes are not consumed, so the peer's window
// for this stream stays shut until resume.
void HTTP2StreamConnection::pause_reading() {
  session->pause_body(state_);
}
void HTTP2StreamConnection::resume_reading() {
  session->resume_body(state_);
}
std::pair<std::string, int> HTTP2StreamConnection::local_address() const {
  return session->local_address();
}

}  // namespace detail

HTTP2Session::HTTP2Session(std::shared_ptr<IOStream> stream,
                           std::shared_ptr<detail::HTTP2ServerContext> ctx)
    : stream_(std::move(stream)),
      ctx_(std::move(ctx)),
      idle_timeout_(&HTTP2Session::on_idle_timeout, this),
      write_timeout_(&HTTP2Session::on_write_timeout, this) {
  const HTTP2Options& o = ctx_->options;
  header_list_limit_ =
      o.max_header_list_size ? o.max_header_list_size : ctx_->base->options.limits.max_header_bytes;

  nghttp2_session_callbacks* cbs;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &HTTP2Session::on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &HTTP2Session::on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &HTTP2Session::on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &HTTP2Session::on_data_chunk_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &HTTP2Session::on_stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(
      cbs, [](nghttp2_session* session, const nghttp2_frame* frame, void*) {
        if ((frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) &&
            (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
          if (auto* s = state_of(session, frame->hd.stream_id)) {
            s->response_done = true;
            // nghttp2 is done with the head it pointed into (submit_headers).
            s->response_fields.clear();
            s->response_fields.shrink_to_fit();
            s->head_block.reset();
            // Answered before the request body ended: tell the peer to stop sending it
            // (RFC 9113 8.1) instead of reading and dropping it.
            if (!s->request_done) {
              nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
            }
          }
        }
        return 0;
      });

  nghttp2_option* opt;
  nghttp2_option_new(&opt);
  // Request bodies are consumed as the handler takes them: a paused handler holds the
  // peer back through its window.
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_max_outbound_ack(opt, o.max_outbound_ack);
  nghttp2_option_set_max_settings(opt, o.max_settings);
  nghttp2_option_set_stream_reset_rate_limit(opt, o.reset_burst, o.reset_rate);
  nghttp2_option_set_max_continuations(opt, o.max_continuations);
  nghttp2_option_set_max_deflate_dynamic_table_size(opt, o.header_table_size);
  // Closed streams are freed at once rather than kept (up to the concurrency limit) for
  // RFC 7540's priority tree, which RFC 9113 deprecates: a priority naming a stream that
  // is gone gets the default one, as RFC 7540 5.3.1 says. Saves ~1 % of an h2c request
  // and the memory of up to 100 dead streams per busy connection.
  nghttp2_option_set_no_closed_streams(opt, 1);
  nghttp2_session_server_new3(&session_, cbs, this, opt, &pool_mem);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
}

HTTP2Session::~HTTP2Session() {
  // Streams still open (the socket's close never came): their self-references go.
  while (open_streams_) remove_open(*open_streams_);
  ctx_->sessions.erase(this);
  nghttp2_session_del(session_);
}

void HTTP2Session::start(std::string_view initial) {
  ctx_->sessions.insert(this);
  std::tie(remote_ip_, remote_port_) = stream_->peer_address();
  const HTTP2Options& o = ctx_->options;
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, o.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, o.initial_window_size},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<std::uint32_t>(header_list_limit_)},
      {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, o.header_table_size},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  if (o.connection_window_size > 65535) {
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                          static_cast<std::int32_t>(o.connection_window_size));
  }
  // The stream's close callback keeps us alive until the socket closes; the data
  // handler can therefore hold `this`.
  auto self = shared_from_this();
  stream_->set_close_callback([self] { self->on_stream_closed(); });
  if (auto s = std::move(upgraded_)) {
    dispatch_request(*s);
    request_complete(*s);
  }
  if (!initial.empty()) on_data(initial);
  if (!closing_) stream_->set_data_handler([this](std::string_view data) { on_data(data); });
  flush();
}

void HTTP2Session::start_upgraded(std::string_view settings,
                                  std::shared_ptr<HTTPServerRequest> request,
                                  std::string_view initial) {
  int rv =
      nghttp2_session_upgrade2(session_, reinterpret_cast<const std::uint8_t*>(settings.data()),
                               settings.size(), request->method == "HEAD", nullptr);
  if (rv != 0) {
    // h2c_upgrade_settings checked the settings; this is nghttp2 disagreeing.
    log::info("http2", std::string("h2c upgrade refused: ") + nghttp2_strerror(rv));
    nghttp2_session_terminate_session(session_, NGHTTP2_PROTOCOL_ERROR);
    start();
    close_after_flush();
    return;
  }
  auto s = std::make_shared<HTTP2StreamState>();
  s->id = 1;
  s->request = std::move(request);
  s->request->version = "HTTP/2";
  // Room for a browser's usual fields at once, rather than growing 1, 2, 4, 8...
  s->request->headers.reserve(8);
  nghttp2_session_set_stream_user_data(session_, s->id, s.get());
  add_open(s);
  upgraded_ = std::move(s);
  start(initial);
}

void HTTP2Session::add_open(std::shared_ptr<HTTP2StreamState> s) {
  HTTP2StreamState* state = s.get();
  state->open_ref = std::move(s);
  state->open_prev = nullptr;
  state->open_next = open_streams_;
  if (open_streams_) open_streams_->open_prev = state;
  open_streams_ = state;
  ++open_count_;
}

std::shared_ptr<HTTP2StreamState> HTTP2Session::remove_open(HTTP2StreamState& s) {
  if (s.open_prev) {
    s.open_prev->open_next = s.open_next;
  } else {
    open_streams_ = s.open_next;
  }
  if (s.open_next) s.open_next->open_prev = s.open_prev;
  s.open_prev = s.open_next = nullptr;
  --open_count_;
  if (receiving_ == &s) receiving_ = nullptr;
  return std::move(s.open_ref);
}

void HTTP2Session::close() {
  closing_ = true;
  idle_timeout_.disarm();
  write_timeout_.disarm();
  if (!stream_->closed()) stream_->close();
}

void HTTP2Session::close_when_idle() {
  if (goaway_sent_ || closing_) return;
  goaway_sent_ = true;
  // In-flight streams finish; new ones are refused by nghttp2.
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
  flush();
}

// --- input ---

void HTTP2Session::on_data(std::string_view data) {
  if (closing_ || close_after_flush_) return;
  in_recv_ = true;
  ssize_t rv = nghttp2_session_mem_recv(
      session_, reinterpret_cast<const std::uint8_t*>(data.data()), data.size());
  in_recv_ = false;
  if (rv < 0) {
    log::info("http2", std::string("closing connection from ") + remote_ip_ + ": " +
                           nghttp2_strerror(static_cast<int>(rv)));
    if (rv == NGHTTP2_ERR_BAD_CLIENT_MAGIC || rv == NGHTTP2_ERR_FLOODED) {
      close();
      return;
    }
    // nghttp2 queued a GOAWAY for most protocol errors; for the rest, say why we go.
    nghttp2_session_terminate_session(session_, rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS
                                                    ? NGHTTP2_ENHANCE_YOUR_CALM
                                                    : NGHTTP2_PROTOCOL_ERROR);
    close_after_flush();
  }
  flush();
}

int HTTP2Session::on_begin_headers(nghttp2_session* session, const nghttp2_frame* frame,
                                   void* user) {
  auto* self = static_cast<HTTP2Session*>(user);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  // Per-stream objects come from the thread's pool (pool_allocator.h).
  auto s = std::allocate_shared<HTTP2StreamState>(detail::PoolAllocator<HTTP2StreamState>());
  s->id = frame->hd.stream_id;
  s->request = make_server_request();
  s->request->version = "HTTP/2";
  // Room for a browser's usual fields at once, rather than growing 1, 2, 4, 8...
  s->request->headers.reserve(8);
  s->request->protocol = self->ctx_->base->options.protocol;
  s->request->remote_ip = self->remote_ip_;
  s->request->remote_port = self->remote_port_;
  // start_time: the request's constructor read the clock a moment ago.
  nghttp2_session_set_stream_user_data(session, s->id, s.get());
  self->receiving_ = s.get();
  self->add_open(std::move(s));
  // Only the idle clock can need stopping now; the flush that follows every
  // nghttp2_session_mem_recv brings both clocks up to date (update_timeouts) anyway.
  if (self->open_count_ == 1) self->idle_timeout_.disarm();
  return 0;
}

int HTTP2Session::on_header(nghttp2_session* session, const nghttp2_frame* frame,
                            const std::uint8_t* name, std::size_t namelen,
                            const std::uint8_t* value, std::size_t valuelen, std::uint8_t,
                            void* user) {
  auto* self = static_cast<HTTP2Session*>(user);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
    return 0;  // trailers are not passed on
  }
  HTTP2StreamState* s = self->receiving_ && self->receiving_->id == frame->hd.stream_id
                            ? self->receiving_
                            : state_of(session, frame->hd.stream_id);
  if (!s || s->headers_too_big) return 0;
  // Counted as RFC 9113 6.5.2 does; nghttp2 has decoded the field already, within its
  // own per-field limit, and we drop the request once the list is too big.
  s->header_bytes += namelen + valuelen + 32;
  if (s->header_bytes > self->header_list_limit_ ||
      ++s->header_count > self->ctx_->base->options.limits.max_header_count + 4) {
    s->headers_too_big = true;
    return 0;
  }
  std::string_view n(reinterpret_cast<const char*>(name), namelen);
  std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  HTTPServerRequest& req = *s->request;
  if (!n.empty() && n[0] == ':') {
    // nghttp2 checked the pseudo-header set (RFC 9113 8.3) before we get here.
    if (n == ":method") {
      req.method.assign(v);
    } else if (n == ":path") {
      req.uri.assign(v);
    } else if (n == ":authority") {
      s->authority.assign(v);
    }
  } else if (n == "cookie") {
    if (!s->cookies.empty()) s->cookies.append("; ");
    s->cookies.append(v);
  } else {
    // nghttp2 lets only lowercase names through (RFC 9113 8.2.1).
    if (s->host_field < 0 && n == "host") s->host_field = static_cast<int>(req.headers.size());
    req.headers.add(n, v);
  }
  return 0;
}

int HTTP2Session::on_frame_recv(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
  auto* self = static_cast<HTTP2Session*>(user);
  HTTP2StreamState* s = frame->hd.stream_id ? state_of(session, frame->hd.stream_id) : nullptr;
  if (!s) return 0;
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    self->dispatch_request(*s);
  }
  if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) && !s->request_done) {
    self->request_complete(*s);
  }
  return 0;
}

void HTTP2Session::dispatch_request(HTTP2StreamState& s) {
  HTTPServerRequest& req = *s.request;
  if (s.headers_too_big) {
    log::info("http2", "request header list too large from " + remote_ip_);
    reject(s, 431);
    return;
  }
  bool authority_as_host = !s.authority.empty() && s.host_field < 0;
  if (authority_as_host) req.headers.add("Host", s.authority);
  if (!s.cookies.empty()) req.headers.add("Cookie", s.cookies);
  // The Host field's value as on_header saw it go in (after the last add: a view into
  // the fields would not survive their vector growing); without either, as for the
  // request an h2c upgrade carried over, its fields are searched.
  auto parse_target = [&] {
    if (s.host_field >= 0) return req.parse_target(req.headers.begin()[s.host_field].value);
    if (authority_as_host) return req.parse_target(s.authority);
    return req.parse_target();
  };
  if (req.method == "CONNECT" || !parse_target()) {
    reject(s, req.method == "CONNECT" ? 405 : 400);
    return;
  }
  s.head = req.method == "HEAD";
  HTTPServerDelegate* delegate = ctx_->base->delegate;
  if (!delegate || goaway_sent_) {
    reject(s, 503);
    return;
  }
  s.connection.session = shared_from_this();
  req.connection = std::shared_ptr<HTTPConnection>(s.open_ref, &s.connection);
  s.dispatched = true;
  s.max_body = ctx_->base->options.limits.max_body_bytes;
  RequestStart start;
  try {
    start = delegate->start_request(s.request);
  } catch (...) {
    delegate_failed(s, "start_request");
    return;
  }
  if (s.closed) return;
  s.message = std::move(start.delegate);
  s.stream_body = start.stream_body;
  if (start.max_body_size) s.max_body = *start.max_body_size;
  if (auto cl = req.headers.get("Content-Length"); cl && s.max_body && !s.headers_written) {
    std::uint64_t n = 0;
    auto [p, ec] = std::from_chars(cl->data(), cl->data() + cl->size(), n);
    if (ec == std::errc() && n > s.max_body) reject(s, 413);
  }
}

void HTTP2Session::request_complete(HTTP2StreamState& s) {
  s.request_done = true;
  if (s.rejected || s.closed) return;
  if (s.paused) {
    s.finish_held = true;
    return;
  }
  if (!s.message) {
    if (!s.headers_written) reject(s, 503);
    return;
  }
  try {
    s.message->finish();
  } catch (...) {
    delegate_failed(s, "finish");
  }
}

int HTTP2Session::on_data_chunk_recv(nghttp2_session* session, std::uint8_t, std::int32_t id,
                                     const std::uint8_t* data, std::size_t len, void* user) {
  auto* self = static_cast<HTTP2Session*>(user);
  HTTP2StreamState* s = state_of(session, id);
  if (!s || s->rejected || s->closed || !s->dispatched) {
    nghttp2_session_consume(session, id, len);
    return 0;
  }
  s->body_received += len;
  if (s->max_body && s->body_received > s->max_body) {
    nghttp2_session_consume(session, id, len);
    if (!s->headers_written) {
      self->reject(*s, 413);
    } else {
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    }
    return 0;
  }
  std::string_view chunk(reinterpret_cast<const char*>(data), len);
  if (!s->stream_body) {
    s->request->body.append(chunk);
  } else if (s->paused) {
    s->held.append(chunk);
    return 0;  // consumed on resume: the window stays shut meanwhile
  } else if (s->message) {
    try {
      s->message->data_received(chunk);
    } catch (...) {
      self->delegate_failed(*s, "data_received");
    }
  }
  nghttp2_session_consume(session, id, len);
  return 0;
}

int HTTP2Session::on_stream_close(nghttp2_session* session, std::int32_t id,
                                  std::uint32_t error_code, void* user) {
  auto* self = static_cast<HTTP2Session*>(user);
  HTTP2StreamState* open = state_of(session, id);
  if (!open || !open->open_ref) return 0;
  std::shared_ptr<HTTP2StreamState> s = self->remove_open(*open);
  s->closed = true;
  self->queued_body_ -= s->queued;
  s->queued = 0;
  s->out.clear();
  s->out_pos = 0;
  s->segments.clear();  // lets go of the files it was sending
  s->segment_bytes = 0;
  bool aborted = s->dispatched && !s->response_done;
  if (error_code != NGHTTP2_NO_ERROR && !s->response_done) self->count_reset();
  if (aborted) {
    if (s->message) {
      try {
        s->message->on_connection_close();
      } catch (...) {
        log::error("http2", "on_connection_close threw");
      }
    }
    if (auto cb = std::move(s->close_callback)) IOLoop::invoke_logged("close callback", cb);
  }
  self->wake_drainers(*s);
  s->close_callback = nullptr;
  s->message.reset();
  s->request.reset();  // breaks the request -> connection -> state cycle
  // No update_timeouts: nghttp2 closes streams only within mem_recv and mem_send, and
  // the flush that ends both (the one running, or the one after on_data's mem_recv)
  // arms the idle clock once the last stream is gone.
  return 0;
}

void HTTP2Session::count_reset() {
  TimePoint now = Clock::now();
  if (now - reset_window_start_ > ctx_->options.reset_interval) {
    reset_window_start_ = now;
    resets_ = 0;
  }
  if (++resets_ > ctx_->options.max_resets_per_interval && !close_after_flush_) {
    log::warning("http2", "too many cancelled streams from " + remote_ip_ + "; GOAWAY");
    nghttp2_session_terminate_session(session_, NGHTTP2_ENHANCE_YOUR_CALM);
    close_after_flush();
  }
}

void HTTP2Session::reject(HTTP2StreamState& s, int status) {
  s.rejected = true;
  if (s.headers_written || s.closed) return;
  s.message.reset();
  HTTPHeaders h;
  h.add("Content-Type", "text/plain");
  h.add("Content-Length", "0");
  write_headers(s, status, h);
  finish_response(s);
}

void HTTP2Session::delegate_failed(HTTP2StreamState& s, const char* where) {
  std::string what = "unknown exception";
  try {
    throw;
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
  }
  log::error("http2",
             std::string("uncaught exception in request handler (") + where + "): " + what);
  if (!s.headers_written && !s.closed) {
    reject(s, 500);
  } else if (!s.closed) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_INTERNAL_ERROR);
    schedule_flush();
  }
}

std::pair<std::string, int> HTTP2Session::local_address() const {
  return stream_->local_address();
}

void HTTP2Session::pause_body(HTTP2StreamState& s) {
  if (s.closed || !s.stream_body || s.request_done) return;
  s.paused = true;
}

void HTTP2Session::resume_body(HTTP2StreamState& s) {
  if (!s.paused) return;
  s.paused = false;
  // Delivered from the loop, as the HTTPConnection contract says.
  auto keep = s.open_ref;
  if (!keep) return;
  stream_->loop().add_callback([self = shared_from_this(), keep] {
    HTTP2StreamState& st = *keep;
    if (st.closed || st.paused) return;
    std::string held = std::move(st.held);
    st.held.clear();
    if (!held.empty()) {
      if (st.message) {
        try {
          st.message->data_received(held);
        } catch (...) {
          self->delegate_failed(st, "data_received");
        }
      }
      if (!st.closed) nghttp2_session_consume(self->session_, st.id, held.size());
    }
    if (st.finish_held && !st.paused && !st.closed) {
      st.finish_held = false;
      st.request_done = false;
      self->request_complete(st);
    }
    self->flush();
  });
}

void HTTP2Session::schedule_flush() {
  if (flush_scheduled_ || in_recv_ || in_flush_ || closing_) return;
  flush_scheduled_ = true;
  stream_->loop().add_callback([self = shared_from_this()] {
    self->flush_scheduled_ = false;
    self->flush();
  });
}

void HTTP2Session::flush() {
  if (in_flush_ || closing_ || stream_->closed()) return;
  in_flush_ = true;
  for (auto& s : headers_due_) {
    if (!s->headers_submitted && !s->closed) submit_headers(*s, true);
  }
  headers_due_.clear();
  // Frames are gathered in the thread's buffer, which keeps its capacity from one flush
  // to the next: growing a fresh string for every flush cost several reallocations. It
  // is taken out while in use, so a flush of another session run from inside this one
  // (by a callback) gets its own; and the stream copies whatever it cannot send at once.
  std::string buf = std::move(flush_buffer());
  buf.clear();
  auto write_out = [&] {
    bytes_sent_ += buf.size();
    std::string_view piece(buf);
    stream_->write_pieces(&piece, 1);
    buf.clear();
  };
  const std::size_t high_water = stream_->options().write_high_water;
  bool failed = false;
  for (;;) {
    if (stream_->write_buffer_size() + buf.size() > high_water) {
      waiting_for_socket_ = true;
      break;
    }
    const std::uint8_t* data;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      log::error("http2", std::string("mem_send: ") + nghttp2_strerror(static_cast<int>(n)));
      failed = true;
      break;
    }
    if (n == 0) break;
    buf.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
    if (buf.size() >= kWriteChunk) write_out();
  }
  if (!buf.empty() && !failed) write_out();
  if (buf.capacity() <= kWriteChunk * 2) flush_buffer() = std::move(buf);
  in_flush_ = false;
  if (failed) {
    close();
    return;
  }
  if (closing_) return;
  if (waiting_for_socket_) {
    // Stop reading too: a peer that floods us with frames needing answers (PING,
    // SETTINGS) while not reading ours gets no further.
    stream_->pause_reading();
    stream_->drain().add_done_callback([self = shared_from_this()] { self->on_write_done(); });
  }
  for (HTTP2StreamState* s = open_streams_; s;) {
    HTTP2StreamState* next = s->open_next;
    wake_drainers(*s);
    s = next;
  }
  bool session_over = !nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_);
  if (session_over || (close_after_flush_ && !nghttp2_session_want_write(session_))) {
    close_after_flush();
    // Everything is handed to the stream; close once it has left our buffer.
    stream_->write(std::string(), [self = shared_from_this()] { self->close(); });
    return;
  }
  update_timeouts();
}

void HTTP2Session::on_write_done() {
  if (closing_) return;
  waiting_for_socket_ = false;
  if (!close_after_flush_) stream_->resume_reading();
  flush();
}

void HTTP2Session::close_after_flush() {
  close_after_flush_ = true;
  idle_timeout_.disarm();
  stream_->pause_reading();
}

void HTTP2Session::update_timeouts() {
  if (closing_) return;
  detail::HTTP1ServerContext& base = *ctx_->base;
  if (open_count_ == 0 && !close_after_flush_) {
    if (base.idle_timeouts.duration() > Duration::zero()) base.idle_timeouts.arm(idle_timeout_);
  } else {
    idle_timeout_.disarm();
  }
  bool pending = stream_->write_buffer_size() > 0 || queued_body_ > 0;
  if (pending && base.write_timeouts.duration() > Duration::zero()) {
    if (!write_timeout_.armed() || bytes_sent_ != write_mark_) {
      write_mark_ = bytes_sent_;
      base.write_timeouts.arm(write_timeout_);
    }
  } else {
    write_timeout_.disarm();
  }
}

void HTTP2Session::on_idle_timeout(void* p) {
  auto* self = static_cast<HTTP2Session*>(p);
  if (self->open_count_ != 0) return;
  log::debug("http2", "idle timeout for " + self->remote_ip_);
  nghttp2_session_terminate_session(self->session_, NGHTTP2_NO_ERROR);
  self->close_after_flush();
  self->schedule_flush();
}

void HTTP2Session::on_write_timeout(void* p) {
  auto* self = static_cast<HTTP2Session*>(p);
  if (self->bytes_sent_ != self->write_mark_) {
    self->update_timeouts();
    return;
  }
  log::info("http2", "write timeout (stalled window or socket) to " + self->remote_ip_);
  self->close();
}

void HTTP2Session::on_stream_closed() {
  closing_ = true;
  idle_timeout_.disarm();
  write_timeout_.disarm();
  std::vector<std::shared_ptr<HTTP2StreamState>> streams;
  streams.reserve(open_count_);
  while (open_streams_) {
    // nghttp2 (deleted with us) must not hand out the state once we let go of it.
    nghttp2_session_set_stream_user_data(session_, open_streams_->id, nullptr);
    streams.push_back(remove_open(*open_streams_));
  }
  headers_due_.clear();
  for (auto& s : streams) {
    s->closed = true;
    s->segments.clear();  // lets go of the files it was sending
    if (s->dispatched && !s->response_done) {
      if (s->message) {
        try {
          s->message->on_connection_close();
        } catch (...) {
          log::error("http2", "on_connection_close threw");
        }
      }
      if (auto cb = std::move(s->close_callback)) IOLoop::invoke_logged("close callback", cb);
    }
    wake_drainers(*s);
    s->close_callback = nullptr;
    s->message.reset();
    s->request.reset();
  }
  ctx_->sessions.erase(this);
}

}  // namespace tronada
