#include "tronada/http/http1_response_writer.h"

#include <cassert>
#include <charconv>
#include <cstring>
#include <stdexcept>
#include <type_traits>

#include "tronada/http/http_date.h"
#include "tronada/http/http_status.h"

namespace tronada {

namespace {

void append_number(std::string& out, std::uint64_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, end);
}

void append_hex(std::string& out, std::uint64_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n, 16);
  out.append(buf, end);
}

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

/// Writes a response head into room already made for it (see write_head).
struct HeadCursor {
  char* p;
  void put(std::string_view s) {
    if (s.empty()) return;  // an empty view may have no data(), which memcpy must not get
    std::memcpy(p, s.data(), s.size());
    p += s.size();
  }
  void put_status(int status) {  // 200..999: always three digits
    p[0] = static_cast<char>('0' + status / 100);
    p[1] = static_cast<char>('0' + status / 10 % 10);
    p[2] = static_cast<char>('0' + status % 10);
    p += 3;
  }
  void field(std::string_view name, std::string_view value) {
    put(name);
    put(": ");
    put(value);
    put("\r\n");
  }
};

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

}  // namespace

void HTTP1ResponseWriter::start(bool http10, bool head_request) {
  *this = HTTP1ResponseWriter();
  http10_ = http10;
  head_request_ = head_request;
}

template <typename Fields>
void HTTP1ResponseWriter::write_head(std::string& out, int status, const Fields& headers,
                                     std::optional<std::string_view> reason,
                                     std::string_view server_name, bool& keep_alive,
                                     bool body_unread) {
  if (status < 200 || status > 999) {
    // 100 Continue is the connection's to send; other interim responses (101, 103) would
    // need a final response after them, which a response channel does not model.
    throw std::invalid_argument("invalid final response status " + std::to_string(status));
  }
  if (reason && !is_valid_reason_phrase(*reason)) {
    throw std::invalid_argument("invalid reason phrase for status " + std::to_string(status));
  }

  // One pass over the fields: validate every one (nothing is written if any is bad) and
  // note the ones that decide the framing.
  using Field = std::remove_cvref_t<decltype(*headers.begin())>;
  const Field* content_length = nullptr;
  const Field* transfer_encoding = nullptr;
  const Field* connection = nullptr;
  bool has_date = false, has_server = false;
  for (const auto& f : headers) {
    if (checked_by_sender(f)) {
      // Checked when stored (see HeaderRef): a cached static response spent a tenth of
      // its instructions checking its fields again, character by character.
      assert(is_valid_header_name(f.name) && is_valid_header_value(f.value));
    } else if (!is_valid_header_name(f.name) || !is_valid_header_value(f.value)) {
      throw std::invalid_argument("invalid response header field: " + std::string(f.name));
    }
    switch (lower(f.name[0])) {
      case 'c':
        if (detail::iequals(f.name, "Content-Length")) {
          if (content_length) throw std::invalid_argument("two Content-Length fields in response");
          content_length = &f;
        } else if (detail::iequals(f.name, "Connection")) {
          connection = &f;
        }
        break;
      case 'd':
        if (detail::iequals(f.name, "Date")) has_date = true;
        break;
      case 's':
        if (detail::iequals(f.name, "Server")) has_server = true;
        break;
      case 't':
        if (detail::iequals(f.name, "Transfer-Encoding")) {
          if (transfer_encoding) {
            throw std::invalid_argument("two Transfer-Encoding fields in response");
          }
          transfer_encoding = &f;
        }
        break;
      default:
        break;
    }
  }
  std::uint64_t length = 0;
  if (content_length) {
    if (transfer_encoding) {
      throw std::invalid_argument("response with both Content-Length and Transfer-Encoding");
    }
    std::string_view cl = content_length->value;
    auto [p, ec] = std::from_chars(cl.data(), cl.data() + cl.size(), length);
    if (cl.empty() || ec != std::errc() || p != cl.data() + cl.size()) {
      throw std::invalid_argument("invalid Content-Length in response");
    }
  }

  head_written_ = true;
  no_body_ = head_request_ || status == 204 || status == 304;
  // A handler's "Transfer-Encoding: chunked" is ours to apply; other codings are the
  // handler's, and only the close can end such a body.
  bool handler_chunked = transfer_encoding && detail::iequals(transfer_encoding->value, "chunked");
  if (content_length) {
    fixed_length_ = true;
    body_remaining_ = no_body_ ? 0 : length;
  } else if (!no_body_) {
    if (transfer_encoding && !handler_chunked) {
      keep_alive = false;
    } else if (http10_) {
      keep_alive = false;  // HTTP/1.0 without a length: the close ends the body
    } else {
      chunked_ = true;
    }
  }
  if (body_unread) {
    // Answering before the request body arrived (an error, usually): the rest of the body
    // would have to be read and discarded; closing (after a linger) is simpler and safe.
    keep_alive = false;
  }
  bool emit_connection = false;
  if (connection) {
    if (detail::iequals(connection->value, "close")) {
      keep_alive = false;
      emit_connection = true;
    } else {
      // Kept unless we close anyway, in which case ours says so instead.
      emit_connection = keep_alive;
    }
  }

  // Sized first, then copied piece by piece into place: one resize instead of four
  // appends per field, each with its capacity check (a tenth of a hello request).
  std::string_view reason_text = reason ? *reason : http_reason(status);
  std::string_view date = has_date ? std::string_view() : http_date_now();
  bool add_server = !has_server && !server_name.empty();
  bool add_chunked = chunked_ || (handler_chunked && no_body_ && !http10_);
  std::string_view connection_line;
  if (!emit_connection) {
    if (!keep_alive) {
      connection_line = "Connection: close\r\n";
    } else if (http10_) {
      connection_line = "Connection: keep-alive\r\n";
    }
  }
  constexpr std::string_view kChunked = "Transfer-Encoding: chunked\r\n";
  auto emitted = [&](const Field& f) {
    if (&f == connection && !emit_connection) return false;
    return !(&f == transfer_encoding && handler_chunked);  // ours follows if it applies
  };
  std::size_t need = 9 + 3 + 1 + reason_text.size() + 2;
  for (const auto& f : headers) {
    if (emitted(f)) need += f.name.size() + f.value.size() + 4;
  }
  if (!has_date) need += 4 + date.size() + 4;
  if (add_server) need += 6 + server_name.size() + 4;
  if (add_chunked) need += kChunked.size();
  need += connection_line.size() + 2;

  std::size_t at = out.size();
  out.resize(at + need);
  HeadCursor c{out.data() + at};
  c.put(http10_ ? "HTTP/1.0 " : "HTTP/1.1 ");
  c.put_status(status);
  c.put(" ");
  c.put(reason_text);
  c.put("\r\n");
  for (const auto& f : headers) {
    if (emitted(f)) c.field(f.name, f.value);
  }
  if (!has_date) c.field("Date", date);
  if (add_server) c.field("Server", server_name);
  if (add_chunked) c.put(kChunked);
  c.put(connection_line);
  c.put("\r\n");
  assert(c.p == out.data() + out.size());
}

