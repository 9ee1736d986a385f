// IOStream: buffered, non-blocking reads and writes over a libuv stream (TCP, Unix
// socket, pipe), in callback and co_await forms.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <regex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "tronada/async/future.h"
#include "tronada/base/error.h"
#include "tronada/loop/io_loop.h"
#include "tronada/net/file_region.h"

namespace tronada {

/// Raised by a read or write on a stream that closed; `real_error` tells why (UV_EOF for
/// a clean close by the peer, a reset, a limit we enforced, or empty when we closed it).
class StreamClosedError : public std::runtime_error {
 public:
  explicit StreamClosedError(std::error_code real_error = {});
  std::error_code real_error;
};

/// Raised when a read cannot be satisfied within its max_bytes (read_until without the
/// delimiter in max_bytes). The stream is closed, as Tornado does.
class UnsatisfiableReadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Limits and tuning that every stream carries.
struct IOStreamOptions {
  /// Most bytes one read may need: a read whose result (or, for read_until_close without
  /// a streaming callback, whose data so far) would be larger closes the stream with
  /// UV_ENOBUFS, however the bytes arrived. Bytes read ahead past a completed read (at
  /// most one socket read's worth) are not counted. Partial reads return at most this
  /// much. Tornado's default is 100 MiB; ours is 64 MiB.
  std::size_t max_buffer_size = 64 * 1024 * 1024;
  /// Producers that await `drain()` wait while more than this many bytes are queued.
  std::size_t write_high_water = 1024 * 1024;
};

/// Whoever accepted a stream and wants to hear when it closes: TCPServer counts its open
/// connections so. Streams hold it by shared_ptr, so one acceptor serves every stream it
/// accepted and a stream costs no allocation of its own for it (a std::function capturing
/// a shared_ptr would allocate one per stream); an acceptor that goes away first
/// disconnects itself and stays behind, inert, until its last stream has closed.
class StreamAcceptor {
 public:
  virtual ~StreamAcceptor() = default;
  /// Runs once per accepted stream, after libuv closed its handle, before the stream's
  /// close callback.
  virtual void accepted_stream_closed() = 0;
};

namespace detail {
/// "192.0.2.1" from an IPv4 address in network byte order, as inet_ntop writes it.
std::string ipv4_text(std::uint32_t network_order);
}  // namespace detail

/// A stream of bytes between us and one peer, as Tornado's IOStream.
///
/// Reads: one read operation may be pending at a time (read_until, read_until_regex,
/// read_bytes, read_until_close, each with an optional streaming callback). The socket
/// is read only while an operation is pending, so a peer that sends faster than we
/// consume is held back by TCP flow control instead of our memory. Protocol connections
/// (HTTP/1, HTTP/2) use `set_data_handler` instead and get each chunk as it arrives,
/// without a copy.
///
/// Writes: `write` queues bytes and completes when they have left our buffer for the
/// kernel. Most writes finish at once through uv_try_write and cost no allocation.
///
/// Errors: in the co_await forms a read or write on a closed stream throws
/// StreamClosedError (a read that what is still buffered satisfies succeeds, as in
/// Tornado); in the callback forms the callback is not called and the close callback
/// runs instead (Tornado's callback-era contract). StreamClosedError::real_error is the
/// stream's error(): UV_EOF, a libuv error such as UV_ECONNRESET or UV_EPIPE, UV_ENOBUFS
/// over max_buffer_size, UV_ECANCELED after a callback threw, or empty after close().
/// Creating a stream sets SIGPIPE to ignored unless the program chose a disposition, so
/// a write to a vanished peer fails with UV_EPIPE instead of killing the process.
///
/// Lifetime: an IOStream owns one libuv stream handle and is always held by
/// shared_ptr. It keeps a reference to itself from creation until the handle's close
/// callback, so `close()` only requests teardown and the object outlives every libuv
/// callback that can still name it. The handle's memory is freed in the close callback.
class IOStream : public std::enable_shared_from_this<IOStream> {
 public:
  using ReadCallback = std::function<void(std::string)>;
  using StreamingCallback = std::function<void(std::string_view)>;
  using WriteCallback = std::function<void()>;
  using CloseCallback = std::function<void()>;
  using DataHandler = std::function<void(std::string_view)>;

