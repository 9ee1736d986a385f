// What the HTTP client sends and gets back (Tornado's HTTPRequest, HTTPResponse and
// HTTPClientError), the client's URL parsing and redirect resolution, and the pure
// serialization of a request head. No I/O here: http_client.h does the fetching.
#pragma once

#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "tronada/async/future.h"
#include "tronada/http/http_headers.h"
#include "tronada/loop/io_loop.h"

namespace tronada {

class SSLContext;

/// A target URL split for the client. `http://`, `https://` and `http+unix://` (the
/// host part is the percent-encoded socket path, as requests-unixsocket spells it:
/// `http+unix://%2Frun%2Fapp.sock/path`).
struct ClientURL {
  std::string scheme;    // "http" or "https" ("http+unix" targets say "http")
  std::string host;      // without brackets for IPv6 literals; empty for Unix targets
  int port = 0;          // the default port of the scheme unless given
  std::string path;      // path and query, never empty ("/"), no fragment
  std::string username;  // from user:password@ in the URL (decoded)
  std::string password;
  std::string unix_path;  // non-empty for http+unix targets
  bool explicit_port = false;

  bool tls() const { return scheme == "https"; }
  /// The Host header: host, with the port when it is not the scheme's default.
  std::string host_header() const;
  /// Back to text (without user info), for effective_url and redirects.
  std::string to_string() const;
};

/// Parses an absolute URL. Throws std::invalid_argument naming the problem (no scheme, an
/// unsupported scheme, an empty host, a bad port, spaces or control characters).
ClientURL parse_client_url(std::string_view url);

/// Resolves a Location header against the URL it came from (RFC 3986 section 5.2:
/// absolute, scheme-relative, absolute-path and relative references). Throws
/// std::invalid_argument if the result does not parse.
std::string resolve_redirect(const ClientURL& base, std::string_view location);

/// Writes one piece of a streamed request body; completes when the stream has taken it
/// (await it before producing the next piece: that is the backpressure).
using BodyWriter = std::function<Future<void>(std::string chunk)>;
/// Produces a request body piece by piece through the writer, as Tornado's
/// body_producer; the returned future completes after the last piece. Without a
/// Content-Length header the body goes out chunked.
using BodyProducer = std::function<Future<void>(BodyWriter write)>;

/// One request for AsyncHTTPClient::fetch, with Tornado's defaults.
struct HTTPRequest {
  HTTPRequest() = default;
  HTTPRequest(std::string url_, std::string method_ = "GET")
      : url(std::move(url_)), method(std::move(method_)) {}

  std::string url;
  std::string method = "GET";
  HTTPHeaders headers;
  /// A body sent with Content-Length. POST, PUT and PATCH without one send an empty body.
  std::optional<std::string> body;
  /// A body produced while sending (set this or `body`, not both). A request with a
  /// producer cannot be replayed, so it is never retried on a stale connection and does
  /// not follow 307/308 redirects.
  BodyProducer body_producer;

  /// Waiting for a pooled connection plus opening it (resolution, TCP, TLS). Zero: none.
  Duration connect_timeout = std::chrono::seconds(20);
  /// The whole fetch, connection and redirects included. Zero: none.
  Duration request_timeout = std::chrono::seconds(20);
  bool follow_redirects = true;
  int max_redirects = 5;
  /// Sends Accept-Encoding: gzip (unless the headers name one) and inflates gzip and
  /// deflate bodies; the Content-Encoding header then becomes
  /// X-Consumed-Content-Encoding, as Tornado does.
  bool decompress_response = true;
  /// HTTPS: verify the server's certificate and name (against `ca_certs`, or the system
  /// CAs when empty). `ssl_context` replaces both when set.
  bool validate_cert = true;
  std::string ca_certs;
  std::shared_ptr<SSLContext> ssl_context;

  /// Gets the body in pieces as they arrive (after decompression) instead of
  /// HTTPResponse::body. Runs on the loop; the view is valid only during the call.
  std::function<void(std::string_view)> streaming_callback;
  /// Gets the status line, each header line and the final empty line ("\r\n") of every
  /// response, redirects included, as Tornado's header_callback.
  std::function<void(std::string_view)> header_callback;
  /// Largest body (after decompression) we accept, streamed or not; 0: the client's.
  std::size_t max_body_size = 0;
  /// User-Agent header unless `headers` has one; empty: the client's default.
  std::string user_agent;
  /// Basic authentication (the only mode, as in Tornado's simple client). Credentials
  /// in the URL are used when these are empty.
  std::string auth_username;
  std::string auth_password;
};

/// A finished fetch. `error` is set for codes outside 2xx (an HTTPClientError) and, in
/// the callback form, for failures without a response (code 599).
struct HTTPResponse {
  int code = 0;
  std::string reason;
  HTTPHeaders headers;
  std::string body;
  /// The URL of the last request, after redirects.
  std::string effective_url;
  /// From the start of the fetch to the end of the last response.
  Duration request_time{};
  std::exception_ptr error;

  bool ok() const { return !error; }
  /// Throws `error` if there is one (Tornado's rethrow()).
  void rethrow() const {
    if (error) std::rethrow_exception(error);
  }
};

/// A non-2xx response (code is its status) or a failure with code 599 (a timeout, a
/// stream closed early, a malformed response). `response` is set when a response
/// arrived.
class HTTPClientError : public std::runtime_error {
 public:
  HTTPClientError(int code, const std::string& message,
                  std::shared_ptr<const HTTPResponse> response = nullptr);
  int code;
  std::shared_ptr<const HTTPResponse> response;
};

/// The fetch took longer than request_timeout (or connect_timeout); code 599.
class HTTPTimeoutError : public HTTPClientError {
 public:
  explicit HTTPTimeoutError(const std::string& message) : HTTPClientError(599, message) {}
};

/// The server closed the connection before the response was complete; code 599.
class HTTPStreamClosedError : public HTTPClientError {
 public:
  explicit HTTPStreamClosedError(const std::string& message) : HTTPClientError(599, message) {}
};

/// How the request body goes out.
enum class BodyFraming { none, content_length, chunked };

/// The request head (request line and headers, ending with the empty line) for `request`
/// sent as `method` to `url`, with the headers the client adds: Host, User-Agent,
/// Accept-Encoding (decompress_response), Authorization (basic auth) and the body framing
/// (Content-Length of `body_size`, or Transfer-Encoding: chunked) unless the request's
/// headers set them. Returns the framing the body must use. Throws std::invalid_argument
/// for a method that is not a token or a header name or value that could split the head
/// (CR, LF, NUL): nothing the caller passes can inject a header.
BodyFraming serialize_request_head(const HTTPRequest& request, const ClientURL& url,
                                   std::string_view method, std::size_t body_size,
                                   const std::string& default_user_agent, std::string& out);

/// The methods that may be retried on a fresh connection (RFC 9110 section 9.2.2).
bool is_idempotent_method(std::string_view method);

}  // namespace tronada
