// multipart/form-data (RFC 7578 over RFC 2046): a streaming, sans-I/O parser that hands
// part data to a delegate as it arrives, and a convenience wrapper for buffered bodies.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tronada/http/form_data.h"
#include "tronada/http/http_headers.h"

namespace tronada {

/// The boundary parameter of a `multipart/form-data` Content-Type value, unquoted:
/// `multipart/form-data; boundary="a b"; charset=utf-8` gives `a b`. The media type is
/// compared case-insensitively and parameters may come in any order. Returns nullopt if
/// the type is not multipart/form-data, the parameter list is malformed or repeats a
/// name, or the boundary is missing or invalid (see is_valid_multipart_boundary).
std::optional<std::string> parse_boundary(std::string_view content_type);

/// True if `boundary` is 1 to 70 RFC 2046 bchars (letters, digits, '()+_,-./:=? and
/// space) not ending in a space. Every browser and HTTP client generates such boundaries;
/// the rules also guarantee a boundary holds no CR, which the parser relies on.
bool is_valid_multipart_boundary(std::string_view boundary);

/// What the parser knows about a part when its headers are complete.
struct MultipartPartHeaders {
  /// The Content-Disposition `name` parameter (may be empty, never absent).
  std::string name;
  /// The `filename` parameter, or `filename*` (RFC 5987, UTF-8 only) when present, which
  /// RFC 6266 prefers. Untrusted: it may hold path separators or "..", so strip it to a
  /// base name before using it on a file system. Browsers send an empty filename for a
  /// file input with no file chosen.
  std::optional<std::string> filename;
  /// The part's Content-Type, or "text/plain", RFC 7578 section 4.4's default.
  std::string content_type;
  /// Every header line of the part, in order.
  HTTPHeaders headers;
};

/// Receives a MultipartParser's events, in the order begin, data*, end for each part and
/// then finish. Callbacks run inside MultipartParser::feed() and must not call back into
/// the same parser. A callback may throw to abort: the exception propagates out of feed()
/// and the parser stays failed with MultipartError::aborted. After any error no more
/// events arrive, so a delegate must drop a half-received part (delete its temporary file)
/// when the parser reports failure rather than wait for on_part_end.
class MultipartDelegate {
 public:
  virtual ~MultipartDelegate() = default;

  /// A part's headers have been parsed and validated.
  virtual void on_part_begin(const MultipartPartHeaders& part) = 0;

  /// The next bytes of the current part's body; never empty. The view is only valid for
  /// the call: it points into the caller's chunk or the parser's state.
  virtual void on_part_data(std::string_view data) = 0;

  /// The current part's body is complete.
  virtual void on_part_end() = 0;

  /// The closing boundary was parsed; the body is complete and valid.
  virtual void on_finish() = 0;
};

/// Why a MultipartParser failed.
enum class MultipartError {
  none,
  /// finish() arrived before any boundary: usually a Content-Type boundary that does not
  /// match the body.
  no_initial_boundary,
  /// finish() arrived inside a part or its headers, before the closing boundary.
  incomplete,
  /// A part header line lacks ':', has an invalid name or a forbidden byte, uses obsolete
  /// line folding, or Content-Disposition's parameters do not parse or repeat.
  malformed_headers,
  /// A part's header block exceeds MultipartLimits::max_header_bytes.
  headers_too_large,
  /// A part has no Content-Disposition header, or more than one.
  missing_content_disposition,
  /// A part's disposition type is not form-data.
  not_form_data,
  /// A part's Content-Disposition has no name parameter.
  missing_name,
  /// The body has more than MultipartLimits::max_parts parts.
  too_many_parts,
  /// A delegate callback threw.
  aborted,
};

/// Bounds on what a peer can make the parser hold or do.
struct MultipartLimits {
  /// The most bytes of header lines (blank line included) a part may have; the parser
  /// buffers them until the blank line, so this is most of its memory.
  std::size_t max_header_bytes = 16 * 1024;
  /// The most parts a body may have, against floods of empty parts.
  std::size_t max_parts = kDefaultMaxFormFields;
};

/// A streaming multipart/form-data parser.
///
/// Feed the body in chunks of any size, split anywhere; part bodies stream out to the
/// delegate as they arrive. Memory is bounded whatever the input: the part headers being
/// parsed (MultipartLimits::max_header_bytes) and, at a chunk's end, no bytes at all --
/// a delimiter that may continue in the next chunk is remembered as a count of matched
/// bytes, which are re-emitted from the delimiter itself if it turns out to be data.
///
/// Grammar, after RFC 2046 section 5.1.1: a preamble before the first boundary and an
/// epilogue after the closing one are ignored (as Go, Werkzeug and Tornado do); a boundary
/// line is CRLF "--" boundary, optional spaces and tabs, CRLF ("--" instead closes the
/// body); header lines end in CRLF. Bytes that start like a delimiter but do not finish
/// as one ("\r\n--boundaryX") are part data, as in Go's mime/multipart. Each part needs a
/// `Content-Disposition: form-data` header with a `name`.
///
/// Errors are returned as Status::failed with error() and error_message(), never thrown
/// (except a delegate's own exception); the framework answers them with 400.
class MultipartParser {
 public:
  /// The parser's state after a call.
  enum class Status {
    /// Waiting for more input.
    need_more,
    /// The closing boundary was parsed and on_finish() delivered; further input is
    /// ignored as epilogue.
    finished,
    /// Parsing failed; see error(). Further calls change nothing.
    failed,
  };

