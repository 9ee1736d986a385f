#include "tronada/net/iostream.h"

#include <algorithm>
#include <cstring>

#include "tronada/base/error.h"
#include "tronada/base/log.h"

namespace tronada {

namespace {

// One read buffer per thread, lent to libuv for each read and consumed before the read
// callback returns; only bytes a pending read cannot take yet are copied into the
// stream's own buffer. This is what makes an idle connection cost no buffer memory.
constexpr std::size_t kReadChunk = 64 * 1024;
thread_local char t_read_chunk[kReadChunk];

const std::error_code kUnsatisfiable = std::make_error_code(std::errc::value_too_large);

std::string describe(std::error_code ec) {
  if (!ec) return "stream closed";
  return "stream closed: " + ec.message();
}

void delete_handle(uv_handle_t* h) {
  switch (h->type) {
    case UV_TCP: delete reinterpret_cast<uv_tcp_t*>(h); break;
    case UV_NAMED_PIPE: delete reinterpret_cast<uv_pipe_t*>(h); break;
    case UV_TTY: delete reinterpret_cast<uv_tty_t*>(h); break;
    default: log::error("iostream", "deleting a handle of unexpected type"); break;
  }
}

struct WriteReq {
  uv_write_t req;
  std::string data;
  std::size_t plain_bytes;
};

}  // namespace

StreamClosedError::StreamClosedError(std::error_code ec)
    : std::runtime_error(describe(ec)), real_error(ec) {}

std::shared_ptr<IOStream> IOStream::adopt(uv_stream_t* handle, IOStreamOptions options) {
  std::shared_ptr<IOStream> s(new IOStream(handle, options));
  s->self_ = s;
  return s;
}

std::shared_ptr<IOStream> IOStream::from_fd(int fd, IOStreamOptions options, IOLoop* loop) {
  IOLoop& l = loop ? *loop : IOLoop::current();
  uv_handle_type type = uv_guess_handle(fd);
  if (type == UV_TCP) {
    auto* tcp = new uv_tcp_t;
    uv_tcp_init(l.uv(), tcp);
    int rc = uv_tcp_open(tcp, fd);
    if (rc < 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(tcp), delete_handle);
      check_uv(rc, "uv_tcp_open");
    }
    return adopt(reinterpret_cast<uv_stream_t*>(tcp), options);
  }
  auto* pipe = new uv_pipe_t;
  uv_pipe_init(l.uv(), pipe, 0);
  int rc = uv_pipe_open(pipe, fd);
  if (rc < 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(pipe), delete_handle);
    check_uv(rc, "uv_pipe_open");
  }
  return adopt(reinterpret_cast<uv_stream_t*>(pipe), options);
}

IOStream::IOStream(uv_stream_t* handle, IOStreamOptions options)
    : loop_(static_cast<IOLoop*>(handle->loop->data)), handle_(handle), options_(options) {
  handle_->data = this;
}

IOStream::~IOStream() = default;

// --- reads -----------------------------------------------------------------

IOStream::ReadDone IOStream::future_completion(
    Promise<std::string> promise) {
  return [promise](std::error_code ec, std::string&& data) mutable {
    if (!ec) {
      promise.set_result(std::move(data));
    } else if (ec == kUnsatisfiable) {
      promise.set_exception(std::make_exception_ptr(
          UnsatisfiableReadError("read could not be satisfied within max_bytes")));
    } else {
      promise.set_exception(std::make_exception_ptr(StreamClosedError(ec)));
    }
  };
}

IOStream::ReadDone IOStream::callback_completion(
    ReadCallback cb) {
  // Callbacks run from the loop, never from inside the read that completed them, so a
  // callback that starts the next read cannot recurse once per buffered message.
  return [this, cb = std::move(cb)](std::error_code ec, std::string&& data) mutable {
    if (ec || !cb) return;  // the close callback reports errors in this form
    loop_->add_callback([self = shared_from_this(), cb = std::move(cb),
                         data = std::move(data)]() mutable { cb(std::move(data)); });
  };
}

