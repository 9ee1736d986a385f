// Content-Type by file extension.
#pragma once

#include <string_view>

namespace tronada {

/// The media type for `path`'s extension (case-insensitive), with charset=utf-8 for
/// text types; "application/octet-stream" when unknown, as nginx's default_type.
std::string_view mime_type_for(std::string_view path);

/// Whether responses of this type are worth compressing (text, JSON, JS, SVG, XML).
bool is_compressible_type(std::string_view content_type);

}  // namespace tronada
