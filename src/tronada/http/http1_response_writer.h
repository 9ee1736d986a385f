// HTTP1ResponseWriter: the framing of HTTP/1.x responses (status line, header section,
// Content-Length or chunked bodies, Date and Server), sans I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "tronada/http/http_connection.h"
#include "tronada/http/http_headers.h"

namespace tronada {

/// Turns one response at a time into HTTP/1.x bytes, appended to a buffer the caller
/// owns and sends; it never touches a socket. It decides the framing from the handler's
/// fields and the request (HTTP/1.0 or 1.1, HEAD): a Content-Length is kept and held
/// to, a body without one is chunked on HTTP/1.1, and a body that only the close can end
/// clears the caller's keep-alive. It adds Date and Server unless the handler set them,
/// and the Connection field that the keep-alive decision needs.
///
/// Errors: write_head and write_switching_head throw std::invalid_argument for a bad
/// status, reason phrase or field, or fields that contradict each other (two
/// Content-Lengths, Content-Length with Transfer-Encoding); nothing is appended then
/// and the writer is unchanged.
class HTTP1ResponseWriter {
 public:
  /// Starts the response to a new request.
  void start(bool http10, bool head_request);

  /// Appends the status line and header section of a final response (200 to 999).
  /// `reason`: the phrase as given; unset for the standard one. `keep_alive`: whether
  /// the connection may carry another request; the head clears it when the handler's
  /// Connection says close or only the close can end the body, and says so in a
  /// Connection field. `body_unread`: the request body is not read whole yet, so the
  /// connection closes after this response. Fields: HTTPHeaders or a span of HeaderRef.
  template <typename Fields>
  void write_head(std::string& out, int status, const Fields& fields,
                  std::optional<std::string_view> reason, std::string_view server_name,
                  bool& keep_alive, bool body_unread);
  /// Appends a 101 Switching Protocols head with the handler's fields (and Date). No
  /// body follows, and no further HTTP/1 request.
  void write_switching_head(std::string& out, const HTTPHeaders& fields);

  /// Frames a body piece of `size` bytes: appends its chunk-size line when chunked and
  /// returns how many of the bytes may follow, fewer than `size` when they would run
  /// past the Content-Length (0: send nothing, and nothing was appended). Call only
  /// after the head, and not for a response without a body (no_body()).
  std::uint64_t begin_body_piece(std::string& out, std::uint64_t size);
  /// What follows a body piece's bytes: CRLF when chunked, else nothing.
  std::string_view body_piece_end() const { return chunked_ ? std::string_view("\r\n") : ""; }
  /// Appends the end of the body (the last chunk when chunked). False if the body fell
  /// short of its Content-Length: only the close can tell the client then.
  bool finish(std::string& out);

  /// Appends a whole plain-text error response that closes the connection, for
  /// requests that could not be parsed or answered (the body is `text` and a newline).
  static void write_error(std::string& out, int status, std::string_view text,
                          std::string_view server_name);
  /// Appends the interim 100 Continue a client that sent Expect: 100-continue awaits.
  static void write_continue(std::string& out) { out.append("HTTP/1.1 100 Continue\r\n\r\n"); }

  bool head_written() const { return head_written_; }
  /// The response carries no body (HEAD, 204, 304, 101): body pieces are dropped.
  bool no_body() const { return no_body_; }
  bool switching() const { return switching_; }
  bool http10() const { return http10_; }

 private:
  std::uint64_t body_remaining_ = 0;  // of the Content-Length
  bool http10_ = false;
  bool head_request_ = false;
  bool head_written_ = false;
  bool chunked_ = false;
  bool fixed_length_ = false;
  bool no_body_ = false;
  bool switching_ = false;
};

// Defined in the .cpp for the two kinds of fields a response channel is given.
extern template void HTTP1ResponseWriter::write_head(std::string&, int, const HTTPHeaders&,
                                                     std::optional<std::string_view>,
                                                     std::string_view, bool&, bool);
extern template void HTTP1ResponseWriter::write_head(std::string&, int,
                                                     const std::span<const HeaderRef>&,
                                                     std::optional<std::string_view>,
                                                     std::string_view, bool&, bool);

}  // namespace tronada
