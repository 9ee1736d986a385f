#include "cli/common_options.h"

#include <CLI/CLI.hpp>

#include <csignal>
#include <stdexcept>

#include "cli/byte_size.h"
#include "cli/config.h"

namespace tronada::cli {
namespace {

// gunicorn and Python's logging accept `INFO` as well as `info`.
std::string lowercase(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

CLI::Validator log_level_validator() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        if (log::parse_level(lowercase(value))) return {};
        return "unknown log level '" + value + "' (use debug, info, warning, error or critical)";
      },
      "");
}

CLI::Validator log_format_validator() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        if (log::parse_format(lowercase(value))) return {};
        return "unknown log format '" + value + "' (use text or json)";
      },
      "");
}

CLI::Validator access_log_validator() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        if (value.empty()) return "empty; give a file, '-' for stdout or 'off'";
        return {};
      },
      "");
}

}  // namespace

CLI::Validator parse_validator(std::function<void(const std::string&)> parse,
                               std::string description) {
  return CLI::Validator(
      [parse = std::move(parse)](std::string& value) -> std::string {
        try {
          parse(value);
          return {};
        } catch (const std::exception& e) {
          return e.what();
        }
      },
      std::move(description));
}

CLI::Validator bind_address_validator() {
  return parse_validator([](const std::string& v) { parse_bind_address(v); });
}

CLI::Validator byte_size_validator() {
  return parse_validator([](const std::string& v) { parse_byte_size(v); });
}

std::vector<BindAddress> CommonOptions::binds_or_default() const {
  if (!binds.empty()) return binds;
  return {parse_bind_address(kDefaultBind)};
}

std::pair<std::string, SSLCertificateFiles> parse_sni_cert(std::string_view value) {
  // File names may hold '=' and ',' too; host names hold neither '=' nor ',', and the key
  // name rarely holds ',', so the first '=' and the last ',' are the separators.
  auto eq = value.find('=');
  auto comma = value.rfind(',');
  if (eq == std::string_view::npos || comma == std::string_view::npos || comma < eq) {
    throw std::invalid_argument("'" + std::string(value) +
                                "' is not NAME=CERT,KEY (e.g. api.example.com=api.pem,api.key)");
  }
  std::string name(value.substr(0, eq));
  SSLCertificateFiles files{std::string(value.substr(eq + 1, comma - eq - 1)),
                            std::string(value.substr(comma + 1))};
  if (name.empty()) throw std::invalid_argument("'" + std::string(value) + "': no host name");
  if (files.cert_file.empty() || files.key_file.empty()) {
    throw std::invalid_argument("'" + std::string(value) + "': needs both CERT and KEY");
  }
  return {std::move(name), std::move(files)};
}

bool CommonOptions::any_tls() const {
  return certfile || keyfile || !sni_certs.empty() || client_ca;
}

std::optional<SSLServerConfig> CommonOptions::tls_config() const {
  if (certfile.has_value() != keyfile.has_value()) {
    throw std::invalid_argument(certfile ? "--certfile needs --keyfile"
                                         : "--keyfile needs --certfile");
  }
  if (!certfile) {
    if (!sni_certs.empty())
      throw std::invalid_argument("--sni-cert needs --certfile and --keyfile");
    if (client_ca) throw std::invalid_argument("--client-ca needs --certfile and --keyfile");
    return std::nullopt;
  }
  SSLServerConfig config;
  config.cert_file = *certfile;
  config.key_file = *keyfile;
  for (const auto& [name, files] : sni_certs) config.sni_certificates[name] = files;
  if (client_ca) config.client_ca_file = *client_ca;
  return config;
}

void add_logging_options(CLI::App& app, CommonOptions& options) {
  app.add_option_function<std::string>(
         "--log-level",
         [&options](const std::string& value) {
           options.log_level = log::parse_level(lowercase(value));
         },
         "Lowest level to log: debug, info, warning, error or critical")
      ->type_name("LEVEL")
      ->default_str("info")
      ->check(log_level_validator());
  app.add_option_function<std::string>(
         "--log-format",
         [&options](const std::string& value) {
           options.log_format = log::parse_format(lowercase(value));
         },
         "Log line format: text or json (one JSON object per line)")
      ->type_name("FORMAT")
      ->default_str("text")
      ->check(log_format_validator());
}

