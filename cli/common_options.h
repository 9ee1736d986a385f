// The options every server command takes, registered once so their spelling, validation and help
// stay identical across `wsgi`, `fastcgi`, `proxy`, `static`, `serve` and `run`.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/bind_address.h"
#include "tronada/base/log.h"
#include "tronada/net/ssl_context.h"

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
  std::optional<std::string> certfile;     // --certfile
  std::optional<std::string> keyfile;      // --keyfile
  /// --sni-cert NAME=CERT,KEY, in order; empty if not given.
  std::vector<std::pair<std::string, SSLCertificateFiles>> sni_certs;
  std::optional<std::string> client_ca;                  // --client-ca
  bool no_http2 = false;                                 // --no-http2
  std::optional<BindAddress> admin;                      // --admin: the admin listener's address
  std::optional<std::chrono::milliseconds> drain_delay;  // --drain-delay
  /// --upgrade-timeout: how long a new binary started by SIGUSR2 may take to serve.
  std::optional<std::chrono::milliseconds> upgrade_timeout;
  /// Set by commands that also read TLS settings from a config file (`serve`, `check`):
  /// the flags may then be partial, completed by the file, so the parse-time check
  /// leaves the whole to the command.
  bool tls_in_config = false;

  /// `binds`, or kDefaultBind when none were given.
  std::vector<BindAddress> binds_or_default() const;
  /// Whether any TLS flag was given.
  bool any_tls() const;
  /// The server TLS config the flags describe, or nullopt without --certfile. Throws
  /// std::invalid_argument for --keyfile without --certfile (or the reverse) and for
  /// --sni-cert / --client-ca without a default certificate.
  std::optional<SSLServerConfig> tls_config() const;
};

/// Splits an --sni-cert value, NAME=CERT,KEY, at the first '=' and the last ','.
/// Throws std::invalid_argument naming what is missing.
std::pair<std::string, SSLCertificateFiles> parse_sni_cert(std::string_view value);

/// Adds `-c/--config`, `-b/--bind` (repeatable, one address per flag), `--max-body-size`,
/// `--access-log`, the TLS options (`--certfile`, `--keyfile`, `--sni-cert`, `--client-ca`,
/// `--no-http2`) and the logging options to `app`, storing into `options`, which must outlive the
/// parse. Bad values fail the parse with a CLI::ValidationError that names the flag and the input.
/// Once parsed, the certificates are loaded once, so an unreadable, malformed or mismatched file
/// stops the program with SSLContextError (naming the file) before the command binds anything.
void add_common_options(CLI::App& app, CommonOptions& options);

/// Adds only `--log-level` and `--log-format`; the root command takes these globally.
void add_logging_options(CLI::App& app, CommonOptions& options);

/// Sets the process-wide log level and format from whichever of the two were given; call it for
/// the global options first and then for the command's, so the more specific flag wins.
void apply_logging(const CommonOptions& options);

/// A CLI11 check that runs `parse` on the value and reports, word for word, what it
/// throws: the option is refused with the parser's own message, before the command runs.
/// `description` is the type shown in --help ("" for none).
CLI::Validator parse_validator(std::function<void(const std::string&)> parse,
                               std::string description = "");

/// CLI11 checks, also for commands' own options: an address parse_bind_address accepts (e.g.
/// `fastcgi --to`), and a size parse_byte_size accepts.
CLI::Validator bind_address_validator();
CLI::Validator byte_size_validator();

}  // namespace tronada::cli
