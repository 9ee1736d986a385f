// Percent-decoding and -encoding of URL parts.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tronada {

/// Decodes %XX escapes; with `plus_as_space`, '+' becomes ' ' (form encoding). Returns
/// nullopt for a malformed escape ("%4", "%zz").
std::optional<std::string> url_decode(std::string_view in, bool plus_as_space = false);

/// Encodes every byte outside RFC 3986's unreserved set, keeping the bytes in `safe`.
std::string url_encode(std::string_view in, std::string_view safe = "/");

}  // namespace tronada
