// IOStream: creation, the write side (uv_try_write first, the queue, file regions),
// closing and the socket queries. The read side is in iostream_read.cpp.
#include "tronada/net/iostream.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <limits>

#include "tronada/base/error.h"
#include "tronada/base/log.h"

namespace tronada {

namespace {

std::string describe(std::error_code ec) {
  if (!ec) return "stream closed";
  return "stream closed: " + ec.message();
}

void delete_handle(uv_handle_t* h) {
  switch (h->type) {
    case UV_TCP:
      delete reinterpret_cast<uv_tcp_t*>(h);
      break;
    case UV_NAMED_PIPE:
      delete reinterpret_cast<uv_pipe_t*>(h);
      break;
    case UV_TTY:
      delete reinterpret_cast<uv_tty_t*>(h);
      break;
    default:
      log::error("iostream", "deleting a handle of unexpected type");
      break;
  }
}

// The bytes of a queued uv_write, owned by the request until its callback runs (even
// with UV_ECANCELED), since libuv reads them until then.
struct WriteReq {
  uv_write_t req;
  IOStream* stream;
  std::string data;
  std::size_t plain_bytes;
  bool probe = false;  // a block of a file sent in place of sendfile (probe_with_block)
};

// write_file over a transport that must see the bytes (TLS): blocks this big are read and
// handed down while libuv holds less than kFileReadAhead of them.
constexpr std::size_t kFileBlock = 64 * 1024;
constexpr std::size_t kFileReadAhead = 256 * 1024;
// Sent through libuv's queue when sendfile meets a full socket: small, since its only job
// is to have libuv tell us when the socket drains.
constexpr std::size_t kProbeBlock = 16 * 1024;
// One sendfile call sends at most this much (the kernel's own cap is about 2 GiB).
constexpr std::size_t kSendfileMax = 1u << 30;

// The blocks read for a transport that must see a file's bytes; one per thread, since a
// block is handed down (and copied by the transport) before the next is read.
thread_local std::unique_ptr<char[]> t_file_block;

ssize_t pread_retrying(int fd, char* buf, std::size_t n, std::uint64_t offset) {
  for (;;) {
    ssize_t r = ::pread(fd, buf, n, static_cast<off_t>(offset));
    if (r >= 0 || errno != EINTR) return r;
  }
}

// A write to a peer that is gone must fail that one stream with UV_EPIPE, not kill the
// process with SIGPIPE (libuv writes with write(2), without MSG_NOSIGNAL). Node and
// CPython ignore SIGPIPE for the same reason; a handler the program installed is kept.
void ignore_sigpipe_once() {
  static const bool done = [] {
    struct sigaction current {};
    if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
      signal(SIGPIPE, SIG_IGN);
    }
    return true;
  }();
  (void)done;
}

}  // namespace

/// What write_file queued: file regions and, behind the first, the writes that must wait
/// for it. The front item is the one being sent.
struct IOStream::FileQueue {
  struct Item {
    FileRegion file;    // a region (file set), or
    std::string bytes;  // plaintext written behind a region, already counted as accepted
  };
  std::deque<Item> items;
  bool pumping = false;   // inside pump_files (it is re-entered through callbacks)
  bool probing = false;   // a probe block is in libuv's queue
  bool buffered = false;  // read and send_plain, not sendfile
};

/// Writes whose completion someone waits for, and drain() callers.
struct IOStream::WriteWaiters {
  std::vector<PendingWrite> writes;  // rarely more than one
  std::vector<Promise<void>> drains;
};

IOStream::WriteWaiters& IOStream::waiters() {
  if (!waiters_) waiters_ = std::make_unique<WriteWaiters>();
  return *waiters_;
}

StreamClosedError::StreamClosedError(std::error_code ec)
    : std::runtime_error(describe(ec)), real_error(ec) {}

std::shared_ptr<IOStream> IOStream::adopt(uv_stream_t* handle, IOStreamOptions options) {
  // One allocation for the stream and its shared_ptr control block (the constructor is
  // protected, hence the subclass). Weak references then keep the memory, not the
  // object, until they go too; nothing holds those for long.
  struct Adopted final : IOStream {
    Adopted(uv_stream_t* h, IOStreamOptions o) : IOStream(h, o) {}
  };
  std::shared_ptr<IOStream> s = std::make_shared<Adopted>(handle, options);
  keep_alive_until_closed(s);
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
  ignore_sigpipe_once();
}

