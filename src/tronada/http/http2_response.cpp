// HTTP2Session's response side: response heads handed to nghttp2, bodies through its
// data provider (memory, and file regions read as flow control allows), drain(). The
// session's lifecycle, input and nghttp2's receiving callbacks are in http2_session.cpp.
#include <unistd.h>

#include <array>
#include <cassert>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "tronada/base/log.h"
#include "tronada/http/http2_session.h"
#include "tronada/http/http2_stream_state.h"
#include "tronada/http/http_date.h"

namespace tronada {

using detail::HTTP2StreamState;

namespace {

bool is_connection_specific(std::string_view lower_name) {
  return lower_name == "connection" || lower_name == "keep-alive" ||
         lower_name == "proxy-connection" || lower_name == "transfer-encoding" ||
         lower_name == "upgrade";
}

// For each byte: itself lowercased if it is a tchar (RFC 9110 5.6.2), else 0.
constexpr std::array<char, 256> kLowerTchar = [] {
  std::array<char, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = static_cast<char>(c);
  for (int c = 'a'; c <= 'z'; ++c) t[c] = static_cast<char>(c);
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = static_cast<char>(c + 32);
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = c;
  return t;
}();

constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
constexpr std::uint64_t kHighs = 0x8080808080808080ULL;

/// Lowercases a field name into `out` (room for name.size() bytes) and checks it is a
/// token, in one pass with a table: what is_valid_header_name and lowercase() did in
/// two, with a call per byte. nghttp2 checks neither on the fields we send.
bool lowercase_field_name_bytewise(std::string_view name, char* out) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = kLowerTchar[static_cast<unsigned char>(name[i])];
    if (c == 0) return false;
    out[i] = c;
  }
  return true;
}

/// Eight bytes of a name lowercased, if each is a letter, a digit or '-' (what the
/// names a server sends are made of); false sends the name to the table.
bool lowercase_common_word(std::uint64_t word, std::uint64_t& lower) {
  if (word & kHighs) return false;
  // With no byte over 0x7f, adding 0x80 - c to each sets its high bit exactly when the
  // byte is >= c, and no sum carries into the next byte.
  auto at_least = [](std::uint64_t x, unsigned char c) {
    return (x + kOnes * (0x80 - c)) & kHighs;
  };
  auto within = [&](std::uint64_t x, unsigned char lo, unsigned char hi) {
    return at_least(x, lo) & ~at_least(x, hi + 1);
  };
  std::uint64_t folded = word | (within(word, 'A', 'Z') >> 2);  // 0x80 >> 2 is 'a' - 'A'
  std::uint64_t dash = word ^ (kOnes * '-');
  dash = ~(dash + kOnes * 0x7f) & kHighs;  // bytes that were '-'
  if ((within(folded, 'a', 'z') | within(word, '0', '9') | dash) != kHighs) return false;
  lower = folded;
  return true;
}

/// lowercase_field_name_bytewise, eight bytes at a time for the usual names (the last
/// word overlapping the one before it): the byte loop was 2 % of an h2c request.
bool lowercase_field_name(std::string_view name, char* out) {
  const std::size_t n = name.size();
  if (n < 8) return lowercase_field_name_bytewise(name, out);
  for (std::size_t i = 0;; i += 8) {
    if (i + 8 > n) i = n - 8;
    std::uint64_t word, lower;
    std::memcpy(&word, name.data() + i, 8);
    if (!lowercase_common_word(word, lower)) return lowercase_field_name_bytewise(name, out);
    std::memcpy(out + i, &lower, 8);
    if (i + 8 == n) return true;
  }
}

/// lowercase_field_name for a name its sender checked already (HeaderRef::checked, a
/// token): only the letters change, eight bytes at a time, with no test on the way. The
/// checks were a third of what a static answer's fields cost over HTTP/2.
void lowercase_token(std::string_view name, char* out) {
  // A token is ASCII, so no byte carries into the next (see lowercase_common_word).
  auto lower = [](auto word) {
    using W = decltype(word);
    constexpr W ones = static_cast<W>(kOnes), highs = static_cast<W>(kHighs);
    W upper = (word + ones * (0x80 - 'A')) & ~(word + ones * (0x80 - 'Z' - 1)) & highs;
    return static_cast<W>(word | (upper >> 2));
  };
  // Whole words, the last one overlapping the one before it (lowercasing a byte twice
  // changes nothing): a byte loop over the rest cost more than the words did.
  auto words = [&](auto word, std::size_t n) {
    constexpr std::size_t w = sizeof word;
    for (std::size_t i = 0;; i += w) {
      if (i + w > n) i = n - w;
      std::memcpy(&word, name.data() + i, w);
      word = lower(word);
      std::memcpy(out + i, &word, w);
      if (i + w == n) return;
    }
  };
  const std::size_t n = name.size();
  if (n >= 8) {
    words(std::uint64_t{}, n);
  } else if (n >= 4) {
    words(std::uint32_t{}, n);
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      char c = name[i];
      out[i] = static_cast<unsigned char>(c - 'A') < 26 ? static_cast<char>(c + 32) : c;
    }
  }
}

