#include "tronada/net/ssl_iostream.h"

#include <openssl/err.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "tronada/base/error.h"
#include "tronada/base/log.h"
#include "tronada/metrics/shared_region.h"

namespace tronada {

namespace {

// SSL_write input per call: four full records, few enough calls to be cheap.
constexpr std::size_t kEncryptChunk = 64 * 1024;
// Ciphertext handed to the socket in one send_raw once this much has gathered.
constexpr std::size_t kFlushAt = 256 * 1024;
// Plaintext gathered from SSL_read before it is delivered (one socket read's worth).
constexpr std::size_t kPlainChunk = 64 * 1024;
thread_local char t_plain[kPlainChunk];

class TLSCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "tls"; }
  std::string message(int code) const override {
    int lib = code >> 23;
    int reason = code & 0x7FFFFF;
    if (lib == ERR_LIB_SYS) return std::strerror(reason);
    const char* text = ERR_reason_error_string(ERR_PACK(lib, 0, reason));
    return text ? text : "TLS error " + std::to_string(code);
  }
};

class TLSVerifyCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "tls-verify"; }
  std::string message(int code) const override { return X509_verify_cert_error_string(code); }
};

// SSL_get_error reads the thread's error queue, so a failed call must not find errors
// left there by someone else. ERR_clear_error wipes all sixteen slots whether or not
// any is used (~800 instructions in OpenSSL 3, 1.3 % of an h2 request over TLS); the
// queue is nearly always empty, and looking costs a tenth of that.
inline void clear_stale_errors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

// Library and reason only: the packed form is what the category's message decodes.
int pack_error(unsigned long e) {
  return static_cast<int>((static_cast<unsigned long>(ERR_GET_LIB(e)) << 23) |
                          static_cast<unsigned long>(ERR_GET_REASON(e)));
}

}  // namespace

const std::error_category& tls_category() {
  static const TLSCategory category;
  return category;
}

const std::error_category& tls_verify_category() {
  static const TLSVerifyCategory category;
  return category;
}

SSLHandshakeError::SSLHandshakeError(std::error_code real_error, std::string message)
    : StreamClosedError(real_error), message_(std::move(message)) {}

// --- creation and lifetime ---------------------------------------------------

SSLIOStream::SSLIOStream(uv_stream_t* handle, std::shared_ptr<const detail::SSLContextState> state,
                         bool server_side, SSLIOStreamOptions options)
    : IOStream(handle, options.stream),
      state_(std::move(state)),
      server_side_(server_side),
      server_hostname_(std::move(options.server_hostname)) {}

std::shared_ptr<SSLIOStream> SSLIOStream::adopt(uv_stream_t* handle,
                                                std::shared_ptr<SSLContext> ctx, bool server_side,
                                                SSLIOStreamOptions options) {
  std::shared_ptr<SSLIOStream> stream(
      new SSLIOStream(handle, ctx ? ctx->snapshot() : nullptr, server_side, std::move(options)));
  keep_alive_until_closed(stream);
  try {
    if (!ctx) throw std::invalid_argument("SSLIOStream::adopt: no SSLContext");
    stream->start();
  } catch (...) {
    stream->close();
    throw;
  }
  return stream;
}

SSLIOStream::~SSLIOStream() {
  // The stream closed and libuv let go of it before the close watch looked (both within
  // one loop iteration): nobody may be left waiting on a handshake that cannot finish.
  if (phase_ == Phase::handshaking) {
    for (auto& p : handshake_waiters_) {
      p.try_set_exception(std::make_exception_ptr(
          SSLHandshakeError(uv_error(UV_ECANCELED), "TLS stream closed during the handshake")));
    }
  }
  // A watch the loop's own close() already closed (a loop torn down under an open
  // stream) is libuv's to forget; touching it would touch the freed loop.
  if (close_watch_ && !uv_is_closing(reinterpret_cast<uv_handle_t*>(close_watch_))) {
    unwatch_for_close();
  }
  if (ssl_) SSL_free(ssl_);
}

