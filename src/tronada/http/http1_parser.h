// Sans-I/O HTTP/1.1 request parsing: bytes in, request events out, no sockets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "tronada/http/chunk_line.h"
#include "tronada/http/http_headers.h"

namespace tronada {

/// The request line: method, raw request-target and protocol version.
struct RequestStartLine {
  std::string method;  // one llhttp knows, e.g. "GET", "PROPFIND"
  std::string target;  // exactly as sent: origin-form, absolute-form, authority-form or "*"
  int version_major = 1;
  int version_minor = 1;
};

/// What the parser derived from the header section, so the connection need not re-parse it.
struct RequestInfo {
  /// Whether the connection may carry another request after this one (llhttp's
  /// should_keep_alive: HTTP/1.1 unless "Connection: close", HTTP/1.0 only with keep-alive).
  bool keep_alive = false;
  /// The body uses the chunked transfer coding.
  bool chunked = false;
  /// The Content-Length, if the request had one (never together with `chunked`).
  std::optional<uint64_t> content_length;
  /// "Expect: 100-continue" on an HTTP/1.1 request (RFC 9110 says HTTP/1.0 ones are ignored).
  bool expect_continue = false;
  /// The request asks to switch protocols: "Upgrade" with "Connection: upgrade", or CONNECT.
  bool upgrade = false;

  bool has_body() const { return chunked || content_length.value_or(0) > 0; }
};

/// What the delegate wants done once it has seen the header section.
enum class HeadersAction {
  /// Read exactly the body the headers announce. For an upgrade request feed() then stops
  /// after the message with FeedStatus::kUpgrade.
  kContinue,
  /// Serve an upgrade request (or CONNECT) as a plain HTTP request; parsing goes on after it
  /// as for any other request. RFC 9110 section 7.8 lets a server ignore Upgrade.
  kDeclineUpgrade,
};

/// Receives the events of one request at a time, in this order:
/// on_headers, on_body (zero or more times), on_trailers (chunked requests that had
/// trailer fields), on_message_complete. feed() may stop with an error after any of them;
/// answer such errors only after feed() returned (e.g. a 413 follows on_headers when the
/// Content-Length exceeds the limit). Delegates must not call feed(), resume() or reset()
/// from these callbacks. An exception thrown here propagates out of feed(), after which the
/// parser is in the error state (status 500).
class HTTP1ParserDelegate {
 public:
  virtual ~HTTP1ParserDelegate() = default;

  /// The request line and header section, complete and validated. The delegate may move
  /// from both and may call HTTP1RequestParser::set_max_body_bytes() before returning.
  virtual HeadersAction on_headers(RequestStartLine&& start_line, HTTPHeaders&& headers,
                                   const RequestInfo& info) = 0;

  /// A piece of the body, already de-chunked. Valid only during the call.
  virtual void on_body(std::string_view chunk) = 0;

  /// Trailer fields of a chunked body. Ignored unless overridden, as nginx does.
  virtual void on_trailers(HTTPHeaders&& trailers) { (void)trailers; }