nghttp2_nv make_nv(const std::string& name, const std::string& value) {
  return nghttp2_nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())), name.size(),
                    value.size(), NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE};
}

}  // namespace

void HTTP2Session::write_headers(HTTP2StreamState& s, int status, const HTTPHeaders& headers) {
  write_head_fields(s, status, headers);
}

void HTTP2Session::write_head(HTTP2StreamState& s, int status, std::span<const HeaderRef> fields) {
  write_head_fields(s, status, fields);
}

template <typename Fields>
void HTTP2Session::write_head_fields(HTTP2StreamState& s, int status, const Fields& headers) {
  if (s.closed || closing_) return;
  if (s.headers_written) throw std::logic_error("write_headers called twice");
  if (status < 200 || status > 999) {
    throw std::invalid_argument("invalid final response status " + std::to_string(status));
  }
  std::vector<HeaderField> fields;
  fields.reserve(headers.size() + 2);
  bool has_date = false, has_server = false;
  for (const auto& f : headers) {
    std::string name(std::string_view(f.name).size(), '\0');
    if (!lowercase_field_name(f.name, name.data()) || !is_valid_header_value(f.value)) {
      throw std::invalid_argument("invalid response header field: " + std::string(f.name));
    }
    if (is_connection_specific(name)) continue;
    if (name == "date") has_date = true;
    if (name == "server") has_server = true;
    fields.push_back({std::move(name), std::string(f.value)});
  }
  if (!has_date) fields.push_back({"date", std::string(http_date_now())});
  const std::string& server_name = ctx_->base->options.server_name;
  if (!has_server && !server_name.empty()) fields.push_back({"server", server_name});
  s.response_fields = std::move(fields);
  s.status = std::to_string(status);
  s.headers_written = true;
  s.no_body = s.head || status == 204 || status == 304;
  if (s.no_body) {
    submit_headers(s, false);
  } else {
    if (s.open_ref) headers_due_.push_back(s.open_ref);
    schedule_flush();
  }
}

void HTTP2Session::write_response(HTTP2StreamState& s, int status, const HTTPHeaders& headers,
                                  std::string_view body) {
  write_response_fields(s, status, headers, body);
}

void HTTP2Session::write_whole_response(HTTP2StreamState& s, int status,
                                        std::span<const HeaderRef> fields, std::string_view body) {
  write_response_fields(s, status, fields, body);
}

