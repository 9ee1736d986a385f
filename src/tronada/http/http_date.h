// The Date header value, formatted once a second.
#pragma once

#include <string>
#include <string_view>

namespace tronada {

/// The current time as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"). Cached per
/// thread and reformatted only when the second changes: every response carries Date,
/// and formatting it each time would cost more than the rest of a small response.
std::string_view http_date_now();

/// Formats a Unix time as an IMF-fixdate.
std::string format_http_date(long long unix_seconds);

}  // namespace tronada
