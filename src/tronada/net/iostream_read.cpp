// IOStream's read side: the buffered read operations (read_until, read_bytes, ...), the
// raw mode protocol connections use (set_data_handler), pausing, and the socket reads
// under both. Writing, files, closing and the socket queries are in iostream.cpp.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "tronada/base/error.h"
#include "tronada/base/log.h"
#include "tronada/net/iostream.h"

namespace tronada {

namespace {

// One read buffer per thread, lent to libuv for each read and consumed before the read
// callback returns; only bytes a pending read cannot take yet are copied into the
// stream's own buffer. This is what makes an idle connection cost no buffer memory.
constexpr std::size_t kReadChunk = 64 * 1024;
thread_local char t_read_chunk[kReadChunk];

const std::error_code kUnsatisfiable = std::make_error_code(std::errc::value_too_large);

}  // namespace

// --- reads -----------------------------------------------------------------

IOStream::ReadDone IOStream::future_completion(Promise<std::string> promise) {
  return [promise](ReadStatus status, std::error_code ec, std::string&& data) mutable {
    switch (status) {
      case ReadStatus::ok:
        promise.set_result(std::move(data));
        break;
      case ReadStatus::unsatisfiable:
        promise.set_exception(std::make_exception_ptr(
            UnsatisfiableReadError("read could not be satisfied within max_bytes")));
        break;
      case ReadStatus::closed:
        promise.set_exception(std::make_exception_ptr(StreamClosedError(ec)));
        break;
    }
  };
}

IOStream::ReadDone IOStream::callback_completion(ReadCallback cb) {
  // Callbacks run from the loop, never from inside the read that completed them, so a
  // callback that starts the next read cannot recurse once per buffered message.
  return
      [this, cb = std::move(cb)](ReadStatus status, std::error_code, std::string&& data) mutable {
        if (status != ReadStatus::ok || !cb) return;  // the close callback reports errors
        loop_->add_callback([self = shared_from_this(), cb = std::move(cb),
                             data = std::move(data)]() mutable { cb(std::move(data)); });
      };
}

void IOStream::begin_read(ReadOp op, ReadDone done) {
  read_op_ = op;
  read_state().done = std::move(done);
  read_state().delimiter_scanned = 0;
  // As Tornado: what is already buffered can still be read after the stream closed.
  if (try_complete_read()) return;
  if (closing_) {
    fail_pending(error_);
    return;
  }
  maybe_update_reading();
}

namespace {
void check_can_read(bool pending, bool raw) {
  if (pending) throw std::logic_error("IOStream: a read is already pending");
  if (raw) throw std::logic_error("IOStream: read on a stream in raw mode");
}
}  // namespace

void IOStream::start_until(std::string delimiter, std::size_t max_bytes, ReadDone done) {
  check_can_read(read_op_ != ReadOp::none, static_cast<bool>(data_handler_));
  if (delimiter.empty()) throw std::invalid_argument("read_until: empty delimiter");
  read_state().delimiter = std::move(delimiter);
  read_state().bytes = max_bytes ? max_bytes : std::numeric_limits<std::size_t>::max();
  begin_read(ReadOp::until, std::move(done));
}

void IOStream::start_regex(std::regex pattern, std::size_t max_bytes, ReadDone done) {
  check_can_read(read_op_ != ReadOp::none, static_cast<bool>(data_handler_));
  read_state().regex = std::make_unique<std::regex>(std::move(pattern));
  read_state().bytes = max_bytes ? max_bytes : std::numeric_limits<std::size_t>::max();
  begin_read(ReadOp::regex, std::move(done));
}

void IOStream::start_bytes(std::size_t n, bool partial, StreamingCallback streaming,
                           ReadDone done) {
  check_can_read(read_op_ != ReadOp::none, static_cast<bool>(data_handler_));
  read_state().bytes = n;
  read_state().partial = partial;
  read_state().streaming = std::move(streaming);
  begin_read(ReadOp::bytes, std::move(done));
}

void IOStream::start_until_close(StreamingCallback streaming, ReadDone done) {
  check_can_read(read_op_ != ReadOp::none, static_cast<bool>(data_handler_));
  read_state().streaming = std::move(streaming);
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
  std::string_view avail = unread();
  switch (read_op_) {
    case ReadOp::none:
      return false;
    case ReadOp::until: {
      std::size_t pos = avail.find(read_state().delimiter, read_state().delimiter_scanned);
      if (pos != std::string_view::npos) {
        finish_delimited(pos + read_state().delimiter.size());
        return true;
      }
      if (delimited_hopeless(avail.size())) return true;
      // Resume the scan where a delimiter could still start: no rescans of old bytes.
      std::size_t keep = read_state().delimiter.size() - 1;
      read_state().delimiter_scanned = avail.size() > keep ? avail.size() - keep : 0;
      return false;
    }
    case ReadOp::regex: {
      std::cmatch m;
      if (std::regex_search(avail.data(), avail.data() + avail.size(), m, *read_state().regex)) {
        finish_delimited(static_cast<std::size_t>(m.position(0) + m.length(0)));
        return true;
      }
      return delimited_hopeless(avail.size());
    }
    case ReadOp::bytes: {
      if (read_state().streaming) {
        if (!avail.empty() && read_state().bytes > 0) {
          std::size_t n = std::min(avail.size(), read_state().bytes);
          consume(n);
          read_state().bytes -= n;
          // The piece stays valid: nothing can append to the buffer while a read is
          // pending and we are inside this call.
          if (!run_streaming(avail.substr(0, n))) return true;
        }
        if (read_state().bytes == 0) {
          finish_read(0);
          return true;
        }
        return false;
      }
      if (read_state().partial && !avail.empty()) {
        finish_read(std::min({avail.size(), read_state().bytes, options_.max_buffer_size}));
        return true;
      }
      // Fails before buffering anything: however the bytes arrive, it cannot succeed.
      if (read_state().bytes > options_.max_buffer_size && !read_state().partial) {
        fail_read(ReadStatus::closed, buffer_overflow());
        return true;
      }
      if (avail.size() >= read_state().bytes) {
        finish_read(read_state().bytes);
        return true;
      }
      return false;
    }
    case ReadOp::until_close: {
      if (read_state().streaming && !avail.empty()) {
        consume(avail.size());
        if (!run_streaming(avail)) return true;
        compact_buffer();
      } else if (avail.size() > options_.max_buffer_size) {
        fail_read(ReadStatus::closed, buffer_overflow());
        return true;
      }
      return false;  // completes only when the stream closes
    }
  }
  return false;
}

bool IOStream::run_streaming(std::string_view piece) {
  // A copy: the callback may close the stream, which ends the read and its callback.
  StreamingCallback cb = read_state().streaming;
  try {
    cb(piece);
    return read_op_ != ReadOp::none;
  } catch (const std::exception& e) {
    log::error("iostream", std::string("closing stream: streaming callback threw: ") + e.what());
  } catch (...) {
    log::error("iostream", "closing stream: streaming callback threw");
  }
  // Bytes the reader never took are lost, so the stream cannot go on.
  close(uv_error(UV_ECANCELED));
  return false;
}

IOStream::ReadDone IOStream::take_read() {
  read_op_ = ReadOp::none;
  read_state().streaming = nullptr;
  read_state().regex.reset();
  ReadDone done = std::move(read_state().done);
  read_state().done = nullptr;
  return done;
}

void IOStream::finish_read(std::size_t n) {
  std::string result;
  if (input_.empty() && buffer_pos_ == 0 && n == buffer_.size()) {
    result = std::move(buffer_);  // the whole buffer is the answer: no copy
    buffer_ = std::string();
  } else {
    result.assign(unread().substr(0, n));
    consume(n);
  }
  ReadDone done = take_read();
  // The state is final before `done` runs: it may start the next read at once.
  spill_input();
  compact_buffer();
  maybe_update_reading();
  if (done) done(ReadStatus::ok, {}, std::move(result));
}

void IOStream::finish_delimited(std::size_t n) {
  if (n > read_state().bytes) {
    fail_read(ReadStatus::unsatisfiable, kUnsatisfiable);
  } else if (n > options_.max_buffer_size) {
    fail_read(ReadStatus::closed, buffer_overflow());
  } else {
    finish_read(n);
  }
}

bool IOStream::delimited_hopeless(std::size_t available) {
  // No match in `available` bytes: any later match ends past them, so past max_bytes or
  // max_buffer_size once they are reached.
  if (available >= read_state().bytes) {
    fail_read(ReadStatus::unsatisfiable, kUnsatisfiable);
    return true;
  }
  if (available >= options_.max_buffer_size) {
    fail_read(ReadStatus::closed, buffer_overflow());
    return true;
  }
  return false;
}

std::error_code IOStream::buffer_overflow() const {
  log::warning("iostream", "closing stream: read needs more than max_buffer_size (" +
                               std::to_string(options_.max_buffer_size) + " bytes)");
  return uv_error(UV_ENOBUFS);
}

void IOStream::fail_read(ReadStatus status, std::error_code error) {
  ReadDone done = take_read();
  spill_input();
  // Closing first: the reader sees a closed stream. On a stream that is already closed
  // (reading what it had buffered) this is a no-op but the read still fails.
  close(error);
  if (done) done(status, error, {});
}

void IOStream::fail_pending(std::error_code error) {
  if (read_op_ == ReadOp::none) return;
  // read_until_close ends normally when the peer or we close; a reset or a limit fails it.
  if (read_op_ == ReadOp::until_close && (!error || error == uv_error(UV_EOF))) {
    std::string_view rest = unread();
    std::string result;
    bool ok = true;
    if (read_state().streaming) {
      consume(rest.size());
      if (!rest.empty()) ok = run_streaming(rest);
    } else {
      result.assign(rest);
      consume(rest.size());
    }
    ReadDone done = take_read();
    spill_input();
    compact_buffer();
    if (done) {
      done(ok ? ReadStatus::ok : ReadStatus::closed, ok ? std::error_code() : error_,
           std::move(result));
    }
    return;
  }
  ReadDone done = take_read();
  if (done) done(ReadStatus::closed, error, {});
}

void IOStream::consume(std::size_t n) {
  if (!input_.empty()) {
    input_.remove_prefix(n);
  } else {
    buffer_pos_ += n;
  }
}

void IOStream::spill_input() {
  if (input_.empty()) return;
  if (buffer_pos_ == buffer_.size()) {
    buffer_.clear();
    buffer_pos_ = 0;
  }
  buffer_.append(input_);
  input_ = {};
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
    buffer_pos_ = 0;
  }
}