  /// Takes ownership of an initialized, connected libuv stream (uv_tcp_t or uv_pipe_t
  /// allocated with `new`; freed with `delete` in the close callback).
  static std::shared_ptr<IOStream> adopt(uv_stream_t* handle, IOStreamOptions options = {});
  /// Wraps an open file descriptor: a connected socket or a pipe end (uv_pipe_open).
  static std::shared_ptr<IOStream> from_fd(int fd, IOStreamOptions options = {},
                                           IOLoop* loop = nullptr);

  virtual ~IOStream();
  IOStream(const IOStream&) = delete;
  IOStream& operator=(const IOStream&) = delete;

  // --- co_await forms ---
  /// Bytes up to and including `delimiter`. Without the delimiter in the first
  /// `max_bytes` bytes the stream closes and the read throws UnsatisfiableReadError.
  /// max_bytes 0 means no limit but max_buffer_size (beyond it: UV_ENOBUFS, closed).
  Future<std::string> read_until(std::string delimiter, std::size_t max_bytes = 0);
  Future<std::string> read_until_regex(std::regex pattern, std::size_t max_bytes = 0);
  /// Exactly `n` bytes, or with `partial` whatever is available as soon as there is any
  /// (at most n).
  Future<std::string> read_bytes(std::size_t n, bool partial = false);
  /// Everything until the peer closes (or we close the stream). With a streaming callback
  /// the data goes to it and the result is empty. A reset or a limit still fails the read.
  Future<std::string> read_until_close(StreamingCallback streaming = nullptr);
  /// Picks the overload above for a lambda taking std::string_view, which converts to
  /// both StreamingCallback and ReadCallback and would otherwise be ambiguous.
  template <typename F>
  requires std::is_invocable_v<F&, std::string_view> &&
      (!std::is_same_v<std::decay_t<F>, StreamingCallback>)&&(
          !std::is_same_v<std::decay_t<F>, ReadCallback>)
          Future<std::string> read_until_close(F&& streaming) {
    return read_until_close(StreamingCallback(std::forward<F>(streaming)));
  }
  /// `n` bytes delivered in pieces to `streaming` as they arrive; completes after the last.
  Future<std::string> read_bytes_streaming(std::size_t n, StreamingCallback streaming);
  Future<void> write(std::string data);
  /// Completes once the queued write bytes are at or below the high-water mark.
  Future<void> drain();

  // --- callback forms (the tour's read_until(delim, cb)) ---
  void read_until(std::string delimiter, ReadCallback cb, std::size_t max_bytes = 0);
  void read_until_regex(std::regex pattern, ReadCallback cb, std::size_t max_bytes = 0);
  void read_bytes(std::size_t n, ReadCallback cb, bool partial = false);
  void read_until_close(ReadCallback cb, StreamingCallback streaming = nullptr);
  void read_bytes_streaming(std::size_t n, StreamingCallback streaming, ReadCallback done);
  void write(std::string data, WriteCallback cb);
  /// Writes several pieces with one system call when possible (headers + body).
  void write_pieces(const std::string_view* pieces, std::size_t count, WriteCallback cb = nullptr);
  /// Sends `region` of a file after everything written before it and ahead of anything
  /// written after it. On a plain stream (TCP, Unix socket, pipe) the kernel copies the
  /// bytes with sendfile(2), never through our memory; a transport that must see them
  /// (TLS) gets them read in 64 KiB blocks. Either way the bytes are read on the loop
  /// thread, as sendfile does: from the page cache, for files served often. Until sent
  /// they count in write_buffer_size(), so drain() and write timeouts see them, and `cb`
  /// runs as for write_pieces. The region's file is held until it was sent or the stream
  /// closed. A file shorter than the region (truncated meanwhile) closes the stream with
  /// UV_EIO: a receiver must not take a cut body as whole.
  void write_file(FileRegion region, WriteCallback cb = nullptr);