void IOStream::begin_read(ReadOp op, ReadDone done) {
  if (read_op_ != ReadOp::none) {
    throw std::logic_error("IOStream: a read is already pending");
  }
  if (data_handler_) throw std::logic_error("IOStream: read on a stream in raw mode");
  read_op_ = op;
  read_done_ = std::move(done);
  delimiter_scan_from_ = buffer_pos_;
  if (closing_) {
    fail_pending(error_ ? error_ : uv_error(UV_EOF));
    return;
  }
  if (!try_complete_read()) maybe_update_reading();
}

void IOStream::start_until(std::string delimiter, std::size_t max_bytes, ReadDone done) {
  if (delimiter.empty()) throw std::invalid_argument("read_until: empty delimiter");
  read_delimiter_ = std::move(delimiter);
  read_bytes_ = max_bytes ? max_bytes : options_.max_buffer_size;
  begin_read(ReadOp::until, std::move(done));
}

void IOStream::start_regex(std::regex pattern, std::size_t max_bytes, ReadDone done) {
  read_regex_ = std::make_unique<std::regex>(std::move(pattern));
  read_bytes_ = max_bytes ? max_bytes : options_.max_buffer_size;
  begin_read(ReadOp::regex, std::move(done));
}

void IOStream::start_bytes(std::size_t n, bool partial, StreamingCallback streaming,
                           ReadDone done) {
  read_bytes_ = n;
  read_partial_ = partial;
  streaming_cb_ = std::move(streaming);
  begin_read(ReadOp::bytes, std::move(done));
}

void IOStream::start_until_close(StreamingCallback streaming, ReadDone done) {
  streaming_cb_ = std::move(streaming);
  begin_read(ReadOp::until_close, std::move(done));
}

Future<std::string> IOStream::read_until(std::string delimiter, std::size_t max_bytes) {
  Promise<std::string> p(loop_);
  start_until(std::move(delimiter), max_bytes, future_completion(p));
  return p.get_future();
}

void IOStream::read_until(std::string delimiter, ReadCallback cb, std::size_t max_bytes) {
  start_until(std::move(delimiter), max_bytes, callback_completion(std::move(cb)));
}

Future<std::string> IOStream::read_until_regex(std::regex pattern, std::size_t max_bytes) {
  Promise<std::string> p(loop_);
  start_regex(std::move(pattern), max_bytes, future_completion(p));
  return p.get_future();
}

void IOStream::read_until_regex(std::regex pattern, ReadCallback cb, std::size_t max_bytes) {
  start_regex(std::move(pattern), max_bytes, callback_completion(std::move(cb)));
}

Future<std::string> IOStream::read_bytes(std::size_t n, bool partial) {
  Promise<std::string> p(loop_);
  start_bytes(n, partial, nullptr, future_completion(p));
  return p.get_future();
}

void IOStream::read_bytes(std::size_t n, ReadCallback cb, bool partial) {
  start_bytes(n, partial, nullptr, callback_completion(std::move(cb)));
}

Future<std::string> IOStream::read_bytes_streaming(std::size_t n, StreamingCallback streaming) {
  Promise<std::string> p(loop_);
  start_bytes(n, false, std::move(streaming), future_completion(p));
  return p.get_future();
}

void IOStream::read_bytes_streaming(std::size_t n, StreamingCallback streaming, ReadCallback done) {
  start_bytes(n, false, std::move(streaming), callback_completion(std::move(done)));
}

Future<std::string> IOStream::read_until_close(StreamingCallback streaming) {
  Promise<std::string> p(loop_);
  start_until_close(std::move(streaming), future_completion(p));
  return p.get_future();
}

void IOStream::read_until_close(ReadCallback cb, StreamingCallback streaming) {
  start_until_close(std::move(streaming), callback_completion(std::move(cb)));
}