IOStream::~IOStream() = default;

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
  waiters().writes.push_back({write_accepted_, [this, p](bool ok) mutable {
                                if (ok) {
                                  p.try_set_result();
                                } else {
                                  p.try_set_exception(
                                      std::make_exception_ptr(StreamClosedError(error_)));
                                }
                              }});
  send_or_hold(&view, 1);
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
    waiters().writes.push_back({write_accepted_, [this, cb = std::move(cb)](bool ok) mutable {
                                  if (!ok)
                                    return;  // the close callback reports the error in this form
                                  loop_->add_callback(
                                      [self = shared_from_this(), cb = std::move(cb)] { cb(); });
                                }});
  }
  send_or_hold(pieces, count);
}

void IOStream::write_file(FileRegion region, WriteCallback cb) {
  if (closing_) return;
  if (!region.file) throw std::invalid_argument("IOStream::write_file: no file");
  write_accepted_ += region.length;
  write_queued_ += region.length;
  if (cb) {
    waiters().writes.push_back({write_accepted_, [this, cb = std::move(cb)](bool ok) mutable {
                                  if (!ok) return;
                                  loop_->add_callback(
                                      [self = shared_from_this(), cb = std::move(cb)] { cb(); });
                                }});
  }
  if (!files_) {
    files_ = std::make_unique<FileQueue>();
    files_->buffered = !transport_is_plaintext() || handle_->type == UV_TTY;
  }
  files_->items.push_back({std::move(region), {}});
  pump_files();
}

void IOStream::send_or_hold(const std::string_view* pieces, std::size_t count) {
  if (!files_ || files_->items.empty()) {
    send_plain(pieces, count);
    return;
  }
  // Behind a file region: these bytes leave after it (the accounting already has them).
  auto& items = files_->items;
  if (items.back().file.file) items.push_back({});
  for (std::size_t i = 0; i < count; ++i) items.back().bytes.append(pieces[i]);
}

void IOStream::pump_files() {
  if (!files_ || files_->pumping) return;
  files_->pumping = true;
  while (!closing_ && !files_->items.empty()) {
    FileQueue::Item& front = files_->items.front();
    if (!front.file.file) {
      // Writes that waited behind a region that is out now.
      std::string bytes = std::move(front.bytes);
      files_->items.pop_front();
      std::string_view view(bytes);
      send_plain(&view, 1);
      continue;
    }
    if (!send_file_front()) break;
    if (!closing_) files_->items.pop_front();
  }
  files_->pumping = false;
  // Nothing left to send (or the stream closed under us): the queue and the files it
  // held go, so an idle stream holds no file open.
  if (closing_ || (files_->items.empty() && !files_->probing)) files_.reset();
}

bool IOStream::send_file_front() {
  FileQueue& q = *files_;
  // sendfile writes to the socket directly: the bytes written before the region must
  // have reached the kernel first. (Blocks read for a transport go through send_plain,
  // which keeps the order itself.)
  if (q.probing || (!q.buffered && handle_->write_queue_size > 0)) return false;
  uv_os_fd_t out = -1;
  if (!q.buffered && uv_fileno(reinterpret_cast<uv_handle_t*>(handle_), &out) != 0) {
    q.buffered = true;
  }
  for (;;) {
    // A callback run by complete_written may have closed the stream.
    if (closing_) return false;
    FileRegion& region = q.items.front().file;
    if (region.length == 0) return true;
    int in = region.file->fd();
    if (q.buffered) {
      if (handle_->write_queue_size >= kFileReadAhead) return false;
      if (!t_file_block) t_file_block = std::make_unique<char[]>(kFileBlock);
      std::size_t want =
          static_cast<std::size_t>(std::min<std::uint64_t>(region.length, kFileBlock));
      ssize_t n = pread_retrying(in, t_file_block.get(), want, region.offset);
      if (n <= 0) {
        close(n == 0 ? uv_error(UV_EIO) : uv_error(-errno));
        return false;
      }
      region.offset += static_cast<std::uint64_t>(n);
      region.length -= static_cast<std::uint64_t>(n);
      std::string_view block(t_file_block.get(), static_cast<std::size_t>(n));
      send_plain(&block, 1);  // counts as written when the transport's bytes are out
      continue;
    }
    off_t offset = static_cast<off_t>(region.offset);
    std::size_t want =
        static_cast<std::size_t>(std::min<std::uint64_t>(region.length, kSendfileMax));
    ssize_t n = ::sendfile(out, in, &offset, want);
    if (n > 0) {
      region.offset += static_cast<std::uint64_t>(n);
      region.length -= static_cast<std::uint64_t>(n);
      complete_written(static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0) {
      // The file ended before the region did: it was truncated after it was opened.
      close(uv_error(UV_EIO));
      return false;
    }
    int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) {
      probe_with_block();
      return false;
    }
    if (err == EINVAL || err == ENOSYS || err == EOPNOTSUPP) {
      // A file system (or socket type) sendfile cannot read from: read it ourselves.
      q.buffered = true;
      continue;
    }
    close(uv_error(-err));
    return false;
  }
}

