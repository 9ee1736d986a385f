// Incremental UTF-8 validation for WebSocket text messages, which arrive in pieces.
#pragma once

#include <cstdint>
#include <string_view>

namespace tronada::ws {

/// Validates UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF)
/// fed in arbitrary pieces, so a bad byte fails a message as soon as it arrives rather
/// than after the whole message was buffered (RFC 6455 section 8.1).
class Utf8Validator {
 public:
  /// False once the input so far cannot be the start of valid UTF-8.
  bool feed(std::string_view piece);
  /// True if everything fed so far is valid and no sequence is left incomplete.
  bool complete() const { return state_ == kAccept; }
  void reset() { state_ = kAccept; }

  /// Whole-string check.
  static bool valid(std::string_view text) {
    Utf8Validator v;
    return v.feed(text) && v.complete();
  }

 private:
  static constexpr std::uint8_t kAccept = 0;
  static constexpr std::uint8_t kReject = 1;
  std::uint8_t state_ = kAccept;
  // For states that restrict the next byte's range (E0, ED, F0, F4 leads).
  std::uint8_t low_ = 0x80;
  std::uint8_t high_ = 0xBF;
  std::uint8_t need_ = 0;  // continuation bytes still expected
};

}  // namespace tronada::ws
