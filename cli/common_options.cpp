#include "cli/common_options.h"

#include <CLI/CLI.hpp>

#include <stdexcept>

#include "cli/byte_size.h"

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

CLI::Validator bind_address_validator() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        try {
          parse_bind_address(value);
          return {};
        } catch (const std::invalid_argument& e) {
          return e.what();
        }
      },
      "");
}

CLI::Validator byte_size_validator() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        try {
          parse_byte_size(value);
          return {};
        } catch (const std::invalid_argument& e) {
          return e.what();
        }
      },
      "");
}

std::vector<BindAddress> CommonOptions::binds_or_default() const {
  if (!binds.empty()) return binds;
  return {parse_bind_address(kDefaultBind)};
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
  add_logging_options(app, options);
}

void apply_logging(const CommonOptions& options) {
  if (options.log_level) log::set_level(*options.log_level);
  if (options.log_format) log::set_format(*options.log_format);
}

}  // namespace tronada::cli