void IOStream::probe_with_block() {
  FileRegion& region = files_->items.front().file;
  std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(region.length, kProbeBlock));
  auto req = std::make_unique<WriteReq>(WriteReq{{}, this, std::string(want, '\0'), 0, true});
  ssize_t n = pread_retrying(region.file->fd(), req->data.data(), want, region.offset);
  if (n <= 0) {
    close(n == 0 ? uv_error(UV_EIO) : uv_error(-errno));
    return;
  }
  req->data.resize(static_cast<std::size_t>(n));
  req->plain_bytes = static_cast<std::size_t>(n);
  region.offset += static_cast<std::uint64_t>(n);
  region.length -= static_cast<std::uint64_t>(n);
  req->req.data = req.get();
  uv_buf_t buf = uv_buf_init(req->data.data(), static_cast<unsigned>(req->data.size()));
  int rc = uv_write(&req->req, handle_, &buf, 1, &IOStream::on_write_done);
  if (rc < 0) {
    close(uv_error(rc));
    return;
  }
  req.release();  // owned by libuv until on_write_done
  files_->probing = true;
}

Future<void> IOStream::drain() {
  Promise<void> p(loop_);
  if (closing_) {
    p.set_exception(std::make_exception_ptr(StreamClosedError(error_)));
  } else if (write_queued_ <= options_.write_high_water) {
    p.set_result();
  } else {
    waiters().drains.push_back(p);
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
  std::size_t total = 0;
  for (std::size_t i = 0; i < count; ++i) total += pieces[i].size();
  std::size_t written = 0;
  // uv_try_write only with nothing queued in libuv, or these bytes would overtake those.
  if (total > 0 && handle_->write_queue_size == 0 && count <= kMaxPieces) {
    uv_buf_t bufs[kMaxPieces];
    for (std::size_t i = 0; i < count; ++i) {
      bufs[i] =
          uv_buf_init(const_cast<char*>(pieces[i].data()), static_cast<unsigned>(pieces[i].size()));
    }
    int rc = uv_try_write(handle_, bufs, static_cast<unsigned>(count));
    if (rc >= 0) {
      written = static_cast<std::size_t>(rc);
    } else if (rc != UV_EAGAIN && rc != UV_ENOSYS) {
      close(uv_error(rc));
      return;
    }
  }
  if (written == total) {
    // Also for an empty write, which completes once everything before it has.
    complete_written(plain_bytes);
    return;
  }
  // Plaintext maps byte for byte, so what the kernel took counts now (write_buffer_size,
  // drain). A transport's bytes do not: its plaintext counts when all of them are out.
  std::size_t plain_now = plain_bytes == total ? written : 0;
  // The kernel took only part: queue the rest, owned by the request until its callback.
  auto* req = new WriteReq{{}, this, {}, plain_bytes - plain_now};
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
  req->req.data = req;
  uv_buf_t buf = uv_buf_init(req->data.data(), static_cast<unsigned>(req->data.size()));
  int rc = uv_write(&req->req, handle_, &buf, 1, &IOStream::on_write_done);
  if (rc < 0) {
    delete req;
    close(uv_error(rc));
    return;
  }
  // Only now that the rest is queued: a callback fired here may write again, and must
  // not get ahead of it through uv_try_write.
  if (plain_now) complete_written(plain_now);
}

void IOStream::on_write_done(uv_write_t* r, int status) {
  std::unique_ptr<WriteReq> owned(static_cast<WriteReq*>(r->data));
  IOStream* self = owned->stream;  // alive: the handle (and self_) outlive its requests
  if (owned->probe && self->files_) self->files_->probing = false;
  if (status < 0) {
    if (status != UV_ECANCELED) self->close(uv_error(status));
    return;
  }
  self->complete_written(owned->plain_bytes);
  // libuv's queue moved: a file region waiting for it may go on.
  if (self->files_ && !self->closing_) self->pump_files();
}

void IOStream::complete_written(std::size_t n) {
  write_done_ += n;
  write_queued_ -= std::min(write_queued_, n);
  if (!waiters_) return;
  auto& writes = waiters_->writes;
  std::size_t fired = 0;
  while (fired < writes.size() && writes[fired].end_offset <= write_done_) ++fired;
  if (fired) {
    // Out of the vector first: a callback may write (append) or close (clear).
    std::vector<PendingWrite> done(std::make_move_iterator(writes.begin()),
                                   std::make_move_iterator(writes.begin() + fired));
    writes.erase(writes.begin(), writes.begin() + fired);
    for (auto& w : done) w.cb(true);
  }
  // waiters_ is never reset once made, so it is still there after the callbacks.
  if (write_queued_ <= options_.write_high_water && !waiters_->drains.empty()) {
    auto drains = std::move(waiters_->drains);
    waiters_->drains.clear();
    for (auto& p : drains) p.try_set_result();
  }
}

// --- closing ---------------------------------------------------------------

void IOStream::close(std::error_code error) {
  if (closing_) return;
  closing_ = true;
  error_ = error;
  stop_socket_reads();
  fail_pending(error);
  // Writes that cannot complete now fail: co_await forms get StreamClosedError,
  // callback forms are simply not called (the close callback reports the error).
  write_queued_ = 0;
  if (waiters_) {
    auto writes = std::move(waiters_->writes);
    waiters_->writes.clear();
    for (auto& w : writes) w.cb(false);
    auto drains = std::move(waiters_->drains);
    waiters_->drains.clear();
    for (auto& p : drains) p.try_set_exception(std::make_exception_ptr(StreamClosedError(error)));
  }
  // The files queued for sending are let go (pump_files does it if it is running).
  if (files_ && !files_->pumping) files_.reset();
  uv_close(reinterpret_cast<uv_handle_t*>(handle_), &IOStream::on_closed);
}

void IOStream::on_closed(uv_handle_t* h) {
  auto* self = static_cast<IOStream*>(h->data);
  self->handle_ = nullptr;
  delete_handle(h);
  // Keep ourselves alive through the callback; the last reference may go with `keep`.
  std::shared_ptr<IOStream> keep = std::move(self->self_);
  auto acceptor = std::move(self->acceptor_);
  auto cb = std::move(self->close_callback_);
  self->close_callback_ = nullptr;
  self->data_handler_ = nullptr;
  self->eof_handler_ = nullptr;
  if (acceptor) {
    IOLoop::invoke_logged("close callback", [&] { acceptor->accepted_stream_closed(); });
  }
  if (cb) IOLoop::invoke_logged("close callback", cb);
}

void IOStream::shutdown_write() {
  if (closing_) return;
  auto shut_down = [self = shared_from_this()] {
    if (self->closing_) return;
    auto* req = new uv_shutdown_t;
    // Runs even when the handle closes first (UV_ECANCELED); it must not touch the stream.
    int rc = uv_shutdown(req, self->handle_, [](uv_shutdown_t* r, int) { delete r; });
    if (rc < 0) delete req;
  };
  if (write_queued_ == 0) {
    shut_down();
  } else {
    // uv_shutdown waits for libuv's queue only, not for a file region the stream sends
    // itself (write_file): shut down once everything written has left.
    write_pieces(nullptr, 0, std::move(shut_down));
  }
}

std::size_t IOStream::unsent_bytes() const {
  // libuv only writes when the kernel has room, so a client that drains a full kernel
  // buffer slowly shows no progress in libuv's queue alone: ask the kernel too.
  if (!handle_) return 0;
  std::size_t n = handle_->write_queue_size;
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<const uv_handle_t*>(handle_), &fd) == 0) {
    int kernel = 0;
    if (ioctl(fd, TIOCOUTQ, &kernel) == 0 && kernel > 0) n += static_cast<std::size_t>(kernel);
  }
  return n;
}

