#include "tronada/websocket/frame_codec.h"

#include <openssl/rand.h>

#include <cstring>
#include <stdexcept>

namespace tronada::ws {

bool is_sendable_close_code(std::uint16_t code) {
  if (code >= 3000 && code <= 4999) return true;  // registered (3xxx) and private (4xxx)
  switch (code) {
    case 1000:
    case 1001:
    case 1002:
    case 1003:
    case 1007:
    case 1008:
    case 1009:
    case 1010:
    case 1011:
      return true;
    default:
      return false;
  }
}

namespace {

bool is_control(Opcode op) {
  return (static_cast<std::uint8_t>(op) & 0x8) != 0;
}

bool is_known(std::uint8_t op) {
  return op <= 0x2 || (op >= 0x8 && op <= 0xA);
}

// A frame header's whole size, from its second byte (the length code and mask bit).
std::size_t header_size(unsigned char second) {
  std::size_t len7 = second & 0x7F;
  return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((second & 0x80) ? 4 : 0);
}

}  // namespace

FrameParser::FrameParser(Role role, std::size_t max_message_size, PerMessageDeflate* deflate)
    : role_(role), max_message_size_(max_message_size), deflate_(deflate) {}

bool FrameParser::fail(std::uint16_t code, std::string reason) {
  state_ = State::kError;
  error_code_ = code;
  error_reason_ = std::move(reason);
  std::string().swap(message_);
  return false;
}

bool FrameParser::feed(std::string_view data, std::vector<Event>& events, std::string* arena) {
  if (arena) arena->reserve(arena->size() + data.size());
  std::size_t i = 0;
  while (i < data.size()) {
    switch (state_) {
      case State::kError:
        return false;
      case State::kClosed:
        return true;  // nothing may follow a close frame; it is dropped
      case State::kHeader: {
        if (header_have_ == 0 && data.size() - i >= 2) {
          // The usual case, a whole header in the buffer: parsed where it lies.
          auto* h = reinterpret_cast<const unsigned char*>(data.data() + i);
          std::size_t need = header_size(h[1]);
          if (data.size() - i >= need) {
            i += need;
            if (!on_header(h)) return false;
            if (remaining_ == 0 && !on_frame_end(events)) return false;
            break;
          }
        }
        std::size_t take = std::min<std::size_t>(header_need_ - header_have_, data.size() - i);
        std::memcpy(header_ + header_have_, data.data() + i, take);
        header_have_ = static_cast<std::uint8_t>(header_have_ + take);
        i += take;
        if (header_have_ < header_need_) break;
        if (header_need_ == 2) {
          // The first two bytes tell the header's full size.
          header_need_ = static_cast<std::uint8_t>(header_size(header_[1]));
          if (header_need_ > 2) break;
        }
        if (!on_header(header_)) return false;
        if (remaining_ == 0 && !on_frame_end(events)) return false;
        break;
      }
      case State::kPayload: {
        if (arena && fin_ && opcode_ != Opcode::kContinuation && !is_control(opcode_) &&
            !message_compressed_ && message_.empty() && remaining_ <= data.size() - i) {
          auto len = static_cast<std::size_t>(remaining_);
          if (!whole_message_into(data.substr(i, len), events, *arena)) return false;
          i += len;
          break;
        }
        std::size_t take =
            static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, data.size() - i));
        if (!on_payload(const_cast<char*>(data.data() + i), take)) return false;
        i += take;
        remaining_ -= take;
        if (remaining_ == 0 && !on_frame_end(events)) return false;
        break;
      }
    }
  }
  return state_ != State::kError;
}