BIO_METHOD* SSLIOStream::bio_method() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tronada stream");
    BIO_meth_set_write(m, [](BIO* bio, const char* data, int len) -> int {
      auto* self = static_cast<SSLIOStream*>(BIO_get_data(bio));
      BIO_clear_retry_flags(bio);
      self->out_.append(data, static_cast<std::size_t>(len));
      return len;
    });
    BIO_meth_set_read(m, [](BIO* bio, char* out, int len) -> int {
      auto* self = static_cast<SSLIOStream*>(BIO_get_data(bio));
      BIO_clear_retry_flags(bio);
      std::size_t n = self->read_ciphertext(out, static_cast<std::size_t>(len));
      if (n == 0) {
        // Not EOF: more may come with the next read. EOF reaches us from libuv instead.
        BIO_set_retry_read(bio);
        return -1;
      }
      return static_cast<int>(n);
    });
    BIO_meth_set_ctrl(m, [](BIO* bio, int cmd, long, void*) -> long {
      auto* self = static_cast<SSLIOStream*>(BIO_get_data(bio));
      switch (cmd) {
        case BIO_CTRL_FLUSH:
          return 1;
        case BIO_CTRL_PENDING:
          return static_cast<long>(self->in_rest_.size() - self->in_rest_pos_ + self->in_len_);
        case BIO_CTRL_WPENDING:
          return 0;
        default:
          return 0;
      }
    });
    BIO_meth_set_create(m, [](BIO* bio) -> int {
      BIO_set_init(bio, 1);
      return 1;
    });
    return m;
  }();
  return method;
}

void SSLIOStream::start() {
  // Now, while the handle is open: a failure is often reported after libuv closed it.
  peer_ = peer_ip();
  if (peer_.empty()) peer_ = "peer";
  if (int port = peer_port()) peer_ += ":" + std::to_string(port);
  if (!server_hostname_.empty()) peer_ += " (" + server_hostname_ + ")";
  std::string session_key;
  if (!server_side_ && !server_hostname_.empty()) {
    session_key = server_hostname_ + ":" + std::to_string(peer_port());
  }
  ssl_ = detail::new_ssl(*state_, server_side_, server_hostname_, session_key);
  BIO* bio = BIO_new(bio_method());
  if (!bio) throw SSLContextError("cannot create a BIO: " + detail::openssl_errors());
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);
  watch_for_close();
  if (!server_side_) do_handshake();  // the client speaks first
  maybe_update_reading();
}

void SSLIOStream::watch_for_close() {
  close_watch_ = new uv_prepare_t;
  uv_prepare_init(loop_->uv(), close_watch_);
  close_watch_->data = this;
  uv_prepare_start(close_watch_, [](uv_prepare_t* h) {
    auto* self = static_cast<SSLIOStream*>(h->data);
    if (!self->closed()) return;
    std::error_code ec = self->error() ? self->error() : uv_error(UV_ECANCELED);
    self->handshake_failed(ec, "the connection was closed: " + ec.message());
  });
  // Only the stream's own handle should keep the loop running.
  uv_unref(reinterpret_cast<uv_handle_t*>(close_watch_));
}

void SSLIOStream::unwatch_for_close() {
  if (!close_watch_) return;
  close_watch_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(close_watch_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_prepare_t*>(h); });
  close_watch_ = nullptr;
}

// --- handshake -----------------------------------------------------------------

void SSLIOStream::do_handshake() {
  clear_stale_errors();
  int ret = SSL_do_handshake(ssl_);
  if (ret != 1) {
    int err = SSL_get_error(ssl_, ret);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
      fail_on_ssl_error(ret, "handshake");
      return;
    }
  }
  flush_ciphertext();
  if (closed()) {
    std::error_code ec = error() ? error() : uv_error(UV_ECANCELED);
    handshake_failed(ec, "cannot send the handshake: " + ec.message());
    return;
  }
  if (ret == 1) handshake_succeeded();
}

