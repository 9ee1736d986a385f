// The opening handshake's pieces (RFC 6455 section 4) shared by server and client.
#pragma once

#include <string>
#include <string_view>

#include "tronada/http/http_headers.h"

namespace tronada::ws {

/// Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + the RFC's GUID)).
std::string accept_key(std::string_view client_key);
/// A Sec-WebSocket-Key must be the base64 of 16 bytes.
bool is_valid_client_key(std::string_view key);
/// A fresh random Sec-WebSocket-Key for a client.
std::string make_client_key();
/// True if the comma-separated field `name` (all its lines) lists `token`, case-insensitively
/// ("Connection: keep-alive, Upgrade").
bool header_has_token(const HTTPHeaders& headers, std::string_view name, std::string_view token);

}  // namespace tronada::ws
