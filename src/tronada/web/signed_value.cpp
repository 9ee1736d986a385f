#include "tronada/web/signed_value.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <climits>
#include <stdexcept>

#include "tronada/base/base64.h"

namespace tronada {

namespace {

constexpr std::string_view kHexDigits = "0123456789abcdef";
constexpr std::size_t kSignatureHexSize = 64;  // SHA-256
constexpr long long kMaxFutureSeconds = 31LL * 86400;
constexpr std::size_t kXsrfMaskSize = 4;
constexpr std::size_t kXsrfMaxTokenSize = 64;
// 18 digits stay below LLONG_MAX, so parsing needs no overflow check past the count.
constexpr std::size_t kMaxTimestampDigits = 18;

std::string hex_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kHexDigits[c >> 4];
    out += kHexDigits[c & 15];
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> hex_decode(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    int hi = hex_value(hex[i]);
    int lo = hex_value(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
  }
  return out;
}

bool all_digits(std::string_view s) {
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// A decimal integer of 1..max_digits digits, optionally negative.
std::optional<long long> parse_integer(std::string_view s, std::size_t max_digits) {
  bool negative = !s.empty() && s.front() == '-';
  if (negative) s.remove_prefix(1);
  if (s.empty() || s.size() > max_digits || !all_digits(s)) return std::nullopt;
  long long v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return negative ? -v : v;
}

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  if (key.size() > INT_MAX || HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
                                   reinterpret_cast<const unsigned char*>(data.data()), data.size(),
                                   digest, &digest_size) == nullptr) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  return hex_encode(std::string_view(reinterpret_cast<const char*>(digest), digest_size));
}

std::string format_field(std::string_view s) {
  std::string out = std::to_string(s.size());
  out += ':';
  out += s;
  return out;
}

// Consumes "<len>:<len bytes>|" from the front of `rest`. The length is checked against
// what remains before anything is sliced, so no prefix can make us read past the end.
std::optional<std::string_view> consume_field(std::string_view& rest) {
  std::size_t colon = rest.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 9) return std::nullopt;
  std::string_view digits = rest.substr(0, colon);
  if (!all_digits(digits)) return std::nullopt;
  std::size_t n = 0;
  for (char c : digits) n = n * 10 + static_cast<std::size_t>(c - '0');
  std::string_view after = rest.substr(colon + 1);
  if (n >= after.size() || after[n] != '|') return std::nullopt;
  std::string_view field = after.substr(0, n);
  rest = after.substr(n + 1);
  return field;
}

struct SignedFields {
  long long key_version;
  long long timestamp;
  std::string_view name;
  std::string_view value;
  std::string_view signed_part;  // everything the signature covers
  std::string_view signature;
};

std::optional<SignedFields> split_signed_value(std::string_view s) {
  if (s.substr(0, 2) != "2|") return std::nullopt;
  std::string_view rest = s.substr(2);
  auto key_version = consume_field(rest);
  if (!key_version) return std::nullopt;
  auto timestamp = consume_field(rest);
  if (!timestamp) return std::nullopt;
  auto name = consume_field(rest);
  if (!name) return std::nullopt;
  auto value = consume_field(rest);
  if (!value) return std::nullopt;
  auto key_version_number = parse_integer(*key_version, 9);
  auto timestamp_number = parse_integer(*timestamp, kMaxTimestampDigits);
  if (!key_version_number || *key_version_number < 0 || !timestamp_number) return std::nullopt;
  if (rest.size() != kSignatureHexSize) return std::nullopt;
  return SignedFields{*key_version_number,
                      *timestamp_number,
                      *name,
                      *value,
                      s.substr(0, s.size() - rest.size()),
                      rest};
}

std::optional<std::string> verify(std::string_view secret, const SignedFields& fields,
                                  std::string_view name, double max_age_days, long long now_unix) {
  std::string expected;
  try {
    expected = hmac_sha256_hex(secret, fields.signed_part);
  } catch (const std::runtime_error&) {
    return std::nullopt;
  }
  if (CRYPTO_memcmp(expected.data(), fields.signature.data(), kSignatureHexSize) != 0) {
    return std::nullopt;
  }
  if (fields.name != name) return std::nullopt;
  // Written so that a NaN max age rejects everything instead of accepting everything.
  double oldest = static_cast<double>(now_unix) - max_age_days * 86400.0;
  if (!(static_cast<double>(fields.timestamp) >= oldest)) return std::nullopt;
  if (static_cast<double>(fields.timestamp) >
      static_cast<double>(now_unix) + static_cast<double>(kMaxFutureSeconds)) {
    return std::nullopt;
  }
  return base64_decode(fields.value);
}

}  // namespace