void IOStream::deliver(const char* data, std::size_t len) {
  // A transport may decode several chunks from one socket read; once a handler or a
  // failed read closed the stream, the rest has nobody to go to.
  if (closing_ || len == 0) return;
  if (data_handler_) {
    if (read_buffer_size() == 0 && !reading_paused_) {
      dispatch_raw(std::string_view(data, len));
      return;
    }
    // Older bytes wait in the buffer (paused, or not yet flushed after set_data_handler):
    // keep the order.
    buffer_.append(data, len);
    if (read_buffer_size() > options_.max_buffer_size) {
      close(buffer_overflow());
      return;
    }
    flush_raw();
    return;
  }
  if (read_buffer_size() == 0) {
    buffer_.clear();
    buffer_pos_ = 0;
    input_ = std::string_view(data, len);
  } else {
    buffer_.append(data, len);
  }
  // The pending read enforces max_buffer_size. Bytes left over after it completed are
  // pipelined data (at most one chunk) that no read asked for yet: not an overflow.
  try_complete_read();
  spill_input();
  // Read ahead with no read pending: stop at its bound (one chunk past it at most) until
  // a read takes some.
  if (read_ahead_ > 0 && read_op_ == ReadOp::none) maybe_update_reading();
}

void IOStream::dispatch_raw(std::string_view data) {
  DataHandler retired;
  retired_handler_ = &retired;
  try {
    data_handler_(data);
  } catch (const std::exception& e) {
    log::error("iostream", std::string("closing stream: data handler threw: ") + e.what());
    close(uv_error(UV_ECANCELED));
  } catch (...) {
    log::error("iostream", "closing stream: data handler threw");
    close(uv_error(UV_ECANCELED));
  }
  retired_handler_ = nullptr;
}