void SSLIOStream::handshake_succeeded() {
  phase_ = Phase::established;
  if (server_side_) {
    if (metrics::SharedRegion* r = metrics::current()) {
      r->own()->tls_handshakes.fetch_add(1, std::memory_order_relaxed);
    }
  }
  unwatch_for_close();
  maybe_update_reading();  // from now on the socket is read only for the application
  if (!pending_plain_.empty()) {
    std::string early = std::move(pending_plain_);
    pending_plain_.clear();
    std::string_view view(early);
    send_plain(&view, 1);
  }
  auto waiters = std::move(handshake_waiters_);
  handshake_waiters_.clear();
  for (auto& p : waiters) p.try_set_result();
  auto callbacks = std::move(handshake_callbacks_);
  handshake_callbacks_.clear();
  for (auto& cb : callbacks) {
    loop_->add_callback([weak = weak_from_this(), cb = std::move(cb)] {
      if (auto self = weak.lock()) cb();
    });
  }
}

void SSLIOStream::handshake_failed(std::error_code error, const std::string& reason) {
  if (phase_ != Phase::handshaking) return;
  phase_ = Phase::failed;
  if (server_side_) {
    if (metrics::SharedRegion* r = metrics::current()) {
      r->own()->tls_handshake_failures.fetch_add(1, std::memory_order_relaxed);
    }
  }
  unwatch_for_close();
  handshake_error_ = error;
  handshake_error_message_ = "TLS handshake with " + peer_ + " failed: " + reason;
  // A port scanner or a plaintext client on the TLS port is routine, not an incident.
  log::debug("tls", handshake_error_message_);
  pending_plain_.clear();
  close(error);
  auto waiters = std::move(handshake_waiters_);
  handshake_waiters_.clear();
  for (auto& p : waiters) {
    p.try_set_exception(
        std::make_exception_ptr(SSLHandshakeError(error, handshake_error_message_)));
  }
  handshake_callbacks_.clear();
}

Future<void> SSLIOStream::wait_for_handshake() {
  Promise<void> p(loop_);
  if (phase_ == Phase::handshaking && closed()) {
    handshake_failed(error() ? error() : uv_error(UV_ECANCELED), "the connection was closed");
  }
  switch (phase_) {
    case Phase::established:
      p.set_result();
      break;
    case Phase::failed:
      p.set_exception(
          std::make_exception_ptr(SSLHandshakeError(handshake_error_, handshake_error_message_)));
      break;
    case Phase::handshaking:
      handshake_waiters_.push_back(p);
      break;
  }
  return p.get_future();
}

void SSLIOStream::wait_for_handshake(HandshakeCallback cb) {
  if (phase_ == Phase::handshaking && !closed()) {
    handshake_callbacks_.push_back(std::move(cb));
  } else if (phase_ == Phase::established) {
    loop_->add_callback([weak = weak_from_this(), cb = std::move(cb)] {
      if (auto self = weak.lock()) cb();
    });
  }
}

void SSLIOStream::fail_on_ssl_error(int ret, const char* operation) {
  int err = SSL_get_error(ssl_, ret);
  unsigned long e = ERR_peek_error();
  long verify = SSL_get_verify_result(ssl_);
  std::error_code ec;
  std::string reason;
  if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED &&
      verify != X509_V_OK) {
    ec = std::error_code(static_cast<int>(verify), tls_verify_category());
    reason = "certificate verify failed: " + ec.message();
  } else if (e != 0) {
    ec = std::error_code(pack_error(e), tls_category());
    reason = ec.message();
  } else {
    ec = uv_error(UV_EPROTO);
    reason =
        "TLS " + std::string(operation) + " failed (SSL_get_error " + std::to_string(err) + ")";
  }
  ERR_clear_error();
  send_last_words();  // the alert we owe the peer
  if (phase_ == Phase::handshaking) {
    handshake_failed(ec, reason);
  } else if (!closed()) {
    log::debug("tls", "closing TLS stream with " + peer_ + ": " + reason);
    close(ec);
  }
}

// --- data ------------------------------------------------------------------------

