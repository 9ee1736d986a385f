// The chunk-size line of a chunked body, checked one byte at a time: sans-I/O, no buffers.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tronada::detail {

/// Validates one chunk-size line (RFC 9112 section 7.1) as its bytes arrive:
///
///   chunk-size [ chunk-ext ] CRLF
///   chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
///   chunk-ext-val  = token / quoted-string
///
/// and tells its caller what each byte is, so HTTP1RequestParser can hand llhttp the size
/// and the CRLF and keep the extensions to itself. llhttp 8.1 refuses the whitespace that
/// section 7.1.1 allows around ";" and "=" and any extension after one with a value; a
/// recipient must ignore extensions it does not know (all of them, here), so none is kept.
/// Whitespace is accepted only where the grammar has BWS: "5 \r\n" and "5;a \r\n" stay
/// errors, as they were.
class ChunkLineScanner {
 public:
  enum class Byte {
    kSize,       // a hex digit of chunk-size
    kExtension,  // part of the extensions, whitespace included: ignore it
    kCR,         // the CR that ends the line
    kEnd,        // the LF after it: the line is complete
    kError,      // see error()
  };

  /// Starts a new line.
  void reset() { *this = ChunkLineScanner(); }

  /// Classifies the next byte of the line. After kEnd or kError, call reset() first.
  Byte next(unsigned char c);

  /// Why the line is malformed, after kError.
  const char* error() const;

  /// Bytes of the line before its CR: the size, extensions and their whitespace (stops
  /// counting at 4 GiB, far above any sane limit).
  std::size_t line_bytes() const { return line_bytes_; }

 private:
  // Eight bytes in all: every HTTP/1 connection carries one in its parser.
  enum class State : std::uint8_t {
    kSize,           // reading HEXDIG
    kBwsBeforeSemi,  // whitespace that must be followed by ";"
    kBeforeName,     // after ";": BWS, then the name
    kName,           // in chunk-ext-name
    kAfterName,      // BWS after the name: "=" or ";" next
    kBeforeValue,    // after "=": BWS, then the value
    kToken,          // in a token value
    kQuoted,         // in a quoted-string value
    kQuotedPair,     // after a backslash in a quoted string
    kAfterQuoted,    // after the closing quote
    kCR,             // CR seen, LF due
  };

  enum class Error : std::uint8_t {
    kNone,
    kSize,
    kExtension,
    kName,
    kValue,
    kQuotedChar,
    kUnterminatedQuote,
    kBareCR,
    kBareLF,
  };

  Byte fail(Error error) {
    error_ = error;
    return Byte::kError;
  }

  State state_ = State::kSize;
  Error error_ = Error::kNone;
  bool has_digit_ = false;
  std::uint32_t line_bytes_ = 0;
};

}  // namespace tronada::detail
