// Switching an HTTP/1.1 connection to HTTP/2 in clear text (h2c, RFC 7540 3.2): whether
// a request asks for it, and the HTTP/1 side of answering it.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "tronada/http/http_connection.h"
#include "tronada/http/http_server_request.h"

namespace tronada {

/// Whether `request` asks to switch to HTTP/2 in clear text (RFC 7540 3.2) in a way we
/// honour, and if so its HTTP2-Settings decoded (the payload of a SETTINGS frame). It
/// must be HTTP/1.1 with `Upgrade: h2c`, exactly one HTTP2-Settings field holding valid
/// base64url whose settings are well-formed (6-byte entries, values in range), and
/// `Connection: Upgrade, HTTP2-Settings`. Requests with a body are not upgraded (the RFC
/// lets a server ignore the Upgrade): answering them over HTTP/1.1 spares buffering the
/// body for stream 1, and the next request can upgrade. nullopt: serve over HTTP/1.1.
std::optional<std::string> h2c_upgrade_settings(const HTTPServerRequest& request, bool has_body);

namespace detail {

struct HTTP1ServerContext;

/// The message delegate of a request that upgrades to h2c: once the request was read
/// whole (and the parser stopped, so the bytes after it are known) it writes the 101,
/// detaches the stream and hands it, the settings and the request (stream 1) to the
/// context's h2c_upgrade; without one, it closes the stream.
std::unique_ptr<HTTPMessageDelegate> make_h2c_upgrade_message(
    std::shared_ptr<HTTPServerRequest> request, std::string settings,
    std::shared_ptr<HTTP1ServerContext> context);

}  // namespace detail

}  // namespace tronada