bool IOStream::socket_quiet() const {
  if (closing_ || !handle_) return false;
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<const uv_handle_t*>(handle_), &fd) != 0) return false;
  char byte;
  ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

void IOStream::set_nodelay(bool on) {
  if (handle_ && handle_->type == UV_TCP) {
    uv_tcp_nodelay(reinterpret_cast<uv_tcp_t*>(handle_), on ? 1 : 0);
  }
}

void IOStream::set_cork(bool on) {
  uv_os_fd_t fd = -1;
  if (closing_ || !handle_ || handle_->type != UV_TCP || !transport_is_plaintext() ||
      uv_fileno(reinterpret_cast<uv_handle_t*>(handle_), &fd) != 0) {
    return;
  }
  int value = on ? 1 : 0;
  ::setsockopt(fd, IPPROTO_TCP, TCP_CORK, &value, sizeof value);
}

std::string IOStream::peer_ip() const {
  return peer_address().first;
}

int IOStream::peer_port() const {
  return peer_address().second;
}

namespace {

// Dotted quad by hand: the C library's inet_ntop formats IPv4 with sprintf, about 1,700
// instructions, and every accepted connection asks once (a tenth of a short connection's
// userland cost).
std::size_t format_ipv4(const in_addr& a, char* out) {
  const auto* b = reinterpret_cast<const unsigned char*>(&a.s_addr);  // network order
  char* p = out;
  for (int i = 0; i < 4; ++i) {
    unsigned v = b[i];
    if (v >= 100) *p++ = static_cast<char>('0' + v / 100);
    if (v >= 10) *p++ = static_cast<char>('0' + v / 10 % 10);
    *p++ = static_cast<char>('0' + v % 10);
    if (i < 3) *p++ = '.';
  }
  return static_cast<std::size_t>(p - out);
}

}  // namespace