void add_common_options(CLI::App& app, CommonOptions& options) {
  app.add_option_function<std::string>(
         "-c,--config", [&options](const std::string& value) { options.config_file = value; },
         "TOML config file; flags given here override its settings")
      ->type_name("FILE")
      ->check(CLI::Validator(CLI::ExistingFile).description(""));
  // One address per flag, as gunicorn: `-b a b` would otherwise swallow a following positional.
  app.add_option_function<std::vector<std::string>>(
         "-b,--bind",
         [&options](const std::vector<std::string>& values) {
           options.binds.clear();
           for (const std::string& v : values) options.binds.push_back(parse_bind_address(v));
         },
         "Listen address, repeatable: HOST:PORT, [V6]:PORT, :PORT or unix:PATH")
      ->type_name("ADDR")
      ->allow_extra_args(false)
      ->default_str(std::string(kDefaultBind))
      ->check(bind_address_validator());
  app.add_option_function<std::string>(
         "--max-body-size",
         [&options](const std::string& value) { options.max_body_size = parse_byte_size(value); },
         "Largest request body accepted, e.g. 1MiB, 512KiB, 10MB; 0 for no limit")
      ->type_name("SIZE")
      ->check(byte_size_validator());
  app.add_option_function<std::string>(
         "--access-log", [&options](const std::string& value) { options.access_log = value; },
         "Access log destination: a file, '-' for stdout, or 'off'")
      ->type_name("FILE|-|off")
      ->check(access_log_validator());
  app.add_option_function<std::string>(
         "--certfile", [&options](const std::string& value) { options.certfile = value; },
         "Serve TLS with this PEM certificate chain (leaf first); needs --keyfile")
      ->type_name("FILE");
  app.add_option_function<std::string>(
         "--keyfile", [&options](const std::string& value) { options.keyfile = value; },
         "The PEM private key of --certfile")
      ->type_name("FILE");
  app.add_option_function<std::vector<std::string>>(
         "--sni-cert",
         [&options](const std::vector<std::string>& values) {
           options.sni_certs.clear();
           for (const std::string& v : values) options.sni_certs.push_back(parse_sni_cert(v));
         },
         "Certificate for clients asking for NAME (SNI), repeatable: NAME=CERT,KEY; NAME may be "
         "*.example.com")
      ->type_name("NAME=CERT,KEY")
      ->allow_extra_args(false)
      ->check(parse_validator([](const std::string& v) { parse_sni_cert(v); }));
  app.add_option_function<std::string>(
         "--client-ca", [&options](const std::string& value) { options.client_ca = value; },
         "Require client certificates signed by these CAs (PEM)")
      ->type_name("FILE");
  app.add_flag("--no-http2", options.no_http2,
               "Speak only HTTP/1.1 (no h2 by ALPN, no h2c by prior knowledge or Upgrade)");
  app.add_option_function<std::string>(
         "--admin",
         [&options](const std::string& value) { options.admin = parse_bind_address(value); },
         "Admin listener for /metrics, /healthz and /readyz (off by default): HOST:PORT or "
         "unix:PATH; never one of the public binds")
      ->type_name("ADDR")
      ->check(bind_address_validator());
  app.add_option_function<std::string>(
         "--drain-delay",
         [&options](const std::string& value) { options.drain_delay = parse_duration(value); },
         "On SIGTERM, keep serving this long with /readyz at 503 before draining (e.g. 5s)")
      ->type_name("DURATION")
      ->check(parse_validator([](const std::string& v) { parse_duration(v); }));
  app.add_option_function<std::string>(
         "--upgrade-timeout",
         [&options](const std::string& value) { options.upgrade_timeout = parse_duration(value); },
         "On SIGUSR2 (binary upgrade), how long the new binary may take to serve before "
         "this one gives up on it and serves on (default 30s)")
      ->type_name("DURATION")
      ->check(parse_validator([](const std::string& v) { parse_duration(v); }));
  add_logging_options(app, options);
  // Load the certificates once now, so a bad file stops the command before it binds (the
  // server loads them again when it starts serving). CLI11 runs this after the options'
  // own callbacks, before the command's.
  app.parse_complete_callback([&options] {
    // SIGHUP means "reload" to every server command (run_until_signalled handles it); until
    // the loop's handler is in place there is nothing to reload, and the default action
    // would kill the process (systemctl reload racing a start).
    std::signal(SIGHUP, SIG_IGN);
    if (options.tls_in_config) return;  // the command checks flags and file together
    std::optional<SSLServerConfig> config;
    try {
      config = options.tls_config();
    } catch (const std::invalid_argument& e) {
      throw CLI::ValidationError(e.what());
    }
    if (config) SSLContext::server(std::move(*config));
  });
}

void apply_logging(const CommonOptions& options) {
  if (options.log_level) log::set_level(*options.log_level);
  if (options.log_format) log::set_format(*options.log_format);
}

}  // namespace tronada::cli
