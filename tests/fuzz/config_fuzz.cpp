// The TOML config loader (`tronada serve -c`, `tronada check`): any text either loads or
// is refused with a ConfigError naming the place; a config that loads prints (as
// `tronada check` does) to TOML that loads back to the same printout.
#include <cstddef>
#include <cstdint>
#include <string>

#include "cli/config.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tronada::cli;
  Config config;
  try {
    config = parse_config(fuzz::as_view(data, size), "fuzz.toml");
  } catch (const ConfigError& e) {
    FUZZ_CHECK(std::string_view(e.what()).substr(0, 10) == "fuzz.toml:");
    return 0;
  }
  std::string printed = format_config(config);
  Config again;
  try {
    again = parse_config(printed, "printed.toml");
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "format_config output does not load: %s\n%s\n", e.what(), printed.c_str());
    std::abort();
  }
  FUZZ_CHECK(format_config(again) == printed);
  FUZZ_CHECK(again.routes.size() == config.routes.size());
  return 0;
}