void IOStream::flush_raw() {
  while (data_handler_ && !reading_paused_ && !closing_ && read_buffer_size() > 0) {
    std::string pending = std::move(buffer_);
    buffer_ = std::string();
    pending.erase(0, buffer_pos_);
    buffer_pos_ = 0;
    dispatch_raw(pending);
  }
  maybe_deliver_eof();
}

void IOStream::on_transport_eof() {
  if (!eof_handler_ || !data_handler_) {
    close(uv_error(UV_EOF));
    return;
  }
  eof_received_ = true;
  maybe_deliver_eof();
}

void IOStream::maybe_deliver_eof() {
  if (!eof_received_ || eof_delivered_ || closing_ || read_buffer_size() > 0) return;
  eof_delivered_ = true;
  auto handler = std::move(eof_handler_);
  eof_handler_ = nullptr;
  try {
    handler();
  } catch (const std::exception& e) {
    log::error("iostream", std::string("closing stream: EOF handler threw: ") + e.what());
    close(uv_error(UV_EOF));
  } catch (...) {
    log::error("iostream", "closing stream: EOF handler threw");
    close(uv_error(UV_EOF));
  }
}

void IOStream::schedule_flush_raw() {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  // From the loop, so a handler is never entered from inside set_data_handler or
  // resume_reading, which its own code may be calling.
  loop_->add_callback([self = shared_from_this()] {
    self->flush_scheduled_ = false;
    self->flush_raw();
  });
}

