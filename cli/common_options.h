// The options every server command takes, registered once so their spelling, validation and help
// stay identical across `wsgi`, `fastcgi`, `proxy`, `static`, `serve` and `run`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/bind_address.h"
#include "tronada/base/log.h"

namespace CLI {
class App;
class Validator;
}  // namespace CLI

namespace tronada::cli {

/// Where to listen when neither `-b` nor the config file says.
inline constexpr std::string_view kDefaultBind = "127.0.0.1:8888";

/// What the command line said. Every field is empty/nullopt unless the flag was given, so a command
/// can layer flags over its config file ("flags override the file") and only then fall back to its
/// own defaults, which differ per command (e.g. the body size limit).
struct CommonOptions {
  std::optional<std::string> config_file;  // -c/--config; checked to exist
  std::vector<BindAddress> binds;          // -b/--bind, in order; empty if not given
  std::optional<uint64_t> max_body_size;   // --max-body-size; 0 means no limit
  std::optional<std::string> access_log;   // --access-log: a path, "-" for stdout, "off"
  std::optional<log::Level> log_level;     // --log-level
  std::optional<log::Format> log_format;   // --log-format

  /// `binds`, or kDefaultBind when none were given.
  std::vector<BindAddress> binds_or_default() const;
};

/// Adds `-c/--config`, `-b/--bind` (repeatable, one address per flag), `--max-body-size`,
/// `--access-log` and the logging options to `app`, storing into `options`, which must outlive the
/// parse. Bad values fail the parse with a CLI::ValidationError that names the flag and the input.
void add_common_options(CLI::App& app, CommonOptions& options);

/// Adds only `--log-level` and `--log-format`; the root command takes these globally.
void add_logging_options(CLI::App& app, CommonOptions& options);

/// Sets the process-wide log level and format from whichever of the two were given; call it for
/// the global options first and then for the command's, so the more specific flag wins.
void apply_logging(const CommonOptions& options);

/// CLI11 checks, also for commands' own options: an address parse_bind_address accepts (e.g.
/// `fastcgi --to`), and a size parse_byte_size accepts.
CLI::Validator bind_address_validator();
CLI::Validator byte_size_validator();

}  // namespace tronada::cli