std::size_t SSLIOStream::read_ciphertext(char* out, std::size_t len) {
  std::size_t n = 0;
  if (in_rest_pos_ < in_rest_.size()) {
    n = std::min(len, in_rest_.size() - in_rest_pos_);
    std::memcpy(out, in_rest_.data() + in_rest_pos_, n);
    in_rest_pos_ += n;
  }
  if (n < len && in_len_ > 0) {
    std::size_t m = std::min(len - n, in_len_);
    std::memcpy(out + n, in_data_, m);
    in_data_ += m;
    in_len_ -= m;
    n += m;
  }
  return n;
}

void SSLIOStream::on_transport_data(const char* data, std::size_t len) {
  if (in_rest_pos_ < in_rest_.size()) {
    in_rest_.append(data, len);
  } else {
    in_data_ = data;
    in_len_ = len;
  }
  if (phase_ == Phase::handshaking) do_handshake();
  if (phase_ == Phase::established && !closed()) read_plaintext();
  // OpenSSL takes everything it is offered unless the stream closed on the way; keep any
  // rest all the same, the lent chunk is gone after we return.
  if (in_len_ > 0 && !closed()) in_rest_.append(in_data_, in_len_);
  in_data_ = nullptr;
  in_len_ = 0;
  if (in_rest_pos_ >= in_rest_.size()) {
    std::string().swap(in_rest_);
    in_rest_pos_ = 0;
  }
}

void SSLIOStream::read_plaintext() {
  std::size_t used = 0;
  while (!closed()) {
    clear_stale_errors();
    int n = SSL_read(ssl_, t_plain + used, static_cast<int>(kPlainChunk - used));
    if (n > 0) {
      used += static_cast<std::size_t>(n);
      if (used == kPlainChunk) {
        deliver(t_plain, used);
        used = 0;
      }
      // Every byte lent is taken and OpenSSL holds no part of a record: another SSL_read
      // could only say WANT_READ, and with SSL_MODE_RELEASE_BUFFERS it would allocate
      // and free a 16 KiB record buffer to say it (a third of SSL_read's cost per
      // socket read).
      if (in_len_ == 0 && in_rest_pos_ >= in_rest_.size() && !SSL_has_pending(ssl_)) break;
      continue;
    }
    int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_READ) break;
    if (used) deliver(t_plain, used);
    used = 0;
    if (closed()) return;
    if (err == SSL_ERROR_ZERO_RETURN) {
      // close_notify: the peer sends nothing more. Answer with ours and end as at EOF.
      close_gracefully(uv_error(UV_EOF));
    } else {
      fail_on_ssl_error(n, "read");
    }
    return;
  }
  // Post-handshake messages can ask for an answer (a TLS 1.3 KeyUpdate, a refused
  // renegotiation's alert).
  if (!closed()) flush_ciphertext();
  if (used && !closed()) deliver(t_plain, used);
}

void SSLIOStream::on_transport_eof() {
  if (phase_ == Phase::handshaking) {
    handshake_failed(uv_error(UV_EOF), "the peer closed the connection");
    return;
  }
  if (phase_ == Phase::established) {
    log::debug("tls", "TLS peer " + peer_ + " closed without close_notify");
  }
  close(uv_error(UV_EOF));
}

void SSLIOStream::send_plain(const std::string_view* pieces, std::size_t count) {
  if (phase_ != Phase::established || encrypting_) {
    for (std::size_t i = 0; i < count; ++i) pending_plain_.append(pieces[i]);
    return;
  }
  encrypting_ = true;
  bool any = false;
  for (std::size_t i = 0; i < count && !closed(); ++i) {
    if (pieces[i].empty()) continue;
    encrypt(pieces[i].data(), pieces[i].size());
    any = true;
  }
  // A write of nothing completes like any other, once those before it have.
  if (!any && out_.empty() && !closed()) complete_written(0);
  // Flushing completes writes, whose callbacks may write again: those bytes waited in
  // pending_plain_ and go after ours.
  while (!closed()) {
    if (!pending_plain_.empty()) {
      std::string more = std::move(pending_plain_);
      pending_plain_.clear();
      encrypt(more.data(), more.size());
    } else if (!out_.empty()) {
      flush_ciphertext();
    } else {
      break;
    }
  }
  encrypting_ = false;
}

