// The interfaces between the wire protocols (HTTP/1, HTTP/2) and what serves requests
// (the framework, the gateway): one request's response channel, and the delegates a
// server calls as a request arrives. HTTP/1 and HTTP/2 hand over the same objects, so
// handlers never know which protocol carried them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "tronada/async/future.h"
#include "tronada/http/http_headers.h"
#include "tronada/http/http_status.h"
#include "tronada/net/file_region.h"

namespace tronada {

class HTTPServerRequest;
class IOStream;

/// What HTTPConnection::detach() hands over: the connection's stream, now owned by the
/// caller, and the bytes the server had already read past the request (the new
/// protocol's first input, e.g. WebSocket frames a client sent right behind its
/// handshake).
struct DetachedConnection {
  std::shared_ptr<IOStream> stream;
  std::string leftover;
};

/// A response header field as views into someone else's strings, for responses whose
/// fields are kept ready-made (static files): no HTTPHeaders to build per response.
/// Fields are checked as HTTPHeaders' are (a token name, no CR, LF or NUL in the value)
/// unless `checked` says their sender did so already, when they were stored; such fields
/// are written as they are (debug builds assert).
struct HeaderRef {
  std::string_view name;
  std::string_view value;
  bool checked = false;
};

/// Whether a response field's sender vouched for it (HeaderRef::checked), so that the
/// writers (HTTP/1 and HTTP/2) skip checking it again; HTTPHeaders' fields never are.
inline bool checked_by_sender(const HeaderRef& f) {
  return f.checked;
}
inline bool checked_by_sender(const HeaderField&) {
  return false;
}

/// One request's response channel (Tornado's HTTPConnection as seen by a handler).
/// Calls must come in order: write_headers once, write any number of times, finish
/// once. After the peer went away every call is a harmless no-op and closed() is true.
class HTTPConnection {
 public:
  virtual ~HTTPConnection() = default;

  /// Sends the status line and header fields. The protocol adds Date and Server when
  /// absent and picks the framing: Content-Length if the headers have one, otherwise
  /// chunked (HTTP/1.1) or close-delimited (HTTP/1.0) on HTTP/1, DATA frames on HTTP/2.
  /// Throws std::invalid_argument for a field name or value that could split the
  /// response (CR, LF, NUL): handlers must never be able to inject headers.
  /// Status 101 is accepted only for an Upgrade request on HTTP/1: its head goes out as
  /// given (no framing fields) and the handler then calls detach().
  virtual void write_headers(int status, const HTTPHeaders& headers) = 0;
  /// As write_headers, with the status line's reason phrase as given instead of the
  /// standard one: what a WSGI app or an upstream said ("418 I'm a teapot", "299 Kit
  /// Custom", even "" as RFC 9112 allows). Throws std::invalid_argument for a phrase that
  /// is_valid_reason_phrase() refuses. HTTP/2 has no reason phrase: protocols without
  /// one ignore it (the default).
  virtual void write_headers_with_reason(int status, std::string_view reason,
                                         const HTTPHeaders& headers) {
    if (!is_valid_reason_phrase(reason)) throw std::invalid_argument("invalid reason phrase");
    write_headers(status, headers);
  }
  /// A piece of the body. Bodies of HEAD requests and of 204/304 responses are dropped.
  virtual void write(std::string_view chunk) = 0;
  /// Ends the response. A body shorter than its Content-Length closes the connection.
  virtual void finish() = 0;
  /// Ends a response that failed after it began (a backend died mid-body): the client
  /// must see it cut, never whole, so HTTP/1 closes the connection without a last chunk
  /// and HTTP/2 resets the stream. Before write_headers it answers 502 instead.
  virtual void abort() = 0;
  /// Completes once buffered output is below the high-water mark (backpressure for
  /// handlers that stream large bodies).
  virtual Future<void> drain() = 0;
  /// True once the client is gone; writes are then dropped.
  virtual bool closed() const = 0;
  /// Runs `cb` if the connection closes before the response finished.
  virtual void set_close_callback(std::function<void()> cb) = 0;

