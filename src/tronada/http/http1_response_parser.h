// Sans-I/O HTTP/1.x response parsing (llhttp in response mode), for the HTTP client,
// the proxy and the test helper.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "tronada/http/http_headers.h"

namespace tronada {

/// One parsed response.
struct HTTPResponseHead {
  int status = 0;
  std::string reason;
  int version_minor = 1;
  HTTPHeaders headers;
};

/// Parses responses from a byte stream. Feed bytes; `on_head`, `on_body` and
/// `on_complete` report progress. Responses to HEAD requests have no body: say so with
/// `expect_no_body()` before feeding. A close-delimited body ends with `finish_eof()`.
///
/// An exception thrown by an event handler never unwinds through llhttp (C code): the
/// parser stops, and feed() or finish_eof() rethrows it once llhttp has returned, with
/// failed() true from then on (until reset()).
class HTTP1ResponseParser {
 public:
  struct Events {
    virtual ~Events() = default;
    virtual void on_head(HTTPResponseHead&& head) = 0;
    virtual void on_body(std::string_view chunk) = 0;
    virtual void on_complete() = 0;
  };

  explicit HTTP1ResponseParser(Events& events, std::size_t max_header_bytes = 64 * 1024);
  ~HTTP1ResponseParser();
  HTTP1ResponseParser(const HTTP1ResponseParser&) = delete;
  HTTP1ResponseParser& operator=(const HTTP1ResponseParser&) = delete;

  /// Parses `data`; returns the bytes consumed. Stops after a complete response (call
  /// reset() for the next one on a kept-alive connection). On error returns with
  /// failed() set.
  std::size_t feed(std::string_view data);
  /// The peer closed: completes a close-delimited body; an error if a response was cut.
  void finish_eof();
  void expect_no_body() { no_body_ = true; }
  void reset();

  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }
  bool complete() const { return complete_; }
  /// Whether the connection may be reused after this response.
  bool keep_alive() const { return keep_alive_; }

 private:
  struct Impl;
  void rethrow_handler_error();

  std::unique_ptr<Impl> impl_;
  Events& events_;
  std::size_t max_header_bytes_;
  std::string error_;
  bool complete_ = false;
  bool no_body_ = false;
  bool keep_alive_ = false;
  friend struct Impl;
};

}  // namespace tronada