bool IOStream::try_complete_read() {
  std::size_t available = buffer_.size() - buffer_pos_;
  switch (read_op_) {
    case ReadOp::none: return false;
    case ReadOp::until: {
      std::string_view view(buffer_.data() + buffer_pos_, available);
      std::size_t from = delimiter_scan_from_ - buffer_pos_;
      std::size_t pos = view.find(read_delimiter_, from);
      if (pos != std::string_view::npos) {
        std::size_t n = pos + read_delimiter_.size();
        if (n > read_bytes_) {
          close(kUnsatisfiable);
          return true;
        }
        finish_read(n);
        return true;
      }
      if (available >= read_bytes_ + read_delimiter_.size()) {
        close(kUnsatisfiable);
        return true;
      }
      // Resume the scan where a delimiter could still start: no rescans of old bytes.
      std::size_t keep = read_delimiter_.size() - 1;
      delimiter_scan_from_ = buffer_pos_ + (available > keep ? available - keep : 0);
      return false;
    }
    case ReadOp::regex: {
      std::cmatch m;
      const char* begin = buffer_.data() + buffer_pos_;
      if (std::regex_search(begin, begin + available, m, *read_regex_)) {
        std::size_t n = static_cast<std::size_t>(m.position(0) + m.length(0));
        if (n > read_bytes_) {
          close(kUnsatisfiable);
          return true;
        }
        finish_read(n);
        return true;
      }
      if (available >= read_bytes_) {
        close(kUnsatisfiable);
        return true;
      }
      return false;
    }
    case ReadOp::bytes: {
      if (streaming_cb_) {
        if (available > 0 && read_bytes_ > 0) {
          std::size_t n = std::min(available, read_bytes_);
          std::string_view piece(buffer_.data() + buffer_pos_, n);
          buffer_pos_ += n;
          read_bytes_ -= n;
          auto cb = streaming_cb_;
          IOLoop::invoke_logged("streaming callback", [&] { cb(piece); });
          compact_buffer();
        }
        if (read_bytes_ == 0) {
          finish_read(0);
          return true;
        }
        return false;
      }
      if (available >= read_bytes_) {
        finish_read(read_bytes_);
        return true;
      }
      if (read_partial_ && available > 0) {
        finish_read(available);
        return true;
      }
      return false;
    }
    case ReadOp::until_close: {
      if (streaming_cb_ && available > 0) {
        std::string_view piece(buffer_.data() + buffer_pos_, available);
        buffer_pos_ += available;
        auto cb = streaming_cb_;
        IOLoop::invoke_logged("streaming callback", [&] { cb(piece); });
        compact_buffer();
      }
      return false;  // completes only at EOF
    }
  }
  return false;
}

void IOStream::finish_read(std::size_t consume) {
  std::string result(buffer_.data() + buffer_pos_, consume);
  buffer_pos_ += consume;
  read_op_ = ReadOp::none;
  streaming_cb_ = nullptr;
  read_regex_.reset();
  compact_buffer();
  maybe_update_reading();
  auto done = std::move(read_done_);
  read_done_ = nullptr;
  if (done) done({}, std::move(result));
}

void IOStream::fail_pending(std::error_code error) {
  if (read_op_ == ReadOp::none) return;
  ReadOp op = read_op_;
  read_op_ = ReadOp::none;
  std::string rest;
  bool success = false;
  if (op == ReadOp::until_close && error == uv_error(UV_EOF)) {
    // A clean EOF is the normal end of read_until_close: hand over what is left.
    std::size_t available = buffer_.size() - buffer_pos_;
    if (streaming_cb_) {
      if (available) {
        std::string_view piece(buffer_.data() + buffer_pos_, available);
        auto cb = streaming_cb_;
        IOLoop::invoke_logged("streaming callback", [&] { cb(piece); });
      }
    } else {
      rest.assign(buffer_.data() + buffer_pos_, available);
    }
    buffer_pos_ = buffer_.size();
    success = true;
  }
  streaming_cb_ = nullptr;
  read_regex_.reset();
  auto done = std::move(read_done_);
  read_done_ = nullptr;
  if (done) done(success ? std::error_code() : error, std::move(rest));
}