bool FrameParser::on_header(const unsigned char* h) {
  fin_ = (h[0] & 0x80) != 0;
  bool rsv1 = (h[0] & 0x40) != 0;
  if (h[0] & 0x30) return fail(close_code::kProtocolError, "reserved bits RSV2/RSV3 set");
  std::uint8_t op = h[0] & 0x0F;
  if (!is_known(op))
    return fail(close_code::kProtocolError, "reserved opcode " + std::to_string(op));
  opcode_ = static_cast<Opcode>(op);
  masked_ = (h[1] & 0x80) != 0;
  if (role_ == Role::kServer && !masked_) {
    return fail(close_code::kProtocolError, "client frame not masked");
  }
  if (role_ == Role::kClient && masked_) {
    return fail(close_code::kProtocolError, "server frame masked");
  }
  std::uint64_t len = h[1] & 0x7F;
  std::size_t pos = 2;
  if (len == 126) {
    len = (std::uint64_t{h[2]} << 8) | h[3];
    pos = 4;
  } else if (len == 127) {
    len = 0;
    for (int k = 0; k < 8; ++k) len = (len << 8) | h[2 + k];
    pos = 10;
    if (len >> 63) return fail(close_code::kProtocolError, "64-bit length with the top bit set");
  }
  if (masked_) {
    std::memcpy(mask_, h + pos, 4);
    mask_pos_ = 0;
  }
  remaining_ = len;
  header_have_ = 0;
  header_need_ = 2;

  if (is_control(opcode_)) {
    if (!fin_) return fail(close_code::kProtocolError, "fragmented control frame");
    if (len > 125) return fail(close_code::kProtocolError, "control frame over 125 bytes");
    if (rsv1) return fail(close_code::kProtocolError, "RSV1 on a control frame");
    control_.clear();
  } else if (opcode_ == Opcode::kContinuation) {
    if (!in_message_) return fail(close_code::kProtocolError, "continuation without a message");
    if (rsv1) return fail(close_code::kProtocolError, "RSV1 on a continuation frame");
  } else {
    if (in_message_) {
      return fail(close_code::kProtocolError, "new message inside a fragmented one");
    }
    if (rsv1 && !deflate_) {
      return fail(close_code::kProtocolError, "RSV1 set without permessage-deflate");
    }
    in_message_ = true;
    message_text_ = opcode_ == Opcode::kText;
    message_compressed_ = rsv1;
    message_.clear();
    utf8_.reset();
  }
  if (!is_control(opcode_) && max_message_size_ &&
      (len > max_message_size_ ||
       (!message_compressed_ && message_.size() + len > max_message_size_))) {
    return fail(close_code::kMessageTooBig,
                "message over " + std::to_string(max_message_size_) + " bytes");
  }
  state_ = State::kPayload;
  return true;
}

void FrameParser::unmask(char* data, std::size_t len) {
  if (!masked_) return;
  auto* p = reinterpret_cast<unsigned char*>(data);
  std::size_t k = 0;
  // Byte by byte up to the mask's phase, then eight at a time.
  while (k < len && mask_pos_ != 0) {
    p[k++] ^= mask_[mask_pos_];
    mask_pos_ = static_cast<std::uint8_t>((mask_pos_ + 1) & 3);
  }
  if (len - k >= 8) {
    // The key twice: its bytes repeat every 4, whatever the byte order.
    std::uint32_t m4;
    std::memcpy(&m4, mask_, 4);
    std::uint64_t m = (std::uint64_t{m4} << 32) | m4;
    for (; len - k >= 8; k += 8) {
      std::uint64_t w;
      std::memcpy(&w, p + k, 8);
      w ^= m;
      std::memcpy(p + k, &w, 8);
    }
  }
  for (; k < len; ++k) {
    p[k] ^= mask_[mask_pos_];
    mask_pos_ = static_cast<std::uint8_t>((mask_pos_ + 1) & 3);
  }
}

