#include "tronada/websocket/permessage_deflate.h"

#include <algorithm>
#include <charconv>
#include <new>
#include <stdexcept>

#include "tronada/http/http_headers.h"

namespace tronada::ws {

namespace {

bool is_tchar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// A small cursor over a header value.
struct Cursor {
  std::string_view s;
  std::size_t i = 0;
  void skip_ows() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  }
  bool at(char c) const { return i < s.size() && s[i] == c; }
  std::string token() {
    std::size_t start = i;
    while (i < s.size() && is_tchar(s[i])) ++i;
    return std::string(s.substr(start, i - start));
  }
  std::optional<std::string> quoted() {
    ++i;  // opening quote
    std::string out;
    while (i < s.size() && s[i] != '"') {
      if (s[i] == '\\') {
        if (++i >= s.size()) return std::nullopt;
      }
      out += s[i++];
    }
    if (i >= s.size()) return std::nullopt;
    ++i;
    return out;
  }
};

std::optional<int> window_bits(const std::optional<std::string>& v) {
  if (!v || v->empty() || v->size() > 2) return std::nullopt;
  int n = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || p != v->data() + v->size() || (*v)[0] == '0') return std::nullopt;
  if (n < 8 || n > 15) return std::nullopt;
  return n;
}

int clamp_bits(int bits) {
  // zlib refuses raw deflate with an 8-bit window; 9..15 it does.
  return std::clamp(bits, 9, 15);
}

}  // namespace

std::optional<std::vector<ExtensionOffer>> parse_extensions(std::string_view value) {
  std::vector<ExtensionOffer> out;
  Cursor c{value};
  for (;;) {
    c.skip_ows();
    if (c.i >= value.size()) break;
    if (c.at(',')) {  // empty list elements are allowed (RFC 9110 5.6.1)
      ++c.i;
      continue;
    }
    ExtensionOffer ext;
    ext.name = c.token();
    if (ext.name.empty()) return std::nullopt;
    c.skip_ows();
    while (c.at(';')) {
      ++c.i;
      c.skip_ows();
      std::string name = c.token();
      if (name.empty()) return std::nullopt;
      c.skip_ows();
      std::optional<std::string> v;
      if (c.at('=')) {
        ++c.i;
        c.skip_ows();
        if (c.at('"')) {
          v = c.quoted();
          if (!v) return std::nullopt;
        } else {
          v = c.token();
          if (v->empty()) return std::nullopt;
        }
        c.skip_ows();
      }
      for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      ext.params.emplace_back(std::move(name), std::move(v));
    }
    out.push_back(std::move(ext));
    if (c.i >= value.size()) break;
    if (!c.at(',')) return std::nullopt;
    ++c.i;
  }
  return out;
}

std::optional<DeflateParams> negotiate_deflate(const std::vector<ExtensionOffer>& offers,
                                               const DeflateOptions& mine, std::string& response) {
  for (const auto& offer : offers) {
    if (!detail::iequals(offer.name, "permessage-deflate")) continue;
    bool snct = false, cnct = false, seen_smwb = false, seen_cmwb = false, ok = true;
    std::optional<int> smwb, cmwb;
    for (const auto& [name, v] : offer.params) {
      if (name == "server_no_context_takeover" && !snct && !v) {
        snct = true;
      } else if (name == "client_no_context_takeover" && !cnct && !v) {
        cnct = true;
      } else if (name == "server_max_window_bits" && !seen_smwb && window_bits(v)) {
        seen_smwb = true;
        smwb = window_bits(v);
      } else if (name == "client_max_window_bits" && !seen_cmwb && (!v || window_bits(v))) {
        seen_cmwb = true;
        if (v) cmwb = window_bits(v);
      } else {
        ok = false;  // unknown, duplicated or invalid: decline this offer (RFC 7692 5)
      }
    }
    if (!ok) continue;
    DeflateParams p;
    p.server_no_context_takeover = snct || mine.server_no_context_takeover;
    p.client_no_context_takeover = cnct || mine.client_no_context_takeover;
    int server_bits = clamp_bits(mine.server_max_window_bits);
    if (smwb) {
      if (*smwb < 9) continue;  // a window zlib cannot compress with
      server_bits = std::min(server_bits, *smwb);
    }
    p.server_max_window_bits = server_bits;
    response = "permessage-deflate";
    if (p.server_no_context_takeover) response += "; server_no_context_takeover";
    if (p.client_no_context_takeover) response += "; client_no_context_takeover";
    if (smwb || server_bits < 15) {
      response += "; server_max_window_bits=" + std::to_string(server_bits);
    }
    if (seen_cmwb) {
      int client_bits = std::min(cmwb.value_or(15), std::clamp(mine.client_max_window_bits, 8, 15));
      p.client_max_window_bits = client_bits;
      if (cmwb || client_bits < 15) {
        response += "; client_max_window_bits=" + std::to_string(client_bits);
      }
    }
    return p;
  }
  return std::nullopt;
}