void IOStream::compact_buffer() {
  if (buffer_pos_ >= buffer_.size()) {
    buffer_pos_ = 0;
    if (read_op_ == ReadOp::none || buffer_.capacity() > kReadChunk) {
      std::string().swap(buffer_);  // give the memory back while idle
    } else {
      buffer_.clear();
    }
  } else if (buffer_pos_ > 4096 && buffer_pos_ * 2 > buffer_.size()) {
    buffer_.erase(0, buffer_pos_);
    delimiter_scan_from_ -= std::min(delimiter_scan_from_, buffer_pos_);
    buffer_pos_ = 0;
  }
}

void IOStream::deliver(const char* data, std::size_t len) {
  if (data_handler_ && buffer_pos_ == buffer_.size()) {
    auto& handler = data_handler_;
    handler(std::string_view(data, len));
    return;
  }
  if (read_buffer_size() + len > options_.max_buffer_size) {
    log::warning("iostream", "closing stream: read buffer over max_buffer_size (" +
                                 std::to_string(options_.max_buffer_size) + " bytes)");
    close(uv_error(UV_ENOBUFS));
    return;
  }
  buffer_.append(data, len);
  if (data_handler_) {
    std::string pending = std::move(buffer_);
    buffer_.clear();
    buffer_pos_ = 0;
    data_handler_(std::string_view(pending));
    return;
  }
  try_complete_read();
}

void IOStream::set_data_handler(DataHandler handler) {
  if (handler && read_op_ != ReadOp::none) {
    throw std::logic_error("IOStream: raw mode while a read is pending");
  }
  data_handler_ = std::move(handler);
  if (data_handler_ && read_buffer_size() > 0) {
    // Bytes read ahead in buffered mode (an upgrade's first frames) come first.
    std::string pending = buffer_.substr(buffer_pos_);
    std::string().swap(buffer_);
    buffer_pos_ = 0;
    loop_->add_callback([self = shared_from_this(), pending = std::move(pending)]() {
      if (!self->closed() && self->data_handler_) self->data_handler_(pending);
    });
  }
  maybe_update_reading();
}

void IOStream::pause_reading() {
  reading_paused_ = true;
  maybe_update_reading();
}

void IOStream::resume_reading() {
  reading_paused_ = false;
  maybe_update_reading();
}

void IOStream::maybe_update_reading() {
  bool want = !closing_ && (transport_wants_reads() ||
                            (!reading_paused_ && (data_handler_ || read_op_ != ReadOp::none)));
  if (want && !socket_reading_) {
    start_socket_reads();
  } else if (!want && socket_reading_) {
    stop_socket_reads();
  }
}

void IOStream::start_socket_reads() {
  if (closing_ || socket_reading_) return;
  int rc = uv_read_start(handle_, &IOStream::on_alloc, &IOStream::on_read);
  if (rc < 0) {
    close(uv_error(rc));
    return;
  }
  socket_reading_ = true;
}

void IOStream::stop_socket_reads() {
  if (!socket_reading_) return;
  uv_read_stop(handle_);
  socket_reading_ = false;
}

void IOStream::on_alloc(uv_handle_t*, std::size_t, uv_buf_t* buf) {
  buf->base = t_read_chunk;
  buf->len = kReadChunk;
}

void IOStream::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<IOStream*>(s->data);
  if (nread > 0) {
    self->on_transport_data(buf->base, static_cast<std::size_t>(nread));
  } else if (nread == UV_EOF) {
    self->on_transport_eof();
  } else if (nread < 0) {
    self->close(uv_error(static_cast<int>(nread)));
  }
}

// --- writes ----------------------------------------------------------------