  // --- raw mode for protocol connections ---
  /// Delivers every chunk read to `handler` without buffering; the view is valid only
  /// during the call. Anything already buffered is delivered first, from the loop. EOF
  /// and errors close the stream (the close callback tells); so does an exception thrown
  /// by the handler. Pass nullptr to return to buffered mode. The handler may replace or
  /// clear itself while it runs.
  void set_data_handler(DataHandler handler);
  /// Stops reading from the socket (backpressure) until resume_reading(). In raw mode no
  /// chunk reaches the handler while paused; bytes the transport already decoded wait in
  /// the read buffer and are delivered, from the loop, after resume_reading().
  void pause_reading();
  void resume_reading();
  /// Reads from the socket once, now, if the stream is reading, rather than waiting for
  /// the loop to report it readable. For a connection accepted from a deferred-accept
  /// listener, whose first bytes are there already: the request is answered in the
  /// accept callback, and a connection closed in the same turn is never registered with
  /// epoll at all. EOF and errors are left to the loop's read, which handles them.
  void read_now();
  /// Buffered mode: keep reading from the socket between reads while fewer than `limit`
  /// bytes wait in the read buffer (0: off, the default), rather than stop when a read
  /// completes and start again with the next. For a connection read again and again, as
  /// an upstream's responses: each stop and start cost two epoll_ctl calls. Keep `limit`
  /// small: bytes read ahead are not backpressure on the peer (one chunk more may come).
  /// EOF or an error arriving meanwhile closes the stream; what was buffered can still be
  /// read, as after any close.
  void set_read_ahead(std::size_t limit);
  /// Raw mode only: the peer's EOF (it shut down its sending side) calls `handler`, once
  /// every byte before it was delivered, instead of closing the stream, so the protocol
  /// can still answer what it received (a client that sends its request and then
  /// half-closes, as `nc -N` does). Writes go on; the handler decides when to close.
  /// Plain TCP streams only: over TLS an EOF still closes.
  void set_eof_handler(std::function<void()> handler) { eof_handler_ = std::move(handler); }
  /// The peer sent EOF (reads are over; writes may go on).
  bool eof_received() const { return eof_received_; }

  void set_close_callback(CloseCallback cb) { close_callback_ = std::move(cb); }
  /// Whoever accepted the stream, told when it closes (see StreamAcceptor), so the
  /// protocol on top can own set_close_callback.
  void set_acceptor(std::shared_ptr<StreamAcceptor> acceptor) { acceptor_ = std::move(acceptor); }
  /// Closes the stream; `error` is recorded as the reason (pending operations fail with
  /// it). Idempotent; the close callback runs once, from the loop, after libuv closed
  /// the handle.
  void close(std::error_code error = {});
  bool closed() const { return closing_; }
  std::error_code error() const { return error_; }

  bool reading() const { return read_op_ != ReadOp::none; }
  bool writing() const { return write_queued_ > 0; }
  std::size_t write_buffer_size() const { return write_queued_; }
  std::size_t read_buffer_size() const { return buffer_.size() - buffer_pos_ + input_.size(); }
  /// Heap bytes the read buffer holds (0 when idle: see the read buffer's comment).
  std::size_t buffered_capacity() const {
    return buffer_.capacity() > std::string().capacity() ? buffer_.capacity() : 0;
  }

  /// Ends our sending side once everything written so far has left, while reading goes
  /// on: the peer reads EOF after our last byte (the FIN of a lingering close). A plain
  /// stream shuts the socket down (uv_shutdown); SSLIOStream sends close_notify first.
  /// Call it once, when nothing more will be written; a no-op on a closed stream.
  virtual void shutdown_write();
  /// Bytes handed to the socket that the peer has not taken yet: libuv's queue plus what
  /// the kernel still holds (TIOCOUTQ; for TCP that counts sent but unacknowledged bytes
  /// too). A slow reader of one big write shows progress only here. One system call:
  /// for timeouts that check now and then, not for every write.
  std::size_t unsent_bytes() const;
  /// True if the socket has nothing to read, neither bytes nor an EOF (one recv with
  /// MSG_PEEK). For pooled idle connections, whose peers have nothing to say: anything
  /// readable means the peer closed or broke. False once closed.
  bool socket_quiet() const;
  /// TCP_NODELAY on TCP streams; a no-op on others.
  void set_nodelay(bool on);
  /// TCP_CORK on plaintext TCP streams (nginx's tcp_nopush); a no-op on others. Corked,
  /// the kernel holds partial segments, so a response head and the file behind it leave
  /// in full segments; uncorking pushes what is held, in this call.
  void set_cork(bool on);
  uv_stream_t* handle() { return handle_; }
  IOLoop& loop() { return *loop_; }
  const IOStreamOptions& options() const { return options_; }
  /// Peer address as text ("127.0.0.1", "::1", "unix") and port (0 if none).
  std::string peer_ip() const;
  int peer_port() const;
  /// Both at once (one getpeername call): ("unix", 0) over a Unix socket.
  std::pair<std::string, int> peer_address() const;
  /// Our end of the connection (one getsockname call): ("127.0.0.1", 8888), ("::1", 443),
  /// or the Unix socket's path and 0; ("", 0) once closed or if the system cannot say.
  std::pair<std::string, int> local_address() const;

