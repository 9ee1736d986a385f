#include "tronada/web/response_transforms.h"

#include <zlib.h>

#include <cstdio>
#include <stdexcept>

#include "tronada/web/mime_types.h"

namespace tronada {

ETagText compute_etag_text(std::string_view body) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : body) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  // Formatted by hand: snprintf was a visible share of a hello-world profile.
  static constexpr char kHex[] = "0123456789abcdef";
  ETagText etag;
  etag.text[0] = '"';
  etag.text[17] = '"';
  for (int i = 16; i >= 1; --i, h >>= 4) etag.text[i] = kHex[h & 0xf];
  return etag;
}

std::string compute_etag(std::string_view body) {
  return std::string(compute_etag_text(body).view());
}

bool etag_matches(std::string_view header, std::string_view etag) {
  std::string_view bare = etag;
  if (bare.substr(0, 2) == "W/") bare.remove_prefix(2);
  std::size_t pos = 0;
  while (pos <= header.size()) {
    auto comma = header.find(',', pos);
    std::string_view item =
        header.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (item == "*") return true;
    if (item.substr(0, 2) == "W/") item.remove_prefix(2);
    if (!item.empty() && item == bare) return true;
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return false;
}

std::string gzip_compress(std::string_view data, int level) {
  z_stream zs{};
  // 15 + 16: a gzip wrapper rather than raw zlib, as Content-Encoding: gzip means.
  if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("deflateInit2 failed");
  }
  std::string out;
  out.resize(deflateBound(&zs, static_cast<uLong>(data.size())));
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) throw std::runtime_error("deflate failed");
  out.resize(zs.total_out);
  return out;
}

namespace {
bool accepts_gzip(std::string_view accept_encoding) {
  std::size_t pos = 0;
  while (pos <= accept_encoding.size()) {
    auto comma = accept_encoding.find(',', pos);
    std::string_view item = accept_encoding.substr(
        pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    auto semi = item.find(';');
    std::string_view coding = item.substr(0, semi);
    while (!coding.empty() && coding.back() == ' ') coding.remove_suffix(1);
    if (coding == "gzip" || coding == "*") {
      // "gzip;q=0" refuses it.
      if (semi != std::string_view::npos) {
        std::string_view params = item.substr(semi + 1);
        auto q = params.find("q=");
        if (q != std::string_view::npos) {
          std::string_view v = params.substr(q + 2);
          if (v.substr(0, 1) == "0" && v.find_first_not_of("0.") == std::string_view::npos) {
            return false;
          }
        }
      }
      return true;
    }
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return false;
}
}  // namespace

bool maybe_gzip(const HTTPHeaders& request_headers, HTTPHeaders& response_headers,
                std::string& body) {
  // Vary whenever the type could be compressed, so caches keep both versions apart.
  std::string_view type = response_headers.get("Content-Type").value_or("");
  if (type.empty() || !is_compressible_type(type)) return false;
  if (!response_headers.contains("Vary")) {
    response_headers.add("Vary", "Accept-Encoding");
  } else if (response_headers.get_joined("Vary")->find("Accept-Encoding") == std::string::npos) {
    response_headers.add("Vary", "Accept-Encoding");
  }
  if (body.size() < 1024 || response_headers.contains("Content-Encoding")) return false;
  auto ae = request_headers.get_joined("Accept-Encoding");
  if (!ae || !accepts_gzip(*ae)) return false;
  body = gzip_compress(body);
  response_headers.set("Content-Encoding", "gzip");
  // An ETag names one representation: the compressed body is another one.
  if (auto etag = response_headers.get("ETag"); etag && etag->size() > 1 && etag->back() == '"') {
    std::string e(*etag);
    e.insert(e.size() - 1, "-gzip");
    response_headers.set("ETag", e);
  }
  return true;
}

}  // namespace tronada