template void HTTP1ResponseWriter::write_head(std::string&, int, const HTTPHeaders&,
                                              std::optional<std::string_view>, std::string_view,
                                              bool&, bool);
template void HTTP1ResponseWriter::write_head(std::string&, int, const std::span<const HeaderRef>&,
                                              std::optional<std::string_view>, std::string_view,
                                              bool&, bool);

void HTTP1ResponseWriter::write_switching_head(std::string& out, const HTTPHeaders& headers) {
  for (const auto& f : headers) {
    if (!is_valid_header_name(f.name) || !is_valid_header_value(f.value)) {
      throw std::invalid_argument("invalid response header field: " + f.name);
    }
  }
  head_written_ = true;
  switching_ = true;
  no_body_ = true;
  out.append("HTTP/1.1 101 Switching Protocols\r\n");
  bool has_date = false;
  for (const auto& f : headers) {
    if (detail::iequals(f.name, "Date")) has_date = true;
    append_field(out, f.name, f.value);
  }
  if (!has_date) append_field(out, "Date", http_date_now());
  out.append("\r\n");
}

std::uint64_t HTTP1ResponseWriter::begin_body_piece(std::string& out, std::uint64_t size) {
  if (fixed_length_) {
    if (size > body_remaining_) size = body_remaining_;
    body_remaining_ -= size;
  }
  if (chunked_ && size > 0) {
    append_hex(out, size);
    out.append("\r\n");
  }
  return size;
}

bool HTTP1ResponseWriter::finish(std::string& out) {
  if (chunked_) out.append("0\r\n\r\n");
  return !(fixed_length_ && body_remaining_ > 0);
}

void HTTP1ResponseWriter::write_error(std::string& out, int status, std::string_view text,
                                      std::string_view server_name) {
  out.append("HTTP/1.1 ");
  append_number(out, static_cast<std::uint64_t>(status));
  out += ' ';
  out.append(http_reason(status));
  out.append("\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ");
  append_number(out, text.size() + 1);
  out.append("\r\nConnection: close\r\nDate: ");
  out.append(http_date_now());
  if (!server_name.empty()) {
    out.append("\r\nServer: ");
    out.append(server_name);
  }
  out.append("\r\n\r\n");
  out.append(text);
  out += '\n';
}

}  // namespace tronada