 protected:
  IOStream(uv_stream_t* handle, IOStreamOptions options);
  /// For factories (adopt, a subclass's): the stream holds itself from now until its
  /// close callback, so callers may drop their references at any time.
  static void keep_alive_until_closed(const std::shared_ptr<IOStream>& stream) {
    stream->self_ = stream;
  }

  /// The transport layer: plaintext arriving from below (SSLIOStream decrypts first).
  virtual void on_transport_data(const char* data, std::size_t len) { deliver(data, len); }
  /// Plaintext going down; SSLIOStream encrypts before calling send_raw.
  virtual void send_plain(const std::string_view* pieces, std::size_t count);
  /// Hooks for SSLIOStream to learn about EOF before the stream closes.
  virtual void on_transport_eof();
  // Runs the EOF handler once the bytes read before the EOF reached the data handler.
  void maybe_deliver_eof();
  /// True while the transport itself needs socket reads (a TLS handshake in progress).
  virtual bool transport_wants_reads() const { return false; }
  /// Whether the socket carries plaintext as is, so that write_file may hand the kernel
  /// a file with sendfile(2); a transport that transforms bytes (TLS) says no.
  virtual bool transport_is_plaintext() const { return true; }
  /// Re-evaluates whether the socket should be read (after a handler, op or pause change).
  void maybe_update_reading();

  /// Hands plaintext to the pending read or the data handler.
  void deliver(const char* data, std::size_t len);
  /// Writes bytes to the socket: uv_try_write first, the rest queued with uv_write.
  /// `plain_bytes` is how many plaintext bytes these carry, for completion tracking.
  void send_raw(const std::string_view* pieces, std::size_t count, std::size_t plain_bytes);
  /// Marks `n` plaintext bytes as written and fires the write callbacks they complete.
  void complete_written(std::size_t n);
  void start_socket_reads();
  void stop_socket_reads();

  IOLoop* loop_;

 private:
  enum class ReadOp : std::uint8_t { none, until, regex, bytes, until_close };

  struct FileQueue;
  struct WriteWaiters;

  struct PendingWrite {
    std::uint64_t end_offset;  // plaintext offset at which this write is complete
    std::function<void(bool ok)> cb;
  };
  enum class ReadStatus { ok, closed, unsatisfiable };
  // Completion of the pending read; the error_code is the stream's error for `closed`.
  using ReadDone = std::function<void(ReadStatus, std::error_code, std::string&&)>;

