// What the framework does to a buffered response on its way out: ETags with 304s, and
// gzip (Tornado's compute_etag / check_etag_header and GZipContentEncoding).
#pragma once

#include <string>
#include <string_view>

#include "tronada/http/http_headers.h"

namespace tronada {

/// A strong ETag for `body`: a quoted 64-bit FNV-1a hash in hex. Stable across
/// processes and restarts, so prefork workers agree.
std::string compute_etag(std::string_view body);

/// compute_etag's text in a fixed buffer rather than a string of its own: the response
/// path copies it into a header value whose storage is reused (HTTPHeaders::add).
struct ETagText {
  char text[18];
  std::string_view view() const { return {text, sizeof text}; }
};
ETagText compute_etag_text(std::string_view body);

/// Whether an If-None-Match value matches `etag` (weak comparison; "*" matches all).
bool etag_matches(std::string_view if_none_match, std::string_view etag);

/// gzips `body` in place when the request accepts gzip, the type is compressible, the
/// body is worth it (at least 1 KiB) and nothing else encoded it; sets Content-Encoding
/// and adds Vary: Accept-Encoding. Returns whether it compressed.
bool maybe_gzip(const HTTPHeaders& request_headers, HTTPHeaders& response_headers,
                std::string& body);

/// gzip-compresses `data` (level 6, as nginx's gzip_comp_level default 1..9 middle).
std::string gzip_compress(std::string_view data, int level = 6);

}  // namespace tronada