  /// Parses parts delimited by `boundary` (without the leading "--"), reporting to
  /// `delegate`, which must outlive the parser. Throws std::invalid_argument if the
  /// boundary is not is_valid_multipart_boundary().
  MultipartParser(std::string_view boundary, MultipartDelegate& delegate,
                  MultipartLimits limits = {});

  MultipartParser(const MultipartParser&) = delete;
  MultipartParser& operator=(const MultipartParser&) = delete;

  /// Consumes the next chunk of the body.
  Status feed(std::string_view chunk);

  /// Reports the end of the body: finished if the closing boundary was seen, else fails
  /// with no_initial_boundary or incomplete.
  Status finish();

  Status status() const;
  MultipartError error() const { return error_; }
  /// A human-readable reason for the failure; empty while there is none.
  const std::string& error_message() const { return error_message_; }

 private:
  enum class State { preamble, after_boundary, headers, body, done, failed };

  bool scan_for_delimiter(std::string_view s, std::size_t& i);
  void step_after_boundary(char c, std::size_t& i);
  void not_a_delimiter();
  void boundary_line_complete();
  void close_delimiter_complete();
  void consume_headers(std::string_view s, std::size_t& i);
  void begin_part();
  void emit(std::string_view data);
  void fail(MultipartError error, std::string message);

  MultipartDelegate& delegate_;
  MultipartLimits limits_;
  std::string delimiter_;  // "\r\n--" + boundary
  State state_ = State::preamble;
  // How many leading bytes of delimiter_ the end of the last chunk matched. Starts at 2
  // so a boundary at the very start of the body, with no CRLF before it, matches.
  std::size_t matched_ = 2;
  // Bytes seen after a complete delimiter while deciding whether it is a boundary line.
  std::string after_;
  // The header block being collected, after a CRLF that stands for the boundary line's
  // own, so that a part without headers ends at the first "\r\n\r\n" too.
  std::string header_buf_;
  bool in_part_ = false;
  std::size_t parts_ = 0;
  MultipartError error_ = MultipartError::none;
  std::string error_message_;
};

/// One uploaded file of a buffered multipart body.
struct MultipartFile {
  std::string name;
  std::string filename;
  std::string content_type;
  std::string body;
};

/// A buffered multipart body split into Tornado's `body_arguments` and `files`.
struct MultipartForm {
  QueryArguments fields;
  std::vector<MultipartFile> files;
};

/// Parses a complete multipart/form-data body with MultipartParser. As in Tornado, a part
/// with a non-empty filename is a file and every other part (an empty filename included,
/// which is what a browser sends for a file input left empty) is a field whose value is
/// the part body. Throws FormError with the parser's message on any error.
MultipartForm parse_multipart(std::string_view body, std::string_view boundary,
                              MultipartLimits limits = {});

}  // namespace tronada