template <typename Fields>
void HTTP2Session::write_response_fields(HTTP2StreamState& s, int status, const Fields& headers,
                                         std::string_view body) {
  if (s.closed || closing_) return;
  // The whole response is known: HEADERS (with END_STREAM, or the body's DATA behind it)
  // is submitted now. Names (lowercased) and values go into one pooled block that the
  // stream keeps while nghttp2 points into it (NO_COPY): nghttp2 neither copies nor
  // lowercases them again. Unusually many fields take the general way.
  constexpr std::size_t kMaxFields = 32;
  if (s.headers_written || headers.size() > kMaxFields || status < 200 || status > 999) {
    write_head_fields(s, status, headers);
    if (!body.empty()) write_body(s, body);
    finish_response(s);
    return;
  }
  const std::string_view date = http_date_now();
  const std::string& server_name = ctx_->base->options.server_name;
  std::size_t bytes = 3 + date.size() + server_name.size();
  for (const auto& f : headers) {
    bytes += std::string_view(f.name).size() + std::string_view(f.value).size();
  }
  char* p = s.head_block.allocate(bytes);
  constexpr std::uint8_t kNoCopy = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
  auto nv = [](std::string_view name, std::string_view value) {
    return nghttp2_nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data())),
                      reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())), name.size(),
                      value.size(), kNoCopy};
  };
  auto put = [&p](std::string_view text) {
    std::memcpy(p, text.data(), text.size());
    std::string_view copy(p, text.size());
    p += text.size();
    return copy;
  };
  nghttp2_nv nva[kMaxFields + 3];
  std::size_t n = 0;
  char status_text[3] = {static_cast<char>('0' + status / 100),
                         static_cast<char>('0' + status / 10 % 10),
                         static_cast<char>('0' + status % 10)};
  nva[n++] = nv(":status", put(std::string_view(status_text, 3)));
  bool has_date = false, has_server = false;
  for (const auto& f : headers) {
    std::string_view name_in(f.name), value(f.value);
    if (checked_by_sender(f)) {
      assert(lowercase_field_name(name_in, p) && is_valid_header_value(value));
      lowercase_token(name_in, p);
    } else if (!lowercase_field_name(name_in, p) || !is_valid_header_value(value)) {
      s.head_block.reset();
      throw std::invalid_argument("invalid response header field: " + std::string(name_in));
    }
    std::string_view name(p, name_in.size());
    p += name_in.size();
    if (is_connection_specific(name)) continue;
    if (name == "date") has_date = true;
    if (name == "server") has_server = true;
    nva[n++] = nv(name, put(value));
  }
  if (!has_date) nva[n++] = nv("date", put(date));
  if (!has_server && !server_name.empty()) nva[n++] = nv("server", put(server_name));
  s.headers_written = true;
  s.headers_submitted = true;
  s.finished = true;
  s.no_body = s.head || status == 204 || status == 304;
  if (s.request) s.request->mark_finished();
  bool with_body = !s.no_body && !body.empty();
  if (with_body) {
    s.out.append(body);
    s.queued += body.size();
    queued_body_ += body.size();
  }
  nghttp2_data_provider provider;
  provider.source.ptr = &s;
  provider.read_callback = &HTTP2Session::read_body;
  // The state outlives the provider and the head block, as in submit_headers.
  int rv = nghttp2_submit_response(session_, s.id, nva, n, with_body ? &provider : nullptr);
  if (rv != 0) log::error("http2", std::string("submit_response: ") + nghttp2_strerror(rv));
  schedule_flush();
}

void HTTP2Session::submit_headers(HTTP2StreamState& s, bool with_body) {
  s.headers_submitted = true;
  std::vector<nghttp2_nv> nva;
  nva.reserve(s.response_fields.size() + 1);
  static const std::string kStatus = ":status";
  nva.push_back(make_nv(kStatus, s.status));
  for (const auto& f : s.response_fields) nva.push_back(make_nv(f.name, f.value));
  nghttp2_data_provider provider;
  provider.source.ptr = &s;
  provider.read_callback = &HTTP2Session::read_body;
  // nghttp2 points into the fields (NO_COPY), which the state keeps until END_STREAM is
  // sent; the state outlives the provider (the stream table holds it until nghttp2
  // reports the stream closed).
  int rv = nghttp2_submit_response(session_, s.id, nva.data(), nva.size(),
                                   with_body ? &provider : nullptr);
  if (rv != 0) log::error("http2", std::string("submit_response: ") + nghttp2_strerror(rv));
  schedule_flush();
}

void HTTP2Session::write_body(HTTP2StreamState& s, std::string_view chunk) {
  if (s.closed || closing_ || chunk.empty()) return;
  if (!s.headers_written) throw std::logic_error("write before write_headers");
  if (s.no_body || s.finished) return;
  if (s.segments.empty()) {
    s.out.append(chunk);
  } else {
    if (s.segments.back().file.file) s.segments.emplace_back();
    s.segments.back().bytes.append(chunk);
    s.segment_bytes += chunk.size();
  }
  s.queued += chunk.size();
  queued_body_ += chunk.size();
  if (!s.headers_submitted) {
    submit_headers(s, true);
  } else if (s.deferred) {
    s.deferred = false;
    nghttp2_session_resume_data(session_, s.id);
  }
  schedule_flush();
}

void HTTP2Session::write_file(HTTP2StreamState& s, FileRegion region) {
  if (s.closed || closing_ || region.length == 0) return;
  if (!s.headers_written) throw std::logic_error("write before write_headers");
  if (s.no_body || s.finished) return;
  if (!region.file) throw std::invalid_argument("write_file: no file");
  s.queued += region.length;
  queued_body_ += region.length;
  s.segments.push_back({std::move(region), {}});
  if (!s.headers_submitted) {
    submit_headers(s, true);
  } else if (s.deferred) {
    s.deferred = false;
    nghttp2_session_resume_data(session_, s.id);
  }
  schedule_flush();
}

