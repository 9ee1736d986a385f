// `OPTIONS *`: the request about the server as a whole rather than one of its resources
// (RFC 9110 section 9.3.7).
#pragma once

#include <string_view>

namespace tronada {

class HTTPServerRequest;

/// The methods tronada's servers implement (the ones RequestHandler dispatches): the
/// Allow of their answer to `OPTIONS *`.
inline constexpr std::string_view kServerMethods = "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS";

/// True for `OPTIONS *`: the asterisk-form request-target on HTTP/1 (the parser allows
/// it for OPTIONS only), `:path *` on HTTP/2.
bool is_options_asterisk(const HTTPServerRequest& request);

/// Answers `OPTIONS *` for a server: 200 with `Allow: allow` and `Content-Length: 0`.
/// Whoever dispatches requests decides whether to: Application does unless one of its
/// rules matches the path "*" (a WSGI app mounted at the root gets it, as under
/// gunicorn), and `tronada static` does. A server built on a plain callback gets the
/// request like any other.
void answer_options_asterisk(HTTPServerRequest& request, std::string_view allow = kServerMethods);

}  // namespace tronada