namespace detail {
std::string ipv4_text(std::uint32_t network_order) {
  in_addr a{};
  a.s_addr = network_order;
  char buf[INET_ADDRSTRLEN];
  return std::string(buf, format_ipv4(a, buf));
}
}  // namespace detail

namespace {

// ("127.0.0.1", 8888) from a socket address; ("", 0) for a family without one.
std::pair<std::string, int> ip_and_port(const sockaddr_storage& addr) {
  char ip[INET6_ADDRSTRLEN] = {};
  int port = 0;
  if (addr.ss_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    port = ntohs(in->sin_port);
    return {std::string(ip, format_ipv4(in->sin_addr, ip)), port};
  } else if (addr.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    uv_ip6_name(in6, ip, sizeof ip);
    port = ntohs(in6->sin6_port);
  }
  return {ip, port};
}

}  // namespace

std::pair<std::string, int> IOStream::peer_address() const {
  if (!handle_) return {"", 0};
  if (handle_->type != UV_TCP) return {"unix", 0};
  sockaddr_storage addr{};
  int len = sizeof addr;
  if (uv_tcp_getpeername(reinterpret_cast<const uv_tcp_t*>(handle_),
                         reinterpret_cast<sockaddr*>(&addr), &len) < 0) {
    return {"", 0};
  }
  return ip_and_port(addr);
}

std::pair<std::string, int> IOStream::local_address() const {
  if (!handle_) return {"", 0};
  if (handle_->type == UV_NAMED_PIPE) {
    // An accepted Unix socket reports the path its listener is bound to.
    char path[256];
    std::size_t len = sizeof path;
    if (uv_pipe_getsockname(reinterpret_cast<const uv_pipe_t*>(handle_), path, &len) < 0) {
      return {"", 0};
    }
    return {std::string(path, len), 0};
  }
  if (handle_->type != UV_TCP) return {"", 0};
  sockaddr_storage addr{};
  int len = sizeof addr;
  if (uv_tcp_getsockname(reinterpret_cast<const uv_tcp_t*>(handle_),
                         reinterpret_cast<sockaddr*>(&addr), &len) < 0) {
    return {"", 0};
  }
  return ip_and_port(addr);
}

}  // namespace tronada
