// Cookie request headers (what any client sends) through parse_cookie_header, and what it
// returns back through format_set_cookie.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

#include "tronada/http/cookies.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view header(reinterpret_cast<const char*>(data), size);
  auto pairs = tronada::parse_cookie_header(header);
  for (const auto& [name, value] : pairs) {
    // Names are trimmed and never empty; neither can hold the pair separator.
    if (name.empty() || name.find(';') != std::string_view::npos) std::abort();
    if (name.front() == ' ' || name.back() == ' ') std::abort();
    try {
      auto line = tronada::format_set_cookie(name, value);
      // Whatever format_set_cookie accepts must read back as the same pair.
      auto back = tronada::parse_cookie_header(line.substr(0, line.find(';')));
      if (back.size() != 1 || back[0].first != name) std::abort();
    } catch (const std::invalid_argument&) {
      // Names and values that are not safe to send back are refused, as documented.
    }
  }
  return 0;
}