Future<void> IOStream::write(std::string data) {
  Promise<void> p(loop_);
  if (closing_) {
    p.set_exception(std::make_exception_ptr(StreamClosedError(error_)));
    return p.get_future();
  }
  std::string_view view(data);
  write_accepted_ += view.size();
  write_queued_ += view.size();
  pending_writes_.push_back({write_accepted_, [p](bool ok) mutable {
                               if (ok) {
                                 p.try_set_result();
                               } else {
                                 p.try_set_exception(
                                     std::make_exception_ptr(StreamClosedError(uv_error(UV_ECANCELED))));
                               }
                             }});
  send_plain(&view, 1);
  return p.get_future();
}

void IOStream::write(std::string data, WriteCallback cb) {
  std::string_view view(data);
  write_pieces(&view, 1, std::move(cb));
}

void IOStream::write_pieces(const std::string_view* pieces, std::size_t count, WriteCallback cb) {
  if (closing_) return;
  std::size_t total = 0;
  for (std::size_t i = 0; i < count; ++i) total += pieces[i].size();
  write_accepted_ += total;
  write_queued_ += total;
  if (cb) {
    pending_writes_.push_back(
        {write_accepted_, [this, cb = std::move(cb)](bool ok) mutable {
           if (!ok) return;  // the close callback reports the error in this form
           loop_->add_callback([self = shared_from_this(), cb = std::move(cb)] { cb(); });
         }});
  }
  send_plain(pieces, count);
}

Future<void> IOStream::drain() {
  Promise<void> p(loop_);
  if (closing_) {
    p.set_exception(std::make_exception_ptr(StreamClosedError(error_)));
  } else if (write_queued_ <= options_.write_high_water) {
    p.set_result();
  } else {
    drain_waiters_.push_back(p);
  }
  return p.get_future();
}

void IOStream::send_plain(const std::string_view* pieces, std::size_t count) {
  std::size_t total = 0;
  for (std::size_t i = 0; i < count; ++i) total += pieces[i].size();
  send_raw(pieces, count, total);
}

void IOStream::send_raw(const std::string_view* pieces, std::size_t count,
                        std::size_t plain_bytes) {
  if (closing_) return;
  constexpr std::size_t kMaxPieces = 16;
  uv_buf_t bufs[kMaxPieces];
  std::size_t n = std::min(count, kMaxPieces);
  std::size_t total = 0;
  for (std::size_t i = 0; i < count; ++i) total += pieces[i].size();
  for (std::size_t i = 0; i < n; ++i) {
    bufs[i] = uv_buf_init(const_cast<char*>(pieces[i].data()),
                          static_cast<unsigned>(pieces[i].size()));
  }
  std::size_t written = 0;
  if (handle_->write_queue_size == 0 && count <= kMaxPieces) {
    int rc = uv_try_write(handle_, bufs, static_cast<unsigned>(n));
    if (rc >= 0) {
      written = static_cast<std::size_t>(rc);
    } else if (rc != UV_EAGAIN && rc != UV_ENOSYS) {
      close(uv_error(rc));
      return;
    }
  }
  if (written == total) {
    if (plain_bytes) complete_written(plain_bytes);
    return;
  }
  // The kernel took only part: queue the rest, owned by the request until its callback.
  auto* req = new WriteReq{{}, {}, plain_bytes};
  req->data.reserve(total - written);
  std::size_t skip = written;
  for (std::size_t i = 0; i < count; ++i) {
    std::string_view p = pieces[i];
    if (skip >= p.size()) {
      skip -= p.size();
      continue;
    }
    req->data.append(p.substr(skip));
    skip = 0;
  }
  req->req.data = this;
  uv_buf_t buf = uv_buf_init(req->data.data(), static_cast<unsigned>(req->data.size()));
  int rc = uv_write(&req->req, handle_, &buf, 1, [](uv_write_t* r, int status) {
    std::unique_ptr<WriteReq> owned(reinterpret_cast<WriteReq*>(r));
    auto* self = static_cast<IOStream*>(r->data);
    if (status < 0) {
      if (status != UV_ECANCELED) self->close(uv_error(status));
      return;
    }
    if (owned->plain_bytes) self->complete_written(owned->plain_bytes);
  });
  if (rc < 0) {
    delete req;
    close(uv_error(rc));
  }
}