  static void on_alloc(uv_handle_t* h, std::size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void on_closed(uv_handle_t* h);

  void begin_read(ReadOp op, ReadDone done);
  void start_until(std::string delimiter, std::size_t max_bytes, ReadDone done);
  void start_regex(std::regex pattern, std::size_t max_bytes, ReadDone done);
  void start_bytes(std::size_t n, bool partial, StreamingCallback streaming, ReadDone done);
  void start_until_close(StreamingCallback streaming, ReadDone done);
  static ReadDone future_completion(Promise<std::string> promise);
  ReadDone callback_completion(ReadCallback cb);
  /// Tries to complete the pending read from the buffer; true if it did (or failed it).
  bool try_complete_read();
  void finish_read(std::size_t consume);
  /// Completes a read_until(_regex) whose match ends after `n` bytes, within the limits.
  void finish_delimited(std::size_t n);
  /// Fails a read_until(_regex) that has no match yet if no match can be within limits.
  bool delimited_hopeless(std::size_t available);
  /// Logs why and returns UV_ENOBUFS.
  std::error_code buffer_overflow() const;
  /// Fails the pending read with `status` and closes the stream with `error`.
  void fail_read(ReadStatus status, std::error_code error);
  void fail_pending(std::error_code error);
  /// Ends the pending read and returns its completion, to be called last.
  ReadDone take_read();
  /// Runs the streaming callback; false if the read ended meanwhile (the callback closed
  /// the stream, or threw, which closes it).
  bool run_streaming(std::string_view piece);
  std::string_view unread() const {
    return input_.empty() ? std::string_view(buffer_).substr(buffer_pos_) : input_;
  }
  void consume(std::size_t n);
  void spill_input();
  void compact_buffer();
  void dispatch_raw(std::string_view data);
  /// send_plain, or, while a file region is being sent, queued behind it.
  void send_or_hold(const std::string_view* pieces, std::size_t count);
  /// Moves the file queue on: sends file regions and the writes held behind them until
  /// the socket is full (a libuv write's callback calls it again) or the queue is empty.
  void pump_files();
  /// Sends the region at the front; false while it waits for the socket.
  bool send_file_front();
  /// sendfile is out of reach (EAGAIN): a small block of the file goes through libuv's
  /// queue instead, whose completion tells us the socket can take more.
  void probe_with_block();
  static void on_write_done(uv_write_t* req, int status);
  void flush_raw();
  void schedule_flush_raw();

  uv_stream_t* handle_;
  IOStreamOptions options_;
  std::shared_ptr<IOStream> self_;  // held from creation until on_closed

  // Members are ordered so that the flags share one word: every byte here is paid by
  // each open connection, idle or not (project issue 18).

  // Read buffer: bytes [buffer_pos_, size) are unread. Empty and without capacity while
  // nothing is pending, so an idle connection costs no buffer memory.
  std::string buffer_;
  std::size_t buffer_pos_ = 0;
  // The chunk being delivered while buffer_ holds nothing unread: reads take their bytes
  // straight from it, and only what is left over is copied into buffer_ (spill_input).
  std::string_view input_;
  // A pending read's parameters and completion. Made by the first read call and kept:
  // streams in raw mode (data_handler_), like HTTP/1 server connections, never need it,
  // so an idle one saves its 128 bytes.
  struct ReadState {
    ReadDone done;
    StreamingCallback streaming;
    std::string delimiter;
    std::unique_ptr<std::regex> regex;
    std::size_t bytes = 0;  // wanted count, or max_bytes for until/regex
    bool partial = false;
    std::size_t delimiter_scanned = 0;  // unread bytes known not to start a delimiter
  };
  std::unique_ptr<ReadState> read_;
  ReadState& read_state() {
    if (!read_) read_ = std::make_unique<ReadState>();
    return *read_;
  }
  DataHandler data_handler_;
  // While the handler runs: where it goes if it replaces itself, so that it outlives its
  // own call. A pointer into dispatch_raw's frame costs idle streams 8 bytes, not 32.
  DataHandler* retired_handler_ = nullptr;
  std::function<void()> eof_handler_;

  // Write accounting in plaintext bytes: written_ of accepted_ have left our buffer.
  std::size_t write_queued_ = 0;
  std::uint64_t write_accepted_ = 0;
  std::uint64_t write_done_ = 0;
  // Writes with completions and drain() callers waiting: made by the first of them and
  // kept, null on streams that never had one (HTTP/1 server connections write without
  // completions), which saves idle streams 40 bytes.
  std::unique_ptr<WriteWaiters> waiters_;
  WriteWaiters& waiters();
  // File regions being sent and the writes queued behind them; null unless a file is on
  // its way, so streams that never send files pay one pointer.
  std::unique_ptr<FileQueue> files_;

  CloseCallback close_callback_;
  std::shared_ptr<StreamAcceptor> acceptor_;
  std::error_code error_;
  std::size_t read_ahead_ = 0;  // bytes to read ahead between buffered reads
  ReadOp read_op_ = ReadOp::none;
  bool flush_scheduled_ = false;
  bool reading_paused_ = false;
  bool socket_reading_ = false;
  bool socket_ended_ = false;  // libuv reported EOF or an error: it reads no more
  bool eof_received_ = false;
  bool eof_delivered_ = false;
  bool closing_ = false;
};

}  // namespace tronada