std::string deflate_offer(const DeflateOptions& mine) {
  std::string s = "permessage-deflate";
  if (mine.server_no_context_takeover) s += "; server_no_context_takeover";
  if (mine.client_no_context_takeover) s += "; client_no_context_takeover";
  if (mine.server_max_window_bits < 15) {
    s += "; server_max_window_bits=" + std::to_string(clamp_bits(mine.server_max_window_bits));
  }
  // We can compress with any window the server asks for, 8 excepted (zlib).
  s += "; client_max_window_bits";
  if (mine.client_max_window_bits < 15) {
    s += "=" + std::to_string(clamp_bits(mine.client_max_window_bits));
  }
  return s;
}

DeflateParams accept_deflate_response(const ExtensionOffer& response, const DeflateOptions& mine) {
  if (!detail::iequals(response.name, "permessage-deflate")) {
    throw std::runtime_error("server chose an extension we did not offer: " + response.name);
  }
  DeflateParams p;
  p.client_max_window_bits = clamp_bits(mine.client_max_window_bits);
  bool seen[4] = {};
  for (const auto& [name, v] : response.params) {
    if (name == "server_no_context_takeover" && !v && !seen[0]) {
      seen[0] = true;
      p.server_no_context_takeover = true;
    } else if (name == "client_no_context_takeover" && !v && !seen[1]) {
      seen[1] = true;
      p.client_no_context_takeover = true;
    } else if (name == "server_max_window_bits" && !seen[2] && window_bits(v)) {
      seen[2] = true;
      p.server_max_window_bits = *window_bits(v);
      if (mine.server_max_window_bits < 15 &&
          p.server_max_window_bits > clamp_bits(mine.server_max_window_bits)) {
        throw std::runtime_error("server_max_window_bits above our offer");
      }
    } else if (name == "client_max_window_bits" && !seen[3] && window_bits(v)) {
      seen[3] = true;
      int bits = *window_bits(v);
      if (bits < 9) throw std::runtime_error("client_max_window_bits=8 is not supported");
      p.client_max_window_bits = std::min(bits, p.client_max_window_bits);
    } else {
      throw std::runtime_error("invalid permessage-deflate parameter in response: " + name);
    }
  }
  if (mine.server_max_window_bits < 15 && !seen[2]) {
    throw std::runtime_error("server ignored our server_max_window_bits");
  }
  return p;
}

PerMessageDeflate::PerMessageDeflate(const DeflateParams& params, bool is_server,
                                     const DeflateOptions& options)
    : reset_deflate_(is_server ? params.server_no_context_takeover
                               : params.client_no_context_takeover),
      reset_inflate_(is_server ? params.client_no_context_takeover
                               : params.server_no_context_takeover),
      min_compress_size_(options.min_compress_size),
      window_bits_(
          clamp_bits(is_server ? params.server_max_window_bits : params.client_max_window_bits)),
      level_(options.compression_level),
      mem_level_(std::clamp(options.mem_level, 1, 9)) {}