  /// Takes the connection over after an Upgrade request (WebSocket, a CONNECT tunnel):
  /// the server writes out what it queued (a 101 head from write_headers), stops reading,
  /// timing and answering on the stream, and forgets it. The caller owns the stream from
  /// now on: it must set its own data handler (or read) and close callback, and close it.
  /// Call it once the request was read whole (from the handler's method), after writing
  /// nothing or a 101 head. Afterwards this channel is closed() and every call is a no-op.
  /// Throws std::logic_error if the protocol cannot hand over its connection (HTTP/2) or
  /// the request is in the wrong state.
  virtual DetachedConnection detach() {
    throw std::logic_error("this protocol cannot hand over its connection");
  }

  /// Flow control for a streamed request body (RequestStart::stream_body): while paused
  /// no data_received arrives (nor finish), the connection reads no more from the peer,
  /// and the body timeout does not run. At most what one read had already brought in is
  /// held back and delivered, from the loop, after resume_reading(). A no-op once the
  /// request ended. Pausing is per request: the next request starts unpaused.
  virtual void pause_reading() {}
  virtual void resume_reading() {}

  /// Our end of the connection the request came in on: ("127.0.0.1", 8888), ("::1",
  /// 443), or a Unix socket's path and 0; ("", 0) when unknown (closed, a test double).
  /// For what CGI calls SERVER_NAME/SERVER_PORT. A system call each time: ask once per
  /// request at most (connections do not keep it, to stay small).
  virtual std::pair<std::string, int> local_address() const { return {"", 0}; }

  /// The whole response at once: the common case, and the cheapest.
  virtual void write_response(int status, const HTTPHeaders& headers, std::string_view body) {
    write_headers(status, headers);
    if (!body.empty()) write(body);
    finish();
  }
  /// write_response with the status line's reason phrase, as write_headers_with_reason.
  virtual void write_response_with_reason(int status, std::string_view reason,
                                          const HTTPHeaders& headers, std::string_view body) {
    write_headers_with_reason(status, reason, headers);
    if (!body.empty()) write(body);
    finish();
  }

  /// write_headers with the fields as views, under the same rules; the protocols copy
  /// them into their output without building an HTTPHeaders.
  virtual void write_head(int status, std::span<const HeaderRef> fields) {
    HTTPHeaders headers;
    headers.reserve(fields.size());
    for (const HeaderRef& f : fields) headers.add(f.name, f.value);
    write_headers(status, headers);
  }
  /// write_response with the fields as views.
  virtual void write_whole_response(int status, std::span<const HeaderRef> fields,
                                    std::string_view body) {
    write_head(status, fields);
    if (!body.empty()) write(body);
    finish();
  }

  /// Whether write_file works on this channel (both protocols' do).
  virtual bool can_write_file() const { return false; }
  /// A piece of the body from a file, in order with write(): HTTP/1 over plain TCP sends
  /// it with sendfile(2), TLS and HTTP/2 read it into their records and frames as the
  /// client takes them. Counts for drain() like written bytes, without their memory. The
  /// region's file is held until sent, or let go when the client goes away. A file that
  /// turns out shorter than the region ends the response as abort() does (HTTP/1 closes,
  /// HTTP/2 resets the stream). Throws std::logic_error where can_write_file() is false.
  virtual void write_file(FileRegion region) {
    (void)region;
    throw std::logic_error("this connection cannot send files");
  }
};

/// Receives one request's body and end (Tornado's HTTPMessageDelegate).
class HTTPMessageDelegate {
 public:
  virtual ~HTTPMessageDelegate() = default;
  /// A piece of the body, when the request is streamed (RequestStart::stream_body).
  virtual void data_received(std::string_view chunk) { (void)chunk; }
  /// The request arrived whole; a buffered body is in request->body.
  virtual void finish() = 0;
  /// The connection closed before the response finished.
  virtual void on_connection_close() {}
};

/// What a server delegate decides when a request's headers arrive.
struct RequestStart {
  std::unique_ptr<HTTPMessageDelegate> delegate;
  /// Deliver the body piece by piece to data_received instead of buffering it.
  bool stream_body = false;
  /// Body limit for this request; unset keeps the server's (0 means none).
  std::optional<std::uint64_t> max_body_size;
};

/// What a server calls for each request (Tornado's HTTPServerConnectionDelegate).
class HTTPServerDelegate {
 public:
  virtual ~HTTPServerDelegate() = default;
  /// The request's start line and headers are known; body not read yet.
  virtual RequestStart start_request(const std::shared_ptr<HTTPServerRequest>& request) = 0;
};

}  // namespace tronada
