#include "tronada/web/mime_types.h"

#include <array>
#include <cctype>
#include <string>
#include <utility>

namespace tronada {

namespace {

// The common types of nginx's mime.types and Python's mimetypes, enough for sites and
// apps; anything rarer is served as octet-stream.
constexpr std::array<std::pair<std::string_view, std::string_view>, 46> kTypes{{
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"xml", "application/xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"ico", "image/vnd.microsoft.icon"},
    {"bmp", "image/bmp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"otf", "font/otf"},
    {"pdf", "application/pdf"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"tar", "application/x-tar"},
    {"wasm", "application/wasm"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"ogg", "audio/ogg"},
    {"mp3", "audio/mpeg"},
    {"wav", "audio/wav"},
    {"flac", "audio/flac"},
    {"m4a", "audio/mp4"},
    {"mov", "video/quicktime"},
    {"avi", "video/x-msvideo"},
    {"rss", "application/rss+xml"},
    {"atom", "application/atom+xml"},
    {"yaml", "application/yaml"},
    {"yml", "application/yaml"},
    {"toml", "application/toml"},
    {"webmanifest", "application/manifest+json"},
    {"jsonld", "application/ld+json"},
    {"ics", "text/calendar; charset=utf-8"},
}};

}  // namespace

std::string_view mime_type_for(std::string_view path) {
  auto slash = path.find_last_of('/');
  std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  auto dot = name.find_last_of('.');
  if (dot == std::string_view::npos || dot + 1 == name.size()) return "application/octet-stream";
  std::string ext(name.substr(dot + 1));
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& [e, type] : kTypes) {
    if (e == ext) return type;
  }
  return "application/octet-stream";
}

bool is_compressible_type(std::string_view type) {
  auto semi = type.find(';');
  if (semi != std::string_view::npos) type = type.substr(0, semi);
  if (type.substr(0, 5) == "text/") return true;
  for (std::string_view t : {"application/json", "application/javascript", "application/xml",
                             "image/svg+xml", "application/wasm", "application/manifest+json",
                             "application/ld+json", "application/rss+xml",
                             "application/atom+xml", "application/yaml", "application/toml"}) {
    if (type == t) return true;
  }
  return false;
}

}  // namespace tronada