void IOStream::set_data_handler(DataHandler handler) {
  if (handler && read_op_ != ReadOp::none) {
    throw std::logic_error("IOStream: raw mode while a read is pending");
  }
  // A handler replacing itself must not destroy the function that is running.
  if (retired_handler_ && !*retired_handler_) *retired_handler_ = std::move(data_handler_);
  data_handler_ = std::move(handler);
  // Raw mode has no read calls: the state of the last one (the server's preface sniff)
  // need not stay with an idle connection.
  if (data_handler_) read_.reset();
  // Bytes read ahead in buffered mode (an upgrade's first frames) come first.
  if (data_handler_ && read_buffer_size() > 0) schedule_flush_raw();
  maybe_update_reading();
}

void IOStream::pause_reading() {
  reading_paused_ = true;
  maybe_update_reading();
}

void IOStream::resume_reading() {
  reading_paused_ = false;
  if (data_handler_ && read_buffer_size() > 0) schedule_flush_raw();
  maybe_update_reading();
}

void IOStream::set_read_ahead(std::size_t limit) {
  read_ahead_ = std::min(limit, options_.max_buffer_size);
  maybe_update_reading();
}

void IOStream::maybe_update_reading() {
  bool want =
      !closing_ && !socket_ended_ &&
      (transport_wants_reads() || (!reading_paused_ && (data_handler_ || read_op_ != ReadOp::none ||
                                                        read_buffer_size() < read_ahead_)));
  if (want && !socket_reading_) {
    start_socket_reads();
  } else if (!want && socket_reading_) {
    stop_socket_reads();
  }
}

void IOStream::start_socket_reads() {
  if (closing_ || socket_reading_ || socket_ended_) return;
  int rc = uv_read_start(handle_, &IOStream::on_alloc, &IOStream::on_read);
  if (rc < 0) {
    close(uv_error(rc));
    return;
  }
  socket_reading_ = true;
}

void IOStream::read_now() {
  if (!socket_reading_ || closing_) return;
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(handle_), &fd) != 0) return;
  ssize_t n;
  do {
    n = ::read(fd, t_read_chunk, kReadChunk);
  } while (n < 0 && errno == EINTR);
  // Only bytes: after EOF or an error libuv's own read stops reading, which this could
  // not do for it; the socket stays readable, so the loop's read finds them next.
  if (n > 0) on_transport_data(t_read_chunk, static_cast<std::size_t>(n));
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
  } else if (nread < 0) {
    // libuv stops reading by itself after EOF or an error; restarting would fail.
    self->socket_reading_ = false;
    self->socket_ended_ = true;
    if (nread == UV_EOF) {
      self->on_transport_eof();
    } else {
      self->close(uv_error(static_cast<int>(nread)));
    }
  }
}

}  // namespace tronada
