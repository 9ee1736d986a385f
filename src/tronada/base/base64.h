// Standard base64 (RFC 4648 section 4), as signed cookies carry their values.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tronada {

/// Encodes `in` with the standard alphabet and '=' padding, as Python's base64.b64encode.
std::string base64_encode(std::string_view in);

/// Decodes padded standard base64. Strict, unlike Python's b64decode: returns nullopt for a
/// length that is not a multiple of four, a character outside the alphabet (whitespace
/// included), misplaced padding or non-zero bits after the last encoded byte, so each byte
/// string has exactly one accepted encoding.
std::optional<std::string> base64_decode(std::string_view in);

}  // namespace tronada
