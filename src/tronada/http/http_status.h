// Reason phrases for status codes.
#pragma once

#include <string_view>

namespace tronada {

/// The standard reason phrase of `status` ("Not Found"), or "Unknown".
std::string_view http_reason(int status);

/// True if `reason` may stand in a status line (RFC 9112 4: HTAB, SP, VCHAR, obs-text):
/// no CR, LF, NUL or other control character that could split or forge a response.
bool is_valid_reason_phrase(std::string_view reason);

}  // namespace tronada
