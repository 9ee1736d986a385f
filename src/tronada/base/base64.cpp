#include "tronada/base/base64.h"

#include <array>
#include <cstdint>

namespace tronada {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<std::int8_t, 256> make_decode_table() {
  std::array<std::int8_t, 256> table{};
  for (auto& entry : table) entry = -1;
  for (int i = 0; i < 64; ++i) table[static_cast<unsigned char>(kAlphabet[i])] = std::int8_t(i);
  return table;
}

constexpr std::array<std::int8_t, 256> kDecode = make_decode_table();

}  // namespace

std::string base64_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    std::uint32_t v = std::uint32_t(static_cast<unsigned char>(in[i])) << 16 |
                      std::uint32_t(static_cast<unsigned char>(in[i + 1])) << 8 |
                      std::uint32_t(static_cast<unsigned char>(in[i + 2]));
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  std::size_t rest = in.size() - i;
  if (rest == 1) {
    std::uint32_t v = std::uint32_t(static_cast<unsigned char>(in[i])) << 16;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (rest == 2) {
    std::uint32_t v = std::uint32_t(static_cast<unsigned char>(in[i])) << 16 |
                      std::uint32_t(static_cast<unsigned char>(in[i + 1])) << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view in) {
  if (in.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(in.size() / 4 * 3);
  for (std::size_t i = 0; i < in.size(); i += 4) {
    bool last = i + 4 == in.size();
    // Padding may only end the final quantum: "xx==" or "xxx=".
    std::size_t padding = 0;
    if (last && in[i + 3] == '=') padding = in[i + 2] == '=' ? 2 : 1;
    std::uint32_t v = 0;
    for (std::size_t j = 0; j < 4 - padding; ++j) {
      std::int8_t d = kDecode[static_cast<unsigned char>(in[i + j])];
      if (d < 0) return std::nullopt;
      v |= std::uint32_t(d) << (18 - 6 * j);
    }
    out += static_cast<char>(v >> 16);
    if (padding == 2) {
      if ((v & 0xFFFF) != 0) return std::nullopt;
    } else {
      out += static_cast<char>((v >> 8) & 0xFF);
      if (padding == 1) {
        if ((v & 0xFF) != 0) return std::nullopt;
      } else {
        out += static_cast<char>(v & 0xFF);
      }
    }
  }
  return out;
}

}  // namespace tronada