void HTTP2Session::finish_response(HTTP2StreamState& s) {
  if (s.closed || closing_ || s.finished) return;
  if (!s.headers_written) throw std::logic_error("finish before write_headers");
  s.finished = true;
  if (s.request) s.request->mark_finished();
  if (!s.headers_submitted) {
    submit_headers(s, s.queued > 0);
  } else if (s.deferred) {
    s.deferred = false;
    nghttp2_session_resume_data(session_, s.id);
  }
  schedule_flush();
}

void HTTP2Session::abort_response(HTTP2StreamState& s) {
  if (s.closed || closing_ || s.finished) return;
  if (!s.headers_written) {
    HTTPHeaders h;
    h.add("Content-Length", "0");
    write_headers(s, 502, h);
    finish_response(s);
    return;
  }
  // RST_STREAM rather than END_STREAM: the client must not take the cut body as whole.
  s.finished = true;
  if (s.request) s.request->mark_finished();
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_INTERNAL_ERROR);
  schedule_flush();
}

ssize_t HTTP2Session::read_body(nghttp2_session*, std::int32_t, std::uint8_t* buf,
                                std::size_t length, std::uint32_t* data_flags,
                                nghttp2_data_source* source, void* user) {
  auto* self = static_cast<HTTP2Session*>(user);
  auto& s = *static_cast<HTTP2StreamState*>(source->ptr);
  // Bytes in memory first, then what follows them: a file region (read straight into the
  // frame) or the bytes written after one, which become `out`.
  while (s.pending() == 0 && !s.segments.empty()) {
    auto& seg = s.segments.front();
    if (seg.file.file && seg.file.length > 0) break;
    if (!seg.file.file) {
      s.segment_bytes -= seg.bytes.size();
      s.out = std::move(seg.bytes);
      s.out_pos = 0;
    }
    s.segments.erase(s.segments.begin());
  }
  std::size_t n = 0;
  if (s.pending() > 0) {
    n = std::min(length, s.pending());
    std::memcpy(buf, s.out.data() + s.out_pos, n);
    s.out_pos += n;
    if (s.out_pos == s.out.size()) {
      s.out.clear();
      s.out_pos = 0;
    }
  } else if (!s.segments.empty()) {
    // From the page cache, on the loop, as sendfile reads for HTTP/1.
    FileRegion& region = s.segments.front().file;
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(length, region.length));
    ssize_t got;
    do {
      got = ::pread(region.file->fd(), buf, want, static_cast<off_t>(region.offset));
    } while (got < 0 && errno == EINTR);
    if (got <= 0) {
      // Truncated since it was opened (or unreadable): the client must not take the
      // short body as whole, so the stream is reset.
      log::error("http2", "response file ended early; resetting the stream");
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    n = static_cast<std::size_t>(got);
    region.offset += n;
    region.length -= n;
    if (region.length == 0) s.segments.erase(s.segments.begin());
  }
  s.queued -= n;
  self->queued_body_ -= n;
  if (s.pending() == 0 && s.segments.empty()) {
    if (s.finished) {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    } else if (n == 0) {
      s.deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
  }
  return static_cast<ssize_t>(n);
}

Future<void> HTTP2Session::drain(HTTP2StreamState& s) {
  if (s.closed || closing_) {
    if (s.response_done) return make_ready_future<void>();
    Promise<void> p;
    p.set_exception(std::make_exception_ptr(StreamClosedError(stream_->error())));
    return p.get_future();
  }
  if (s.buffered() <= ctx_->options.stream_high_water) return make_ready_future<void>();
  Promise<void> p;
  s.drainers.push_back(p);
  schedule_flush();
  return p.get_future();
}

void HTTP2Session::wake_drainers(HTTP2StreamState& s) {
  if (s.drainers.empty()) return;
  if (s.closed && !s.response_done) {
    auto waiters = std::move(s.drainers);
    s.drainers.clear();
    for (auto& p : waiters) {
      p.try_set_exception(std::make_exception_ptr(StreamClosedError(stream_->error())));
    }
  } else if (s.closed || s.buffered() <= ctx_->options.stream_high_water) {
    auto waiters = std::move(s.drainers);
    s.drainers.clear();
    for (auto& p : waiters) p.try_set_result();
  }
}

}  // namespace tronada
