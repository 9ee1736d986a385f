// What the reverse proxy changes in the messages it passes on: hop-by-hop fields,
// X-Forwarded-*, Via, Host, and the request head it sends upstream. Sans-I/O.
#pragma once

#include <string>
#include <string_view>

#include "tronada/gateway/upstream_group.h"
#include "tronada/http/http_headers.h"
#include "tronada/http/http_server_request.h"

namespace tronada {

/// How the proxy rewrites request headers.
struct ProxyHeaderOptions {
  /// Send the client's Host upstream (Caddy's default) rather than the upstream's own
  /// (nginx's $proxy_host). Virtual-hosted upstreams usually want the client's.
  bool preserve_host = true;
  /// Keep an X-Forwarded-For the client sent and append to it. Only when the server
  /// trusts its clients' forwarding headers (xheaders): otherwise a client could forge
  /// the chain the upstream reads its address from.
  bool trust_forwarded = false;
  /// Removed from the front of the request path before it goes upstream (a route
  /// mounted at /api/ with strip_prefix: /api/users -> /users).
  std::string strip_prefix;
  /// Our name in Via ("1.1 tronada").
  std::string via_name = "tronada";
};

/// True for the fields that describe one connection rather than the message
/// (RFC 9110 section 7.6.1): Connection, Keep-Alive, Proxy-Connection, TE, Trailer,
/// Transfer-Encoding, Upgrade, Proxy-Authenticate, Proxy-Authorization.
bool is_hop_by_hop(std::string_view name);

/// Removes hop-by-hop fields and every field the Connection header names.
void strip_hop_by_hop(HTTPHeaders& headers);

/// How the request body travels upstream.
enum class UpstreamFraming {
  none,            // no body
  content_length,  // the client's Content-Length, passed on
  chunked,         // length unknown (a chunked or HTTP/2 body): chunked upstream
};

/// Serializes the request line and header block for `upstream`: the path with the
/// upstream's prefix, hop-by-hop fields removed (Connection/Upgrade put back for an
/// `upgrade`), Host per `options`, X-Forwarded-For/-Proto/-Host and Via added, Cookie
/// fields joined (HTTP/2 splits them), Expect dropped (we answered it already), and
/// the body framing.
std::string upstream_request_head(const HTTPServerRequest& request, const Upstream& upstream,
                                  const ProxyHeaderOptions& options, UpstreamFraming framing,
                                  std::string_view upgrade = {});

/// Prepares an upstream response's fields for the client: hop-by-hop fields removed.
/// For a 101 the Upgrade and Connection fields are kept: they are the answer.
void downstream_response_headers(HTTPHeaders& headers, int status);

}  // namespace tronada
