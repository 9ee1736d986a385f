// Signed values (Tornado's secure cookies, format version 2) and XSRF tokens.
//
// Pure functions over strings: the caller supplies the secret and the clock, so tests
// need no real time and the framework decides where values live (cookies, headers).
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace tronada {

/// Tornado's default for `max_age_days` in get_secure_cookie.
inline constexpr double kDefaultSignedValueMaxAgeDays = 31;

/// Signs `value` for the cookie (or other slot) called `name` at time `unix_time`, in
/// Tornado's version-2 format, byte for byte what Tornado 6 produces for the same input:
///
///     2|1:<key version>|<len>:<timestamp>|<len>:<name>|<len>:<base64 value>|<hex HMAC>
///
/// The HMAC-SHA256 (keyed with `secret`) covers everything before it, trailing '|'
/// included. Binding `name` into the signature stops a value signed for one cookie from
/// being replayed as another. The output uses only digits, letters, '|', ':', '+', '/'
/// and '=' plus the bytes of `name`, so with a token `name` it is a valid cookie value.
/// `key_version` is recorded for secret rotation (see the map overload of
/// decode_signed_value) and must not be negative (std::invalid_argument). Throws
/// std::runtime_error if OpenSSL fails.
std::string create_signed_value(std::string_view secret, std::string_view name,
                                std::string_view value, long long unix_time, int key_version = 0);

/// Verifies and unpacks a value made by create_signed_value. Returns nullopt, never
/// throws and never reads past `signed_value`, when:
/// - it is not version 2 or is malformed (bad length prefix, missing '|', non-digit
///   timestamp, signature not 64 hex digits, invalid base64);
/// - the signature does not match (any byte of value, name, timestamp or key version
///   changed, or another secret) -- compared in constant time;
/// - it was signed for another `name`;
/// - its timestamp is more than `max_age_days` days before `now_unix`;
/// - its timestamp is more than 31 days after `now_unix` (Tornado's version-1 rule,
///   applied here too so that a leaked key cannot mint values that never expire).
/// The single-secret form ignores the key version field, as Tornado does.
std::optional<std::string> decode_signed_value(std::string_view secret, std::string_view name,
                                               std::string_view signed_value, double max_age_days,
                                               long long now_unix);

/// Like the single-secret form, but verifies with `secrets.at(key version)` so secrets
/// can be rotated: sign new values with the newest version, keep old ones until their
/// values expire. An unknown key version yields nullopt.
std::optional<std::string> decode_signed_value(const std::map<int, std::string>& secrets,
                                               std::string_view name, std::string_view signed_value,
                                               double max_age_days, long long now_unix);

/// `n` bytes from OpenSSL's CSPRNG (RAND_bytes). Throws std::runtime_error if it fails,
/// which is never silently replaced by weaker randomness.
std::string random_bytes(std::size_t n);

/// The secret an XSRF cookie and form field carry: raw token bytes and when the token was
/// created.
struct XsrfToken {
  std::string token;
  long long timestamp = 0;

  bool operator==(const XsrfToken&) const = default;
};

/// A fresh XSRF token: 16 random bytes (as Tornado's `os.urandom(16)`) stamped `now_unix`.
XsrfToken generate_xsrf_token(long long now_unix);

/// Encodes `token` in Tornado's masked version-2 form
/// `2|<mask hex>|<token XOR mask, hex>|<timestamp>` with a fresh random 4-byte mask, so
/// that the text in each page differs and compression side channels (BREACH) cannot
/// recover it. Used for both the `_xsrf` cookie and the form field / header value.
std::string encode_xsrf_token(const XsrfToken& token);

/// As above with a caller-chosen mask; `mask` must be exactly 4 bytes
/// (std::invalid_argument otherwise). For tests and reproducible output.
std::string encode_xsrf_token(const XsrfToken& token, std::string_view mask);

/// Decodes a masked version-2 token. Returns nullopt for anything else: another version
/// (Tornado's unmasked version 1 is not accepted; tronada never issues it), a field count
/// other than four, a mask that is not 8 hex digits, an empty, odd-length, non-hex or
/// longer than 64-byte token, or a timestamp that is not 1 to 18 digits. Never throws.
std::optional<XsrfToken> decode_xsrf_token(std::string_view encoded);

/// True if the encoded tokens `a` and `b` (say the cookie and the submitted form field)
/// both decode and carry the same token bytes, compared in constant time. Their masks and
/// timestamps may differ.
bool xsrf_tokens_match(std::string_view a, std::string_view b);

}  // namespace tronada