std::string create_signed_value(std::string_view secret, std::string_view name,
                                std::string_view value, long long unix_time, int key_version) {
  if (key_version < 0) throw std::invalid_argument("key_version must not be negative");
  std::string to_sign = "2|";
  to_sign += format_field(std::to_string(key_version));
  to_sign += '|';
  to_sign += format_field(std::to_string(unix_time));
  to_sign += '|';
  to_sign += format_field(name);
  to_sign += '|';
  to_sign += format_field(base64_encode(value));
  to_sign += '|';
  std::string signature = hmac_sha256_hex(secret, to_sign);
  return to_sign + signature;
}

std::optional<std::string> decode_signed_value(std::string_view secret, std::string_view name,
                                               std::string_view signed_value, double max_age_days,
                                               long long now_unix) {
  auto fields = split_signed_value(signed_value);
  if (!fields) return std::nullopt;
  return verify(secret, *fields, name, max_age_days, now_unix);
}

std::optional<std::string> decode_signed_value(const std::map<int, std::string>& secrets,
                                               std::string_view name, std::string_view signed_value,
                                               double max_age_days, long long now_unix) {
  auto fields = split_signed_value(signed_value);
  if (!fields) return std::nullopt;
  auto secret = secrets.find(static_cast<int>(fields->key_version));
  if (secret == secrets.end()) return std::nullopt;
  return verify(secret->second, *fields, name, max_age_days, now_unix);
}

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  if (n > INT_MAX ||
      RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    throw std::runtime_error("RAND_bytes failed");
  }
  return out;
}

XsrfToken generate_xsrf_token(long long now_unix) {
  return XsrfToken{random_bytes(16), now_unix};
}

std::string encode_xsrf_token(const XsrfToken& token) {
  return encode_xsrf_token(token, random_bytes(kXsrfMaskSize));
}

std::string encode_xsrf_token(const XsrfToken& token, std::string_view mask) {
  if (mask.size() != kXsrfMaskSize) {
    throw std::invalid_argument("an XSRF mask is 4 bytes");
  }
  // The WebSocket masking of Tornado's _websocket_mask: XOR with the mask repeated.
  std::string masked(token.token);
  for (std::size_t i = 0; i < masked.size(); ++i) masked[i] ^= mask[i % kXsrfMaskSize];
  std::string out = "2|";
  out += hex_encode(mask);
  out += '|';
  out += hex_encode(masked);
  out += '|';
  out += std::to_string(token.timestamp);
  return out;
}

std::optional<XsrfToken> decode_xsrf_token(std::string_view encoded) {
  std::string_view fields[4];
  std::size_t count = 0;
  while (true) {
    std::size_t bar = encoded.find('|');
    if (count == 4) return std::nullopt;  // a fifth field
    fields[count++] = encoded.substr(0, bar);
    if (bar == std::string_view::npos) break;
    encoded.remove_prefix(bar + 1);
  }
  if (count != 4 || fields[0] != "2") return std::nullopt;
  if (fields[1].size() != kXsrfMaskSize * 2) return std::nullopt;
  if (fields[2].empty() || fields[2].size() > kXsrfMaxTokenSize * 2) return std::nullopt;
  auto mask = hex_decode(fields[1]);
  auto token = hex_decode(fields[2]);
  auto timestamp = parse_integer(fields[3], kMaxTimestampDigits);
  if (!mask || !token || !timestamp || fields[3].front() == '-') return std::nullopt;
  for (std::size_t i = 0; i < token->size(); ++i) (*token)[i] ^= (*mask)[i % kXsrfMaskSize];
  return XsrfToken{std::move(*token), *timestamp};
}

bool xsrf_tokens_match(std::string_view a, std::string_view b) {
  auto first = decode_xsrf_token(a);
  auto second = decode_xsrf_token(b);
  // Token length is not secret (always 16 bytes from us), so it may short-circuit.
  if (!first || !second || first->token.size() != second->token.size()) return false;
  return CRYPTO_memcmp(first->token.data(), second->token.data(), first->token.size()) == 0;
}

}  // namespace tronada
