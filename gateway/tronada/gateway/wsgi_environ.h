// The CGI part of a WSGI environ (PEP 3333), built from a request without Python: the
// byte strings the interpreter side turns into latin-1 `str` values.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tronada {

class HTTPServerRequest;

/// The socket a request arrived on, which SERVER_NAME and SERVER_PORT describe: as
/// gunicorn sets them, from the socket rather than from Host (PEP 3333's URL
/// reconstruction reads HTTP_HOST first anyway).
struct WSGIServerInfo {
  /// The local IP address ("127.0.0.1", "::1"), or a Unix socket's path.
  std::string server_name = "127.0.0.1";
  /// The local TCP port; unused for a Unix socket.
  std::string server_port = "8888";
  /// Over a Unix socket, which has no host or port to give, gunicorn takes them from
  /// Host when there is one (the port defaulting to 80 or 443 by scheme), and gives the
  /// socket's path and an empty port otherwise.
  bool unix_socket = false;
};

/// What the request's connection says about its local end (HTTPConnection::
/// local_address), or `fallback` if it cannot say.
WSGIServerInfo wsgi_server_info(const HTTPServerRequest& request, const WSGIServerInfo& fallback);

/// One environ: CGI variables in the order they were added, each value as raw bytes
/// (PEP 3333's "native strings" are these bytes decoded as latin-1).
struct WSGIEnviron {
  std::vector<std::pair<std::string, std::string>> vars;
  /// The value of `name`, or nullptr (tests, and the container's own checks).
  const std::string* find(std::string_view name) const;
};

/// Percent-decodes a path leniently, as gunicorn and wsgiref do: a '%' not followed by
/// two hex digits stays as it is, and '+' is not a space in a path.
std::string decode_wsgi_path(std::string_view path);

/// Builds the CGI variables for `request` mounted under `script_name` (the mount prefix,
/// already decoded, without a trailing slash; empty at the root):
/// REQUEST_METHOD, SCRIPT_NAME, PATH_INFO (decoded, prefix removed), QUERY_STRING (raw),
/// RAW_URI, REQUEST_URI, SERVER_PROTOCOL, SERVER_NAME and SERVER_PORT (from `server`,
/// see WSGIServerInfo), REMOTE_ADDR,
/// CONTENT_TYPE and CONTENT_LENGTH (when sent, without the HTTP_ prefix), and HTTP_* for
/// every other header, repeated headers joined with ", ". Header names containing '_'
/// are dropped: after the '-' to '_' mapping they could impersonate another header
/// (gunicorn and nginx drop them too).
WSGIEnviron build_wsgi_environ(const HTTPServerRequest& request, std::string_view script_name,
                               const WSGIServerInfo& server);

}  // namespace tronada
