#include "tronada/websocket/utf8_validator.h"

namespace tronada::ws {

bool Utf8Validator::feed(std::string_view piece) {
  if (state_ == kReject) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(piece.data());
  const auto* end = p + piece.size();
  while (p < end) {
    if (need_ == 0) {
      // ASCII runs are the common case: skip them eight bytes at a time.
      while (end - p >= 8) {
        std::uint64_t word;
        __builtin_memcpy(&word, p, 8);
        if (word & 0x8080808080808080ULL) break;
        p += 8;
      }
      if (p == end) break;
      unsigned char c = *p++;
      if (c < 0x80) continue;
      low_ = 0x80;
      high_ = 0xBF;
      if (c >= 0xC2 && c <= 0xDF) {
        need_ = 1;
      } else if (c >= 0xE0 && c <= 0xEF) {
        need_ = 2;
        if (c == 0xE0) low_ = 0xA0;   // overlong
        if (c == 0xED) high_ = 0x9F;  // surrogates
      } else if (c >= 0xF0 && c <= 0xF4) {
        need_ = 3;
        if (c == 0xF0) low_ = 0x90;   // overlong
        if (c == 0xF4) high_ = 0x8F;  // past U+10FFFF
      } else {
        state_ = kReject;
        return false;
      }
      state_ = 2;  // inside a sequence
    } else {
      unsigned char c = *p++;
      if (c < low_ || c > high_) {
        state_ = kReject;
        return false;
      }
      low_ = 0x80;
      high_ = 0xBF;
      if (--need_ == 0) state_ = kAccept;
    }
  }
  return true;
}

}  // namespace tronada::ws