bool FrameParser::on_payload(char* data, std::size_t len) {
  if (len == 0) return true;
  if (is_control(opcode_)) {
    std::size_t at = control_.size();
    control_.append(data, len);
    unmask(control_.data() + at, len);
    return true;
  }
  std::size_t at = message_.size();
  if (message_compressed_) {
    // Per thread, not per connection: only this call needs the unmasked bytes, and an
    // idle connection then holds none.
    thread_local std::string scratch;
    scratch.assign(data, len);
    unmask(scratch.data(), len);
    auto r = deflate_->decompress(scratch, message_, max_message_size_);
    if (scratch.capacity() > 64 * 1024) std::string().swap(scratch);
    if (r == PerMessageDeflate::Result::kTooBig) {
      return fail(close_code::kMessageTooBig, "decompressed message over the size limit");
    }
    if (r == PerMessageDeflate::Result::kCorrupt) {
      return fail(close_code::kInvalidPayload, "invalid compressed data");
    }
  } else {
    message_.append(data, len);
    unmask(message_.data() + at, len);
  }
  if (message_text_ && !utf8_.feed(std::string_view(message_).substr(at))) {
    return fail(close_code::kInvalidPayload, "invalid UTF-8 in a text message");
  }
  return true;
}

bool FrameParser::whole_message_into(std::string_view payload, std::vector<Event>& events,
                                     std::string& arena) {
  std::size_t at = arena.size();
  arena.append(payload);
  unmask(arena.data() + at, payload.size());
  std::string_view message(arena.data() + at, payload.size());
  if (message_text_ && !Utf8Validator::valid(message)) {
    return fail(close_code::kInvalidPayload, "invalid UTF-8 in a text message");
  }
  remaining_ = 0;
  state_ = State::kHeader;
  in_message_ = false;
  Event& e = events.emplace_back();
  e.type = message_text_ ? Event::Type::kText : Event::Type::kBinary;
  e.view = message;
  return true;
}

bool FrameParser::on_frame_end(std::vector<Event>& events) {
  state_ = State::kHeader;
  switch (opcode_) {
    case Opcode::kPing:
    case Opcode::kPong: {
      Event e;
      e.type = opcode_ == Opcode::kPing ? Event::Type::kPing : Event::Type::kPong;
      e.data = std::move(control_);
      control_.clear();
      events.push_back(std::move(e));
      return true;
    }
    case Opcode::kClose: {
      Event e;
      e.type = Event::Type::kClose;
      if (control_.size() == 1) return fail(close_code::kProtocolError, "close payload of 1 byte");
      if (control_.empty()) {
        e.code = close_code::kNoStatus;
      } else {
        auto* p = reinterpret_cast<const unsigned char*>(control_.data());
        e.code = static_cast<std::uint16_t>((p[0] << 8) | p[1]);
        if (!is_sendable_close_code(e.code)) {
          return fail(close_code::kProtocolError, "invalid close code " + std::to_string(e.code));
        }
        e.data = control_.substr(2);
        if (!Utf8Validator::valid(e.data)) {
          return fail(close_code::kInvalidPayload, "invalid UTF-8 in the close reason");
        }
      }
      control_.clear();
      events.push_back(std::move(e));
      state_ = State::kClosed;
      return true;
    }
    default:
      break;
  }
  if (!fin_) return true;  // more fragments follow
  if (message_compressed_) {
    std::size_t at = message_.size();
    auto r = deflate_->finish_message(message_, max_message_size_);
    if (r == PerMessageDeflate::Result::kTooBig) {
      return fail(close_code::kMessageTooBig, "decompressed message over the size limit");
    }
    if (r == PerMessageDeflate::Result::kCorrupt) {
      return fail(close_code::kInvalidPayload, "invalid compressed data");
    }
    if (message_text_ && !utf8_.feed(std::string_view(message_).substr(at))) {
      return fail(close_code::kInvalidPayload, "invalid UTF-8 in a text message");
    }
  }
  if (message_text_ && !utf8_.complete()) {
    return fail(close_code::kInvalidPayload, "text message ends inside a UTF-8 sequence");
  }
  Event e;
  e.type = message_text_ ? Event::Type::kText : Event::Type::kBinary;
  e.data = std::move(message_);
  message_ = std::string();
  in_message_ = false;
  events.push_back(std::move(e));
  return true;
}

