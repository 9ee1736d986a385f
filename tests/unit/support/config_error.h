// The message parse_config refuses a config text with, or "" when it takes it: the
// config tests compare whole messages, file:line:column included.
#pragma once

#include <string>
#include <string_view>

#include "cli/config.h"

namespace tronada::cli {

inline std::string error_of(std::string_view text) {
  try {
    parse_config(text, "t.toml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace tronada::cli
