// SSLIOStream: an IOStream that speaks TLS, OpenSSL driven through a memory BIO over the
// libuv stream.
#pragma once

#include <openssl/ssl.h>
#include <uv.h>

#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "tronada/async/future.h"
#include "tronada/net/iostream.h"
#include "tronada/net/ssl_context.h"

namespace tronada {

/// Error codes from OpenSSL's error queue (library and reason packed as ERR_PACK does);
/// messages are OpenSSL's reason strings ("wrong version number", "http request").
const std::error_category& tls_category();
/// Certificate verification results (X509_V_ERR_CERT_HAS_EXPIRED,
/// X509_V_ERR_HOSTNAME_MISMATCH, ...); messages from X509_verify_cert_error_string.
const std::error_category& tls_verify_category();

/// Raised by wait_for_handshake (and TCPClient::connect) when the TLS handshake fails.
/// A StreamClosedError, because the stream is closed by then: code that handles closed
/// streams handles this too. `real_error` is in tls_verify_category for a rejected
/// certificate, tls_category for a protocol failure, uv_category for a transport one;
/// what() tells the whole story ("TLS handshake with 127.0.0.1:8443 (localhost) failed:
/// certificate verify failed: certificate has expired").
class SSLHandshakeError : public StreamClosedError {
 public:
  SSLHandshakeError(std::error_code real_error, std::string message);
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

/// Per-stream settings.
struct SSLIOStreamOptions {
  IOStreamOptions stream;
  /// Client side: the name sent as SNI and checked against the server's certificate
  /// (a host name or an IP literal; IP literals are checked but not sent as SNI).
  std::string server_hostname;
};

/// An IOStream whose bytes are TLS records (Tornado's SSLIOStream). Reads and writes are
/// the plaintext API of IOStream; the handshake runs by itself, driven by incoming data,
/// and writes made before it finishes are sent once it has. Reads complete only after
/// the handshake.
///
/// OpenSSL never touches the socket: it reads ciphertext from the chunk libuv just
/// delivered (copied only if OpenSSL leaves part of it), and writes records into a
/// buffer that goes to the socket through IOStream::send_raw, which counts the plaintext
/// each carries so write completion and drain() work as on a plain stream.
///
/// Failures: a failed handshake closes the stream with the TLS error as `error()`,
/// logs one debug line, and fails wait_for_handshake with SSLHandshakeError. A protocol
/// error later (bad record, alert) closes the stream the same way; a close_notify from
/// the peer is a clean EOF, answered with ours. Renegotiation is refused (the context
/// sets SSL_OP_NO_RENEGOTIATION).
///
/// Lifetime: as every IOStream (it holds itself until libuv's close callback).
///
/// Closing: IOStream::close() is not virtual, so a plain close() sends no close_notify;
/// close_gracefully() does. A close by anyone during the handshake fails
/// wait_for_handshake before the loop next waits for I/O.
///
/// STARTTLS (upgrading a plain IOStream in place) is not offered: an IOStream cannot give
/// its libuv handle away without closing it. Streams that start plain and switch to TLS
/// need IOStream to grow a detach(); until then, build the SSLIOStream with adopt()
/// before any plaintext is exchanged.
class SSLIOStream : public IOStream {
 public:
  using HandshakeCallback = std::function<void()>;

  /// Takes ownership of an initialized, connected libuv stream (uv_tcp_t or uv_pipe_t
  /// allocated with `new`, as IOStream::adopt) and starts the handshake: a client sends
  /// its hello at once, a server waits for the client's. `server_side` must match the
  /// context's kind. The handle is owned by the stream even when this throws
  /// (std::invalid_argument for a client that verifies hostnames without
  /// options.server_hostname, SSLContextError if OpenSSL cannot set up the connection);
  /// it is then closed.
  static std::shared_ptr<SSLIOStream> adopt(uv_stream_t* handle, std::shared_ptr<SSLContext> ctx,
                                            bool server_side, SSLIOStreamOptions options = {});

  ~SSLIOStream() override;

  /// Completes when the handshake has; fails with SSLHandshakeError if it failed or the
  /// stream closed first. Any number of waiters; after the fact it completes at once.
  Future<void> wait_for_handshake();
  /// Callback form: `cb` runs from the loop after a successful handshake; after a
  /// failure it does not, and the close callback reports (IOStream's callback contract).
  void wait_for_handshake(HandshakeCallback cb);
  bool handshake_done() const { return phase_ == Phase::established; }

