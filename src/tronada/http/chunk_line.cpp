#include "tronada/http/chunk_line.h"

#include "tronada/http/http_headers.h"

namespace tronada::detail {

namespace {

bool is_hex(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool is_ws(unsigned char c) {
  return c == ' ' || c == '\t';
}

// RFC 9110 section 5.6.4: qdtext, and what may follow a backslash.
bool is_qdtext(unsigned char c) {
  return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5B) ||
         (c >= 0x5D && c <= 0x7E) || c >= 0x80;
}

bool is_quoted_pair_char(unsigned char c) {
  return c == '\t' || (c >= 0x20 && c != 0x7F);
}

}  // namespace

const char* ChunkLineScanner::error() const {
  switch (error_) {
    case Error::kNone:
      return "";
    case Error::kSize:
      return "invalid chunk size";
    case Error::kExtension:
      return "invalid chunk extension";
    case Error::kName:
      return "invalid chunk extension name";
    case Error::kValue:
      return "invalid chunk extension value";
    case Error::kQuotedChar:
      return "invalid character in a quoted chunk extension value";
    case Error::kUnterminatedQuote:
      return "unterminated quoted string in a chunk extension";
    case Error::kBareCR:
      return "bare CR in a chunk-size line";
    case Error::kBareLF:
      return "bare LF in a chunk-size line";
  }
  return "";
}

ChunkLineScanner::Byte ChunkLineScanner::next(unsigned char c) {
  if (state_ == State::kCR) {
    if (c != '\n') return fail(Error::kBareCR);
    return Byte::kEnd;
  }
  if (c == '\r') {
    switch (state_) {
      case State::kSize:
        if (!has_digit_) return fail(Error::kSize);
        break;
      case State::kName:
      case State::kToken:
      case State::kAfterQuoted:
        break;
      case State::kQuoted:
      case State::kQuotedPair:
        return fail(Error::kUnterminatedQuote);
      default:
        return fail(Error::kExtension);
    }
    state_ = State::kCR;
    return Byte::kCR;
  }
  if (c == '\n') return fail(Error::kBareLF);
  if (line_bytes_ != UINT32_MAX) ++line_bytes_;
  switch (state_) {
    case State::kSize:
      if (is_hex(c)) {
        has_digit_ = true;
        return Byte::kSize;
      }
      if (!has_digit_) return fail(Error::kSize);
      if (is_ws(c)) {
        state_ = State::kBwsBeforeSemi;
      } else if (c == ';') {
        state_ = State::kBeforeName;
      } else {
        return fail(Error::kSize);
      }
      return Byte::kExtension;
    case State::kBwsBeforeSemi:
      if (c == ';') {
        state_ = State::kBeforeName;
      } else if (!is_ws(c)) {
        return fail(Error::kExtension);
      }
      return Byte::kExtension;
    case State::kBeforeName:
      if (is_tchar(c)) {
        state_ = State::kName;
      } else if (!is_ws(c)) {
        return fail(Error::kName);
      }
      return Byte::kExtension;
    case State::kName:
      if (is_ws(c)) {
        state_ = State::kAfterName;
      } else if (c == '=') {
        state_ = State::kBeforeValue;
      } else if (c == ';') {
        state_ = State::kBeforeName;
      } else if (!is_tchar(c)) {
        return fail(Error::kName);
      }
      return Byte::kExtension;
    case State::kAfterName:
      if (c == '=') {
        state_ = State::kBeforeValue;
      } else if (c == ';') {
        state_ = State::kBeforeName;
      } else if (!is_ws(c)) {
        return fail(Error::kExtension);
      }
      return Byte::kExtension;
    case State::kBeforeValue:
      if (is_tchar(c)) {
        state_ = State::kToken;
      } else if (c == '"') {
        state_ = State::kQuoted;
      } else if (!is_ws(c)) {
        return fail(Error::kValue);
      }
      return Byte::kExtension;
    case State::kToken:
      if (is_ws(c)) {
        state_ = State::kBwsBeforeSemi;
      } else if (c == ';') {
        state_ = State::kBeforeName;
      } else if (!is_tchar(c)) {
        return fail(Error::kValue);
      }
      return Byte::kExtension;
    case State::kQuoted:
      if (c == '"') {
        state_ = State::kAfterQuoted;
      } else if (c == '\\') {
        state_ = State::kQuotedPair;
      } else if (!is_qdtext(c)) {
        return fail(Error::kQuotedChar);
      }
      return Byte::kExtension;
    case State::kQuotedPair:
      if (!is_quoted_pair_char(c)) {
        return fail(Error::kQuotedChar);
      }
      state_ = State::kQuoted;
      return Byte::kExtension;
    case State::kAfterQuoted:
      if (is_ws(c)) {
        state_ = State::kBwsBeforeSemi;
      } else if (c == ';') {
        state_ = State::kBeforeName;
      } else {
        return fail(Error::kExtension);
      }
      return Byte::kExtension;
    case State::kCR:
      break;
  }
  return fail(Error::kExtension);
}

}  // namespace tronada::detail
