// The header block of a CGI response (RFC 3875 section 6), as a FastCGI responder writes
// it at the start of FCGI_STDOUT: parsed incrementally into a status and HTTP headers.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

#include "tronada/http/http_headers.h"

namespace tronada {

/// A CGI header block the gateway cannot turn into an HTTP response (answered with 502).
class CGIResponseError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// What the script asked for, once its header block ended.
struct CGIResponse {
  enum class Kind {
    document,         // a response with a body
    local_redirect,   // only `Location: /path`: the server serves that path instead
    client_redirect,  // Location with a URL (or with other fields): 302 unless Status
  };
  Kind kind = Kind::document;
  int status = 200;
  std::string reason;   // from Status, may be empty
  HTTPHeaders headers;  // without Status; Location kept for client redirects
  std::string location;
};

/// Parses the CGI header block from the bytes of FCGI_STDOUT, fed in any split. Lines
/// end with LF or CRLF; a blank line ends the block. Repeated fields (Set-Cookie) are
/// kept in order. Hop-by-hop fields (Connection, Keep-Alive, Transfer-Encoding) are
/// dropped: the HTTP connection frames the body itself.
class CGIResponseParser {
 public:
  explicit CGIResponseParser(std::size_t max_header_bytes = 64 * 1024)
      : max_header_bytes_(max_header_bytes) {}

  /// Feeds bytes; returns how many belong to the header block (the rest is body). Throws
  /// CGIResponseError for a malformed block or one larger than max_header_bytes.
  std::size_t feed(std::string_view data);
  /// The output ended; throws CGIResponseError if the header block was not complete.
  void finish();
  bool done() const { return done_; }
  /// Valid once done().
  const CGIResponse& response() const { return response_; }
  CGIResponse& response() { return response_; }

 private:
  void parse_line(std::string_view line);
  void complete();

  std::size_t max_header_bytes_;
  std::size_t seen_ = 0;
  std::string line_;
  bool done_ = false;
  bool has_status_ = false;
  CGIResponse response_;
};

}  // namespace tronada
