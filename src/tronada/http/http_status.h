// Reason phrases for status codes.
#pragma once

#include <string_view>

namespace tronada {

/// The standard reason phrase of `status` ("Not Found"), or "Unknown".
std::string_view http_reason(int status);

}  // namespace tronada