  /// The request ended; feed() returns FeedStatus::kPaused (or kUpgrade) right after this.
  virtual void on_message_complete() = 0;
};

/// Size limits for one request. 0 disables a limit.
struct HTTP1Limits {
  /// method SP request-target SP HTTP-version; longer lines get 414.
  std::size_t max_request_line = 8192;
  /// Field names and values plus 4 bytes per line (": " and CRLF); more gets 431. Applies to
  /// the header section and, separately, to trailers.
  std::size_t max_header_bytes = 65536;
  /// Body bytes after de-chunking; more gets 413. The default is nginx's client_max_body_size.
  uint64_t max_body_bytes = 1024 * 1024;
  /// Field lines in the header section (and in trailers); more gets 431.
  std::size_t max_header_count = 100;
  /// Bytes of one chunk-size line before its CRLF (size, extensions and their whitespace);
  /// more gets 400. Chunk extensions carry nothing a server uses, so a few KiB is plenty.
  std::uint32_t max_chunk_line = 4096;
  /// Chunk-extension bytes over the whole body of one request; more gets 413 (as Node.js
  /// answers). Bounds the work that a stream of tiny chunks with extensions costs.
  std::uint32_t max_chunk_extension_bytes = 16384;
};

enum class FeedStatus {
  /// Every byte was consumed and the current request needs more.
  kNeedMore,
  /// A request completed. Bytes after `consumed` were not looked at: call resume(), then
  /// feed them again, once the connection is ready for the next pipelined request.
  kPaused,
  /// An upgrade request (or CONNECT) completed. Bytes after `consumed` belong to the new
  /// protocol. To go on with HTTP/1 instead (upgrade refused), call resume().
  kUpgrade,
  /// The request is malformed or over a limit; see error_status() and error_reason(). The
  /// connection should answer with that status and close: the parser refuses further input.
  kError,
};

struct FeedResult {
  /// Bytes of the input consumed; on kError, the position of the offending byte.
  std::size_t consumed = 0;
  FeedStatus status = FeedStatus::kNeedMore;
};

namespace detail {
struct LlhttpCallbacks;
// llhttp_t is kept as opaque storage so this header does not pull llhttp's C enums and
// macros into every file that includes it; http1_parser.cpp checks that it fits.
inline constexpr std::size_t kLlhttpStorageSize = 128;
}  // namespace detail

/// Parses HTTP/1.x requests from a byte stream with llhttp, one request at a time.
///
/// Beyond llhttp's own checks it enforces what a front server needs against request
/// smuggling and abuse, with nginx's status codes:
///   400  malformed syntax; missing Host on HTTP/1.1 or more than one Host; Content-Length
///        with Transfer-Encoding; a repeated Content-Length, even an identical one (nginx
///        refuses duplicates too); Content-Length not plain digits; chunked not the final
///        coding, or applied twice; Transfer-Encoding on HTTP/1.0 (RFC 9112 6.1 calls that
///        faulty framing); bad chunk sizes or chunk extensions (see ChunkLineScanner);
///        chunk-size lines over max_chunk_line; obs-fold; bare CR or bare LF outside the body;
///        NUL or other controls in field values; invalid field names (including whitespace
///        before the colon); request-targets with bytes outside 0x21-0x7E; "*" on anything
///        but OPTIONS; CONNECT without an authority-form target; bytes after a request that
///        closed the connection.
///   413  body over max_body_bytes: at the headers for Content-Length, at each chunk header
///        for chunked bodies; chunk extensions over max_chunk_extension_bytes.
///   414  request line over max_request_line.
///   431  header section over max_header_bytes or max_header_count.
///   501  a well-formed method llhttp does not know ("FOO", "get"), and Transfer-Encoding
///        codings other than chunked ("gzip", "gzip, chunked"), as nginx answers.
///   505  protocol versions other than HTTP/1.0 and HTTP/1.1, including HTTP/0.9 request
///        lines without a version and the HTTP/2 prior-knowledge preface (the connection
///        should sniff that preface before handing bytes to this parser). RFC 9112 section
///        2.3 would have HTTP/1.2 served as 1.1, but no such version exists and llhttp
///        refuses it; 505 says why more clearly than the 400 Node.js answers.
///
/// The result does not depend on the llhttp build: its strict mode (LLHTTP_STRICT_MODE)
/// refuses bare CR, bare LF after chunk data, whitespace before the colon and bytes after
/// "Connection: close", and this class checks each of those itself for the default build.
///
/// Two things llhttp 8.1 gets wrong are handled before it sees the bytes. Chunk-size lines
/// are checked here (ChunkLineScanner) and llhttp only gets the size and the CRLF, so
/// extensions with whitespace around ";" and "=" or several with values ("5 ; a = 1;b")
/// are ignored as RFC 9112 section 7.1.1 asks. And trailing whitespace of a field line is
/// not passed on: llhttp's matchers for Transfer-Encoding, Content-Length and Connection
/// skip a trailing SP but not an HTAB, so "Transfer-Encoding: chunked<HTAB>" was refused
/// and "Connection: close<HTAB>" kept the connection open.
///
/// Header values reach the delegate with surrounding whitespace removed. Strings keep their
/// capacity from one request to the next unless the delegate moved them away.
class HTTP1RequestParser {
 public:
  explicit HTTP1RequestParser(HTTP1ParserDelegate& delegate, HTTP1Limits limits = {});
  ~HTTP1RequestParser();

  HTTP1RequestParser(const HTTP1RequestParser&) = delete;
  HTTP1RequestParser& operator=(const HTTP1RequestParser&) = delete;

  /// Parses as much of `data` as the current request allows, calling the delegate.
  /// Does nothing (consumed 0) while paused, after an upgrade or after an error.
  FeedResult feed(const char* data, std::size_t len);
  FeedResult feed(std::string_view data) { return feed(data.data(), data.size()); }

  /// Continues after FeedStatus::kPaused or kUpgrade; the next feed() parses a new request.
  void resume();

  /// Forgets all state, as for a new connection. Limits stay.
  void reset();
  /// Forgets all state and serves another delegate with other limits: a recycled parser
  /// (see HTTP1Connection's per-thread pool) keeps its strings' capacity.
  void reset(HTTP1ParserDelegate& delegate, HTTP1Limits limits);

  /// The body limit for the current request, from on_headers() usually: a route that
  /// streams its body raises it or sets 0 (no limit). Reverts to the configured limit at the
  /// next request.
  void set_max_body_bytes(uint64_t max_body_bytes) { max_body_bytes_ = max_body_bytes; }
  uint64_t max_body_bytes() const { return max_body_bytes_; }

  const HTTP1Limits& limits() const { return limits_; }

  /// True once the first byte of a request was parsed and until it completes; at EOF this
  /// tells a clean close from a truncated request.
  bool in_message() const { return in_message_; }