void SSLIOStream::encrypt(const char* data, std::size_t len) {
  while (len > 0 && !closed()) {
    std::size_t n = std::min(len, kEncryptChunk);
    // One allocation per chunk: records add at most 5 + 16 + 1 bytes to 16 KiB.
    out_.reserve(out_.size() + n + (n / 16384 + 1) * 32);
    clear_stale_errors();
    int ret = SSL_write(ssl_, data, static_cast<int>(n));
    if (ret <= 0) {
      fail_on_ssl_error(ret, "write");
      return;
    }
    data += ret;
    len -= static_cast<std::size_t>(ret);
    out_plain_ += static_cast<std::size_t>(ret);
    if (out_.size() >= kFlushAt) flush_ciphertext();
  }
}

void SSLIOStream::flush_ciphertext() {
  if (out_.empty()) return;
  // Swap out first: send_raw may complete writes whose callbacks write again, and their
  // records must not be appended to bytes already on their way. The buffer is not
  // kept: an idle connection should hold no ciphertext memory.
  std::string data;
  data.swap(out_);
  std::size_t plain = std::exchange(out_plain_, 0);
  std::string_view view(data);
  send_raw(&view, 1, plain);
}

// --- closing and queries ------------------------------------------------------------

void SSLIOStream::close_gracefully(std::error_code error) {
  if (closed()) return;
  if (phase_ == Phase::established && !close_notify_sent_) {
    close_notify_sent_ = true;
    ERR_clear_error();
    SSL_shutdown(ssl_);  // queues our close_notify; we do not wait for the peer's
    ERR_clear_error();
    send_last_words();
  }
  close(error);
}

void SSLIOStream::shutdown_write() {
  if (closed()) return;
  auto self = std::static_pointer_cast<SSLIOStream>(shared_from_this());
  // After the writes before it, and from the loop: a write callback can run inside
  // send_plain or flush_ciphertext, whose records must not be cut into.
  write_pieces(nullptr, 0, [self] {
    self->loop().add_callback([self] {
      if (self->closed()) return;
      if (self->phase_ == Phase::established && !self->close_notify_sent_) {
        self->close_notify_sent_ = true;
        ERR_clear_error();
        SSL_shutdown(self->ssl_);  // queues our close_notify; reading goes on
        ERR_clear_error();
        self->flush_ciphertext();
      }
      if (!self->closed()) self->IOStream::shutdown_write();
    });
  });
}

void SSLIOStream::send_last_words() {
  std::string data;
  data.swap(out_);
  out_plain_ = 0;
  // Written directly, not through send_raw: a peer that already left (EPIPE) would become
  // the reason the stream closed, hiding the TLS error, or failing the read_until_close
  // that a close_notify ends cleanly. Behind queued writes these bytes cannot go first,
  // and close() is about to cancel those anyway: the peer then rightly sees a
  // truncation.
  if (data.empty() || closed() || !handle() || handle()->write_queue_size != 0) return;
  uv_buf_t buf = uv_buf_init(data.data(), static_cast<unsigned>(data.size()));
  uv_try_write(handle(), &buf, 1);
}

std::string SSLIOStream::selected_alpn() const {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  if (ssl_) SSL_get0_alpn_selected(ssl_, &data, &len);
  return data ? std::string(reinterpret_cast<const char*>(data), len) : std::string();
}

std::string SSLIOStream::sni_hostname() const {
  if (!server_side_) return server_hostname_;
  const char* name = ssl_ ? SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name) : nullptr;
  return name ? name : "";
}

bool SSLIOStream::session_reused() const {
  return ssl_ && SSL_session_reused(ssl_) == 1;
}

bool SSLIOStream::close_notify_received() const {
  return ssl_ && (SSL_get_shutdown(ssl_) & SSL_RECEIVED_SHUTDOWN) != 0;
}

std::string SSLIOStream::tls_version() const {
  return phase_ == Phase::established ? SSL_get_version(ssl_) : "";
}

X509* SSLIOStream::peer_certificate() const {
  return ssl_ ? SSL_get0_peer_certificate(ssl_) : nullptr;
}

}  // namespace tronada
