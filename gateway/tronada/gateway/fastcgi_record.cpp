#include "tronada/gateway/fastcgi_record.h"

#include <cstring>

namespace tronada::fastcgi {

namespace {

void append_header(std::string& out, std::uint8_t type, std::uint16_t request_id,
                   std::size_t content_length, std::size_t padding) {
  const char header[kHeaderSize] = {
      static_cast<char>(kVersion1),
      static_cast<char>(type),
      static_cast<char>(request_id >> 8),
      static_cast<char>(request_id & 0xff),
      static_cast<char>(content_length >> 8),
      static_cast<char>(content_length & 0xff),
      static_cast<char>(padding),
      0,
  };
  out.append(header, kHeaderSize);
}

void append_one(std::string& out, std::uint8_t type, std::uint16_t request_id,
                std::string_view content) {
  // Padding to 8 bytes keeps the responder's reads aligned, as the spec recommends.
  std::size_t padding = (8 - content.size() % 8) % 8;
  append_header(out, type, request_id, content.size(), padding);
  out.append(content);
  out.append(padding, '\0');
}

void append_length(std::string& out, std::size_t n) {
  if (n < 128) {
    out.push_back(static_cast<char>(n));
    return;
  }
  if (n > 0x7fffffffu) throw std::length_error("FastCGI name or value longer than 2^31-1");
  const char b[4] = {static_cast<char>(((n >> 24) & 0x7f) | 0x80),
                     static_cast<char>((n >> 16) & 0xff), static_cast<char>((n >> 8) & 0xff),
                     static_cast<char>(n & 0xff)};
  out.append(b, 4);
}

std::size_t length_size(std::size_t n) {
  return n < 128 ? 1 : 4;
}

/// Appends name-value pairs in records of at most 64 KiB (a pair may span records: the
/// spec defines the stream, not the records, as the unit).
void append_pairs(std::string& out, RecordType type, std::uint16_t request_id,
                  const NameValueViews& pairs) {
  std::size_t total = 0;
  for (const auto& [name, value] : pairs) {
    total += length_size(name.size()) + length_size(value.size()) + name.size() + value.size();
  }
  if (total > 0 && total <= kMaxContentLength) {
    // The usual case, one record: the pairs go straight into `out`, sized once, rather
    // than through a second buffer that grew pair by pair (a tenth of a PHP request's
    // instructions in the gateway were that growth and its copy).
    std::size_t padding = (8 - total % 8) % 8;
    out.reserve(out.size() + 2 * kHeaderSize + total + padding);  // and the empty record
    append_header(out, static_cast<std::uint8_t>(type), request_id, total, padding);
    for (const auto& [name, value] : pairs) append_name_value(out, name, value);
    out.append(padding, '\0');
    return;
  }
  std::string body;
  body.reserve(total);
  for (const auto& [name, value] : pairs) append_name_value(body, name, value);
  std::string_view rest(body);
  while (!rest.empty()) {
    std::string_view piece = rest.substr(0, kMaxContentLength);
    append_one(out, static_cast<std::uint8_t>(type), request_id, piece);
    rest.remove_prefix(piece.size());
  }
}

}  // namespace

void append_record(std::string& out, RecordType type, std::uint16_t request_id,
                   std::string_view content) {
  auto t = static_cast<std::uint8_t>(type);
  if (content.empty()) {
    append_one(out, t, request_id, content);
    return;
  }
  while (!content.empty()) {
    std::string_view piece = content.substr(0, kMaxContentLength);
    append_one(out, t, request_id, piece);
    content.remove_prefix(piece.size());
  }
}

void append_begin_request(std::string& out, std::uint16_t request_id, Role role, bool keep_conn) {
  auto r = static_cast<std::uint16_t>(role);
  const char body[8] = {static_cast<char>(r >> 8), static_cast<char>(r & 0xff),
                        static_cast<char>(keep_conn ? kKeepConn : 0)};
  append_one(out, static_cast<std::uint8_t>(RecordType::begin_request), request_id,
             std::string_view(body, 8));
}

void append_end_request(std::string& out, std::uint16_t request_id, std::uint32_t app_status,
                        ProtocolStatus status) {
  const char body[8] = {static_cast<char>(app_status >> 24),
                        static_cast<char>((app_status >> 16) & 0xff),
                        static_cast<char>((app_status >> 8) & 0xff),
                        static_cast<char>(app_status & 0xff), static_cast<char>(status)};
  append_one(out, static_cast<std::uint8_t>(RecordType::end_request), request_id,
             std::string_view(body, 8));
}

void append_abort_request(std::string& out, std::uint16_t request_id) {
  append_one(out, static_cast<std::uint8_t>(RecordType::abort_request), request_id, {});
}

void append_name_value(std::string& out, std::string_view name, std::string_view value) {
  append_length(out, name.size());
  append_length(out, value.size());
  out.append(name);
  out.append(value);
}

void append_params(std::string& out, std::uint16_t request_id, const NameValueViews& params) {
  append_pairs(out, RecordType::params, request_id, params);
  append_one(out, static_cast<std::uint8_t>(RecordType::params), request_id, {});
}

void append_get_values(std::string& out, const std::vector<std::string>& names) {
  NameValuePairs pairs;
  for (const auto& n : names) pairs.emplace_back(n, "");
  std::string body;
  for (const auto& [name, value] : pairs) append_name_value(body, name, value);
  if (body.size() > kMaxContentLength) throw std::length_error("FCGI_GET_VALUES too long");
  append_one(out, static_cast<std::uint8_t>(RecordType::get_values), 0, body);
}

void append_get_values_result(std::string& out, const NameValuePairs& values) {
  std::string body;
  for (const auto& [name, value] : values) append_name_value(body, name, value);
  if (body.size() > kMaxContentLength) throw std::length_error("FCGI_GET_VALUES_RESULT too long");
  append_one(out, static_cast<std::uint8_t>(RecordType::get_values_result), 0, body);
}

void append_unknown_type(std::string& out, std::uint8_t type) {
  const char body[8] = {static_cast<char>(type)};
  append_one(out, static_cast<std::uint8_t>(RecordType::unknown_type), 0,
             std::string_view(body, 8));
}

NameValuePairs parse_name_values(std::string_view content) {
  NameValuePairs out;
  std::size_t pos = 0;
  auto read_length = [&]() -> std::size_t {
    if (pos >= content.size()) throw ProtocolError("FastCGI name-value pair truncated");
    auto b0 = static_cast<unsigned char>(content[pos]);
    if (b0 < 128) {
      ++pos;
      return b0;
    }
    if (content.size() - pos < 4) throw ProtocolError("FastCGI name-value length truncated");
    auto b = [&](std::size_t i) { return static_cast<unsigned char>(content[pos + i]); };
    std::size_t n = (static_cast<std::size_t>(b0 & 0x7f) << 24) |
                    (static_cast<std::size_t>(b(1)) << 16) | (static_cast<std::size_t>(b(2)) << 8) |
                    b(3);
    pos += 4;
    return n;
  };
  while (pos < content.size()) {
    std::size_t name_len = read_length();
    std::size_t value_len = read_length();
    if (name_len > content.size() - pos || value_len > content.size() - pos - name_len) {
      throw ProtocolError("FastCGI name-value pair longer than its record");
    }
    out.emplace_back(std::string(content.substr(pos, name_len)),
                     std::string(content.substr(pos + name_len, value_len)));
    pos += name_len + value_len;
  }
  return out;
}

// --- RecordParser ---------------------------------------------------------------

std::size_t RecordParser::record_size(const unsigned char* h) {
  std::size_t content = (static_cast<std::size_t>(h[4]) << 8) | h[5];
  return kHeaderSize + content + h[6];
}

void RecordParser::emit(const unsigned char* h) {
  Record r;
  r.type = h[1];
  r.request_id = static_cast<std::uint16_t>((h[2] << 8) | h[3]);
  std::size_t content = (static_cast<std::size_t>(h[4]) << 8) | h[5];
  r.content = std::string_view(reinterpret_cast<const char*>(h) + kHeaderSize, content);
  cb_(r);
}

void RecordParser::feed(std::string_view data) {
  auto check_version = [](unsigned char v) {
    if (v != kVersion1) {
      throw ProtocolError("FastCGI record with version " + std::to_string(v) + ", expected 1");
    }
  };
  // Finish a partial record first, copying only what it needs.
  if (!buffer_.empty()) {
    if (buffer_.size() < kHeaderSize) {
      std::size_t take = std::min(kHeaderSize - buffer_.size(), data.size());
      buffer_.append(data.substr(0, take));
      data.remove_prefix(take);
      if (buffer_.size() < kHeaderSize) return;
      check_version(static_cast<unsigned char>(buffer_[0]));
    }
    std::size_t need =
        record_size(reinterpret_cast<const unsigned char*>(buffer_.data())) - buffer_.size();
    std::size_t take = std::min(need, data.size());
    buffer_.append(data.substr(0, take));
    data.remove_prefix(take);
    if (take < need) return;
    std::string record;
    record.swap(buffer_);
    emit(reinterpret_cast<const unsigned char*>(record.data()));
  }
  // Whole records straight from the caller's bytes, without a copy.
  while (data.size() >= kHeaderSize) {
    auto h = reinterpret_cast<const unsigned char*>(data.data());
    check_version(h[0]);
    std::size_t size = record_size(h);
    if (data.size() < size) break;
    emit(h);
    data.remove_prefix(size);
  }
  if (!data.empty()) {
    if (data.size() >= 1) check_version(static_cast<unsigned char>(data[0]));
    buffer_.assign(data);
  }
}

// --- ResponseParser -------------------------------------------------------------

ResponseParser::ResponseParser(std::uint16_t request_id, ResponseHandler& handler)
    : request_id_(request_id),
      handler_(handler),
      parser_([this](const Record& r) { on_record(r); }) {}

void ResponseParser::feed(std::string_view data) {
  parser_.feed(data);
}

void ResponseParser::feed_eof() {
  if (ended_) return;
  if (!parser_.at_boundary()) throw ProtocolError("FastCGI responder closed mid-record");
  throw ProtocolError("FastCGI responder closed the connection before FCGI_END_REQUEST");
}

void ResponseParser::on_record(const Record& r) {
  auto type = static_cast<RecordType>(r.type);
  if (r.request_id == 0) {
    // Management records may come at any time on the connection.
    if (type == RecordType::get_values_result) {
      handler_.on_values(parse_name_values(r.content));
      return;
    }
    if (type == RecordType::unknown_type) {
      unsigned t = r.content.empty() ? 0 : static_cast<unsigned char>(r.content[0]);
      throw ProtocolError("FastCGI responder does not know record type " + std::to_string(t));
    }
    throw ProtocolError("FastCGI record of type " + std::to_string(r.type) + " with request id 0");
  }
  if (r.request_id != request_id_) {
    throw ProtocolError("FastCGI record for request " + std::to_string(r.request_id) +
                        ", expected " + std::to_string(request_id_));
  }
  if (ended_) throw ProtocolError("FastCGI record after FCGI_END_REQUEST");
  started_ = true;
  switch (type) {
    case RecordType::stdout_:
      if (stdout_closed_) throw ProtocolError("FastCGI FCGI_STDOUT after its end");
      if (r.content.empty()) {
        stdout_closed_ = true;
      } else {
        handler_.on_stdout(r.content);
      }
      return;
    case RecordType::stderr_:
      if (stderr_closed_) throw ProtocolError("FastCGI FCGI_STDERR after its end");
      if (r.content.empty()) {
        stderr_closed_ = true;
      } else {
        handler_.on_stderr(r.content);
      }
      return;
    case RecordType::end_request: {
      if (r.content.size() != 8) {
        throw ProtocolError("FastCGI FCGI_END_REQUEST with " + std::to_string(r.content.size()) +
                            " content bytes, expected 8");
      }
      auto b = [&](int i) {
        return static_cast<std::uint32_t>(static_cast<unsigned char>(r.content[i]));
      };
      std::uint32_t app_status = (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
      auto status = static_cast<ProtocolStatus>(b(4));
      ended_ = true;
      handler_.on_end_request(app_status, status);
      return;
    }
    default:
      throw ProtocolError("unexpected FastCGI record type " + std::to_string(r.type) +
                          " from a responder");
  }
}

}  // namespace tronada::fastcgi