  /// The status to answer with after FeedStatus::kError (400, 413, 414, 431, 500, 501, 505),
  /// or 0.
  int error_status() const { return error_status_; }
  /// A short description of the error for logs and the error page; empty if none.
  std::string_view error_reason() const { return error_reason_; }

 private:
  friend struct detail::LlhttpCallbacks;

  enum class State { kRunning, kPaused, kUpgrade, kProbingMethod, kClosed, kError };
  // The last framing bytes llhttp consumed: a CR still owes its LF; after a CRLF a line must
  // not start with whitespace.
  enum class FramingTail { kOther, kCR, kCRLF };

  // The llhttp_t, see kLlhttpStorageSize.
  alignas(8) unsigned char llhttp_storage_[detail::kLlhttpStorageSize];

  HTTP1ParserDelegate* delegate_;
  HTTP1Limits limits_;
  uint64_t max_body_bytes_;
  State state_ = State::kRunning;
  int error_status_ = 0;
  const char* error_reason_ = "";
  std::exception_ptr delegate_exception_;

  // The request being parsed.
  RequestStartLine start_line_;
  HTTPHeaders headers_;
  HTTPHeaders trailers_;
  std::string version_text_;
  bool in_message_ = false;
  bool request_line_done_ = false;
  bool headers_done_ = false;
  bool in_field_name_ = false;  // the last fragment was part of a field name
  bool in_field_line_ = false;  // from a field name's first byte to the end of its value
  bool in_chunk_data_ = false;
  bool keep_alive_ = true;
  std::size_t field_bytes_ = 0;  // name and value bytes of this section, see max_header_bytes
  std::size_t head_wire_bytes_ = 0;
  uint64_t body_bytes_ = 0;

  // Where llhttp is reading: the segment of the caller's buffer passed to llhttp_execute, and
  // the last bytes before it, so callbacks can look behind a fragment.
  const char* segment_begin_ = nullptr;
  char recent_[8] = {};
  std::size_t recent_len_ = 0;
  FramingTail framing_tail_ = FramingTail::kOther;
  // llhttp was paused by a callback of ours (see execute()), not for the caller.
  bool resume_after_pause_ = false;
  // Chunked bodies: the chunk-size line llhttp is about to read, if any (see
  // scan_chunk_line()), and the extension bytes of this request so far.
  bool in_chunk_line_ = false;
  bool last_chunk_seen_ = false;
  std::size_t method_probe_length_ = 0;
  detail::ChunkLineScanner chunk_line_;
  std::uint32_t chunk_extension_bytes_ = 0;  // stops counting at 4 GiB
  // Whitespace at the end of the last input that may be a field line's trailing OWS; it is
  // dropped if a CR follows, else handed to llhttp first (see feed()). Rarely needed, so
  // allocated then: every connection carries a parser.
  std::unique_ptr<std::string> held_whitespace_;

  // Where the framing screen in feed() stops; see scan_framing().
  struct ScanStop {
    const char* suspect = nullptr;  // a bare CR or LF, or whitespace at the start of a line
    const char* trailing_whitespace = nullptr;  // SP/HTAB before a CR or the end of input
  };

  void begin_message();
  static ScanStop scan_framing(const char* q, const char* end, FramingTail& tail,
                               const char* whitespace_floor);
  FeedResult execute(const char* data, const char* segment, const char* segment_end,
                     const char* data_end);
  FeedResult fail(std::size_t consumed, int status, const char* reason);
  FeedResult map_llhttp_error(int err, const char* data, const char* error_pos,
                              const char* data_end);
  FeedResult probe_method(const char* data, std::size_t offset, std::size_t len);
  FeedResult scan_chunk_line(const char* data, const char* pos, const char* end);
  FeedResult release_held_whitespace(const char* data, const char* end, const char** pos);
  bool in_field_section() const;
  bool count_dropped_whitespace(std::size_t n);
  uint64_t body_bytes_ahead() const;
  void remember_consumed(const char* begin, const char* end);
  int byte_before(const char* at, std::size_t distance) const;
  bool preceded_by(const char* at, std::string_view expected) const;
  HTTPHeaders& current_fields() { return headers_done_ ? trailers_ : headers_; }
  int set_error(int status, const char* reason);
  int begin_chunk_line();
  int run_delegate(auto&& call);

  // llhttp callbacks, forwarded by detail::LlhttpCallbacks.
  int on_message_begin();
  int on_url(const char* at, std::size_t length);
  int on_version(const char* at, std::size_t length);
  int on_version_complete();
  int on_header_field(const char* at, std::size_t length);
  int on_header_field_complete();
  int on_header_value(const char* at, std::size_t length);
  int on_header_value_complete();
  int on_headers_complete();
  int on_chunk_header();
  int on_chunk_complete();
  int on_body(const char* at, std::size_t length);
  int on_message_complete();
};

}  // namespace tronada
