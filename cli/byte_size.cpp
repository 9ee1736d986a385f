#include "cli/byte_size.h"

#include <array>
#include <charconv>
#include <optional>
#include <stdexcept>

namespace tronada::cli {
namespace {

struct Unit {
  std::string_view name;
  uint64_t factor;
};

constexpr uint64_t kKi = 1024;
constexpr uint64_t kK = 1000;

// In format_byte_size's order of preference: within a family the larger unit always leaves fewer
// digits, and listing IEC first makes it win ties.
constexpr std::array<Unit, 8> kUnits{{
    {"TiB", kKi* kKi* kKi* kKi},
    {"GiB", kKi* kKi* kKi},
    {"MiB", kKi* kKi},
    {"KiB", kKi},
    {"TB", kK* kK* kK* kK},
    {"GB", kK* kK* kK},
    {"MB", kK* kK},
    {"KB", kK},
}};

// Bounds the fraction so that fraction * factor fits in 128 bits; twelve decimals already reach
// one byte in a terabyte.
constexpr size_t kMaxFractionDigits = 12;

[[noreturn]] void fail(std::string_view text, std::string_view reason) {
  throw std::invalid_argument("invalid size '" + std::string(text) + "': " + std::string(reason));
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::optional<uint64_t> unit_factor(std::string_view unit) {
  if (unit.empty() || iequals(unit, "B")) return 1;
  // nginx's single letters are binary: `client_max_body_size 1m` is 1 MiB.
  if (unit.size() == 1) {
    switch (lower(unit[0])) {
      case 'k':
        return kKi;
      case 'm':
        return kKi * kKi;
      case 'g':
        return kKi * kKi * kKi;
      case 't':
        return kKi * kKi * kKi * kKi;
    }
    return std::nullopt;
  }
  for (const Unit& u : kUnits) {
    if (iequals(unit, u.name)) return u.factor;
  }
  return std::nullopt;
}

}  // namespace

uint64_t parse_byte_size(std::string_view text) {
  constexpr std::string_view kExpected =
      "expected a whole number of bytes with an optional unit, as in 4096, 512KiB, 1MiB, 10MB or "
      "1m";
  if (text.empty()) fail(text, "empty; " + std::string(kExpected));

  size_t pos = 0;
  while (pos < text.size() && is_digit(text[pos])) ++pos;
  std::string_view whole = text.substr(0, pos);
  if (whole.empty()) {
    if (text.front() == '-') fail(text, "a size cannot be negative");
    fail(text, kExpected);
  }

  std::string_view fraction;
  if (pos < text.size() && text[pos] == '.') {
    size_t start = ++pos;
    while (pos < text.size() && is_digit(text[pos])) ++pos;
    fraction = text.substr(start, pos - start);
    if (fraction.empty()) fail(text, "no digits after the decimal point");
  }

  size_t spaces = pos;
  while (pos < text.size() && text[pos] == ' ') ++pos;
  std::string_view unit = text.substr(pos);
  if (unit.empty() && pos != spaces) fail(text, "trailing space");
  std::optional<uint64_t> factor = unit_factor(unit);
  if (!factor) {
    fail(text, "unknown unit '" + std::string(unit) +
                   "' (use B, K/KiB/KB, M/MiB/MB, G/GiB/GB or T/TiB/TB)");
  }

  uint64_t value = 0;
  auto [end, ec] = std::from_chars(whole.data(), whole.data() + whole.size(), value);
  if (ec != std::errc() || __builtin_mul_overflow(value, *factor, &value)) {
    fail(text, "too large (the limit is 2^64 - 1 bytes)");
  }

  while (!fraction.empty() && fraction.back() == '0') fraction.remove_suffix(1);
  if (!fraction.empty()) {
    if (fraction.size() > kMaxFractionDigits) fail(text, "too many digits after the decimal point");
    unsigned __int128 numerator = 0;
    unsigned __int128 denominator = 1;
    for (char c : fraction) {
      numerator = numerator * 10 + static_cast<unsigned>(c - '0');
      denominator *= 10;
    }
    numerator *= *factor;
    if (numerator % denominator != 0) fail(text, "not a whole number of bytes");
    // numerator < denominator * factor, so the quotient is below factor and fits in 64 bits.
    auto part = static_cast<uint64_t>(numerator / denominator);
    if (__builtin_add_overflow(value, part, &value)) {
      fail(text, "too large (the limit is 2^64 - 1 bytes)");
    }
  }
  return value;
}

std::string format_byte_size(uint64_t bytes) {
  std::string best = std::to_string(bytes);
  if (bytes == 0) return best;
  size_t best_digits = best.size();
  for (const Unit& u : kUnits) {
    if (bytes % u.factor != 0) continue;
    std::string digits = std::to_string(bytes / u.factor);
    if (digits.size() < best_digits) {
      best_digits = digits.size();
      best = digits + std::string(u.name);
    }
  }
  return best;
}

}  // namespace tronada::cli