std::size_t encode_frame_header(unsigned char (&h)[kMaxFrameHeader], Opcode opcode,
                                std::uint64_t len, bool fin, bool rsv1, const unsigned char* mask) {
  if (is_control(opcode) && len > 125) {
    throw std::invalid_argument("WebSocket control frame payload over 125 bytes");
  }
  std::size_t n = 2;
  h[0] = static_cast<unsigned char>((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) |
                                    static_cast<std::uint8_t>(opcode));
  unsigned char mask_bit = mask ? 0x80 : 0;
  if (len <= 125) {
    h[1] = static_cast<unsigned char>(mask_bit | len);
  } else if (len <= 0xFFFF) {
    h[1] = mask_bit | 126;
    h[2] = static_cast<unsigned char>(len >> 8);
    h[3] = static_cast<unsigned char>(len);
    n = 4;
  } else {
    h[1] = mask_bit | 127;
    for (int k = 0; k < 8; ++k) h[2 + k] = static_cast<unsigned char>(len >> (56 - 8 * k));
    n = 10;
  }
  if (mask) {
    std::memcpy(h + n, mask, 4);
    n += 4;
  }
  return n;
}

void append_frame(std::string& out, Opcode opcode, std::string_view payload, bool fin, bool rsv1,
                  const unsigned char* mask) {
  unsigned char h[kMaxFrameHeader];
  std::size_t n = encode_frame_header(h, opcode, payload.size(), fin, rsv1, mask);
  std::size_t at = out.size();
  out.reserve(at + n + payload.size());
  out.append(reinterpret_cast<const char*>(h), n);
  out.append(payload);
  if (mask) {
    auto* p = reinterpret_cast<unsigned char*>(out.data() + at + n);
    for (std::size_t k = 0; k < payload.size(); ++k) p[k] ^= mask[k & 3];
  }
}

void FrameWriter::frame(std::string& out, Opcode opcode, std::string_view payload, bool rsv1) {
  if (role_ == Role::kClient) {
    unsigned char mask[4];
    if (RAND_bytes(mask, 4) != 1) throw std::runtime_error("RAND_bytes failed");
    append_frame(out, opcode, payload, true, rsv1, mask);
  } else {
    append_frame(out, opcode, payload, true, rsv1, nullptr);
  }
}

std::string FrameWriter::message(std::string_view data, bool binary) {
  std::string out;
  Opcode op = binary ? Opcode::kBinary : Opcode::kText;
  if (deflate_ && data.size() >= deflate_->min_compress_size()) {
    std::string compressed = deflate_->compress(data);
    frame(out, op, compressed, true);
  } else {
    frame(out, op, data, false);
  }
  return out;
}

std::size_t FrameWriter::plain_message_header(unsigned char (&h)[kMaxFrameHeader],
                                              std::string_view data, bool binary) const {
  if (role_ == Role::kClient) return 0;
  if (deflate_ && data.size() >= deflate_->min_compress_size()) return 0;
  return encode_frame_header(h, binary ? Opcode::kBinary : Opcode::kText, data.size(), true, false,
                             nullptr);
}

std::string FrameWriter::control(Opcode opcode, std::string_view payload) {
  std::string out;
  frame(out, opcode, payload, false);
  return out;
}

std::string FrameWriter::close(std::uint16_t code, std::string_view reason) {
  if (code == 0) return control(Opcode::kClose, {});
  if (reason.size() > 123) {
    std::size_t cut = 123;
    // Back up to a character boundary so the reason stays valid UTF-8.
    while (cut > 0 && (static_cast<unsigned char>(reason[cut]) & 0xC0) == 0x80) --cut;
    reason = reason.substr(0, cut);
  }
  std::string payload;
  payload.push_back(static_cast<char>(code >> 8));
  payload.push_back(static_cast<char>(code & 0xFF));
  payload.append(reason);
  return control(Opcode::kClose, payload);
}

}  // namespace tronada::ws