PerMessageDeflate::~PerMessageDeflate() {
  if (deflate_ready_) deflateEnd(&deflate_);
  if (inflate_ready_) inflateEnd(&inflate_);
}

// The zlib streams are set up on first use: a deflate stream costs about 256 KiB, and
// most WebSockets that negotiated compression sit idle or only ever receive.
void PerMessageDeflate::init_deflate() {
  if (deflateInit2(&deflate_, level_, Z_DEFLATED, -window_bits_, mem_level_, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    throw std::bad_alloc();
  }
  deflate_ready_ = true;
}

void PerMessageDeflate::init_inflate() {
  // Any window the peer used fits in the largest one.
  if (inflateInit2(&inflate_, -15) != Z_OK) throw std::bad_alloc();
  inflate_ready_ = true;
}

std::string PerMessageDeflate::compress(std::string_view message) {
  if (!deflate_ready_) init_deflate();
  std::string out;
  out.resize(deflateBound(&deflate_, message.size()) + 16);
  deflate_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(message.data()));
  deflate_.avail_in = static_cast<uInt>(message.size());
  std::size_t produced = 0;
  for (;;) {
    if (produced == out.size()) out.resize(out.size() * 2);
    deflate_.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    deflate_.avail_out = static_cast<uInt>(out.size() - produced);
    int rc = ::deflate(&deflate_, Z_SYNC_FLUSH);
    produced = out.size() - deflate_.avail_out;
    if (rc != Z_OK && rc != Z_BUF_ERROR) throw std::runtime_error("deflate failed");
    // Done once all input is in and the flush fit: the output ends with 00 00 ff ff.
    if (deflate_.avail_in == 0 && deflate_.avail_out > 0) break;
  }
  out.resize(produced);
  if (out.size() >= 4 && out.compare(out.size() - 4, 4, std::string_view("\0\0\xff\xff", 4)) == 0) {
    out.resize(out.size() - 4);
  }
  if (out.empty()) out.push_back('\0');  // an empty message still needs a block (7.2.3.6)
  if (reset_deflate_) deflateReset(&deflate_);
  return out;
}

PerMessageDeflate::Result PerMessageDeflate::inflate_some(const unsigned char* in, std::size_t len,
                                                          std::string& out, std::size_t max_size) {
  if (!inflate_ready_) init_inflate();
  inflate_.next_in = const_cast<Bytef*>(in);
  inflate_.avail_in = static_cast<uInt>(len);
  unsigned char buf[16384];
  for (;;) {
    inflate_.next_out = buf;
    inflate_.avail_out = sizeof buf;
    int rc = ::inflate(&inflate_, Z_SYNC_FLUSH);
    std::size_t got = sizeof buf - inflate_.avail_out;
    if (max_size && out.size() + got > max_size) return Result::kTooBig;
    out.append(reinterpret_cast<char*>(buf), got);
    if (rc == Z_STREAM_END) {
      // A final block: whatever follows starts a new stream.
      inflateReset(&inflate_);
      if (inflate_.avail_in == 0) break;
      continue;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) return Result::kCorrupt;
    // Output left room: zlib holds nothing more back for the input given.
    if (inflate_.avail_out != 0 && inflate_.avail_in == 0) break;
    if (rc == Z_BUF_ERROR && got == 0) break;
  }
  return Result::kOk;
}

PerMessageDeflate::Result PerMessageDeflate::decompress(std::string_view piece, std::string& out,
                                                        std::size_t max_size) {
  return inflate_some(reinterpret_cast<const unsigned char*>(piece.data()), piece.size(), out,
                      max_size);
}

PerMessageDeflate::Result PerMessageDeflate::finish_message(std::string& out,
                                                            std::size_t max_size) {
  static const unsigned char kTail[4] = {0, 0, 0xff, 0xff};
  Result r = inflate_some(kTail, 4, out, max_size);
  if (reset_inflate_ && inflate_ready_) inflateReset(&inflate_);
  return r;
}

}  // namespace tronada::ws