  /// The protocol ALPN agreed on ("h2", "http/1.1"), or "" if none (or no handshake yet).
  std::string selected_alpn() const;
  /// Server side: the name the client asked for with SNI, or "". Client side: the name
  /// we sent.
  std::string sni_hostname() const;
  /// True if the handshake resumed an earlier session (ticket or session cache).
  bool session_reused() const;
  /// True once the peer sent close_notify: its data ended on purpose, not truncated by a
  /// dropped connection (what a reader of HTTP/1.0 bodies until EOF needs to know).
  bool close_notify_received() const;
  /// "TLSv1.3", "TLSv1.2"; "" before the handshake.
  std::string tls_version() const;
  /// The peer's certificate (a client's only if the server asked for one), or nullptr.
  /// Borrowed: valid while the stream lives.
  X509* peer_certificate() const;

  /// Sends close_notify, then closes. Prefer it to close() when ending a connection on
  /// purpose: a peer reading until EOF (HTTP/1.0 bodies) can then tell our end from a
  /// truncation. IOStream::close() is not virtual, so close() alone cannot send it.
  void close_gracefully(std::error_code error = {});

  /// Once everything written so far has left: close_notify, then the socket's FIN, so
  /// the peer reads a clean end after the last record while we go on reading (until its
  /// close_notify or EOF closes the stream). Before the handshake completed there is no
  /// session to end: only the FIN.
  void shutdown_write() override;

  bool server_side() const { return server_side_; }
  SSL* native_handle() { return ssl_; }

 protected:
  void on_transport_data(const char* data, std::size_t len) override;
  void send_plain(const std::string_view* pieces, std::size_t count) override;
  void on_transport_eof() override;
  bool transport_wants_reads() const override { return phase_ == Phase::handshaking; }
  // File regions must be encrypted: write_file reads them instead of sendfile.
  bool transport_is_plaintext() const override { return false; }

 private:
  enum class Phase { handshaking, established, failed };

  SSLIOStream(uv_stream_t* handle, std::shared_ptr<const detail::SSLContextState> state,
              bool server_side, SSLIOStreamOptions options);
  static BIO_METHOD* bio_method();

  void start();
  void do_handshake();
  void handshake_succeeded();
  void handshake_failed(std::error_code error, const std::string& reason);
  void fail_on_ssl_error(int ret, const char* operation);
  void read_plaintext();
  void encrypt(const char* data, std::size_t len);
  void flush_ciphertext();
  /// Best effort for the bytes that precede a close (an alert, our close_notify).
  void send_last_words();
  std::size_t read_ciphertext(char* out, std::size_t len);
  void watch_for_close();
  void unwatch_for_close();

  std::shared_ptr<const detail::SSLContextState> state_;
  SSL* ssl_ = nullptr;
  bool server_side_;
  std::string server_hostname_;
  std::string peer_;  // "127.0.0.1:443 (example.com)", for messages
  Phase phase_ = Phase::handshaking;
  bool close_notify_sent_ = false;
  bool encrypting_ = false;

  // Ciphertext in: the chunk being processed is lent by IOStream for the duration of
  // on_transport_data; only what OpenSSL leaves of it is copied to in_rest_.
  const char* in_data_ = nullptr;
  std::size_t in_len_ = 0;
  std::string in_rest_;
  std::size_t in_rest_pos_ = 0;
  // Ciphertext out, not yet handed to send_raw, and how much plaintext it carries.
  std::string out_;
  std::size_t out_plain_ = 0;
  // Plaintext written before the handshake finished, or while encrypting (a write
  // callback that writes again must not cut into the records of the write in progress).
  std::string pending_plain_;

  std::vector<Promise<void>> handshake_waiters_;
  std::vector<HandshakeCallback> handshake_callbacks_;
  std::error_code handshake_error_;
  std::string handshake_error_message_;

  // IOStream::close() is not virtual and has no hook, so a close by someone else during
  // the handshake (a read error, the owner, a timeout) is noticed by this prepare handle,
  // which checks before each poll: before the loop can block, so no waiter hangs.
  // Owned by the stream while the handshake runs; after uv_close it frees itself in its
  // close callback.
  uv_prepare_t* close_watch_ = nullptr;
};

}  // namespace tronada