void IOStream::complete_written(std::size_t n) {
  write_done_ += n;
  write_queued_ -= std::min(write_queued_, n);
  std::size_t fired = 0;
  while (fired < pending_writes_.size() && pending_writes_[fired].end_offset <= write_done_) {
    ++fired;
  }
  if (fired) {
    std::vector<PendingWrite> done(std::make_move_iterator(pending_writes_.begin()),
                                   std::make_move_iterator(pending_writes_.begin() + fired));
    pending_writes_.erase(pending_writes_.begin(), pending_writes_.begin() + fired);
    for (auto& w : done) w.cb(true);
  }
  if (write_queued_ <= options_.write_high_water && !drain_waiters_.empty()) {
    auto waiters = std::move(drain_waiters_);
    drain_waiters_.clear();
    for (auto& p : waiters) p.try_set_result();
  }
}

// --- closing ---------------------------------------------------------------

void IOStream::close(std::error_code error) {
  if (closing_) return;
  closing_ = true;
  error_ = error;
  stop_socket_reads();
  fail_pending(error ? error : uv_error(UV_ECANCELED));
  // Writes that cannot complete now fail: co_await forms get StreamClosedError,
  // callback forms are simply not called (the close callback reports the error).
  auto writes = std::move(pending_writes_);
  pending_writes_.clear();
  for (auto& w : writes) w.cb(false);
  auto waiters = std::move(drain_waiters_);
  drain_waiters_.clear();
  for (auto& p : waiters) p.try_set_exception(std::make_exception_ptr(StreamClosedError(error)));
  uv_close(reinterpret_cast<uv_handle_t*>(handle_), &IOStream::on_closed);
}

void IOStream::on_closed(uv_handle_t* h) {
  auto* self = static_cast<IOStream*>(h->data);
  self->handle_ = nullptr;
  delete_handle(h);
  // Keep ourselves alive through the callback; the last reference may go with `keep`.
  std::shared_ptr<IOStream> keep = std::move(self->self_);
  auto cb = std::move(self->close_callback_);
  self->close_callback_ = nullptr;
  self->data_handler_ = nullptr;
  if (cb) IOLoop::invoke_logged("close callback", cb);
}

void IOStream::set_nodelay(bool on) {
  if (handle_ && handle_->type == UV_TCP) {
    uv_tcp_nodelay(reinterpret_cast<uv_tcp_t*>(handle_), on ? 1 : 0);
  }
}

std::string IOStream::peer_ip() const {
  if (!handle_) return "";
  if (handle_->type != UV_TCP) return "unix";
  sockaddr_storage addr{};
  int len = sizeof addr;
  if (uv_tcp_getpeername(reinterpret_cast<const uv_tcp_t*>(handle_),
                         reinterpret_cast<sockaddr*>(&addr), &len) < 0) {
    return "";
  }
  char ip[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    uv_ip4_name(reinterpret_cast<sockaddr_in*>(&addr), ip, sizeof ip);
  } else if (addr.ss_family == AF_INET6) {
    uv_ip6_name(reinterpret_cast<sockaddr_in6*>(&addr), ip, sizeof ip);
  }
  return ip;
}

int IOStream::peer_port() const {
  if (!handle_ || handle_->type != UV_TCP) return 0;
  sockaddr_storage addr{};
  int len = sizeof addr;
  if (uv_tcp_getpeername(reinterpret_cast<const uv_tcp_t*>(handle_),
                         reinterpret_cast<sockaddr*>(&addr), &len) < 0) {
    return 0;
  }
  if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return 0;
}

}  // namespace tronada
