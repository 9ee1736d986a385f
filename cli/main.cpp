// The `tronada` program. It only parses and dispatches: each subcommand lives in its own
// cli/<name>_command.{h,cpp} and adds itself to the root app through one registration function,
// listed in kCommands below.
//
// Exit status: 0 on success (including --help and --version), 1 when a command fails, 2 for a
// usage error (unknown flag, bad value, no command). 2 is what gunicorn (argparse) and most Unix
// tools use; CLI11's own codes (105, 106, 109, ...) mean nothing to a shell script or systemd.
//
// No subcommand: the help goes to stderr and the exit status is 2, as git and go do. A person
// typing `tronada` still sees every command, while a script whose command word went missing fails
// instead of silently doing nothing. (cargo and Caddy exit 0 here; we prefer the loud failure.)
#include <CLI/CLI.hpp>
#include <csignal>

#include <array>
#include <csignal>
#include <cstdio>
#include <exception>
#include <iostream>

#include "cli/common_options.h"
#include "cli/fastcgi_command.h"
#include "cli/new_command.h"
#include "cli/proxy_command.h"
#include "cli/run_command.h"
#include "cli/serve_command.h"
#include "cli/static_command.h"
#include "cli/wsgi_command.h"
#include "tronada/net/binary_upgrade.h"

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

using RegisterCommand = void (*)(CLI::App&);

constexpr std::array<RegisterCommand, 8> kCommands{
    tronada::cli::register_static_command, tronada::cli::register_fastcgi_command,
    tronada::cli::register_wsgi_command,   tronada::cli::register_serve_command,
    tronada::cli::register_check_command,  tronada::cli::register_new_command,
    tronada::cli::register_run_command,    tronada::cli::register_proxy_command,
};

}  // namespace

int main(int argc, char** argv) {
  // SIGUSR1 means "reopen your log files" (logrotate, as for nginx). `serve`, which writes
  // log files, handles it; every other process (the commands that log to stderr, prefork
  // and WSGI masters, workers) must survive it, not take its default action and exit:
  // `systemctl kill -s USR1` signals every process of the unit.
  std::signal(SIGUSR1, SIG_IGN);
  // SIGUSR2 upgrades the binary; only a master handles it (binary_upgrade.h), and the
  // rest must not die of it either.
  std::signal(SIGUSR2, SIG_IGN);
  // Before anything can replace the file or change directory.
  tronada::upgrade::remember_start(argc, argv);
  CLI::App app{
      "tronada: a Tornado-style web server in C++.\n"
      "Runs native C++ handlers, and fronts WSGI apps, FastCGI responders (PHP), HTTP upstreams\n"
      "and static files with the same HTTP/1.1, HTTP/2 and WebSocket server.",
      "tronada"};
  app.set_version_flag("--version", std::string("tronada ") + TRONADA_VERSION,
                       "Print the version and exit");
  app.footer("Run 'tronada COMMAND --help' for a command's options.");
  app.require_subcommand(0, 1);

  tronada::cli::CommonOptions global;
  tronada::cli::add_logging_options(app, global);
  // Runs before any subcommand's callback, so a command's own --log-level can still override it.
  app.parse_complete_callback([&global] { tronada::cli::apply_logging(global); });

  for (RegisterCommand register_command : kCommands) register_command(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    // A command asked for a specific exit status and has reported already (`tronada run`
    // passes on its app's). Caught first: CLI11 makes it a ParseError, not a usage error.
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  } catch (const CLI::Error& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tronada: error: %s\n", e.what());
    return kExitFailure;
  }

  if (app.get_subcommands().empty()) {
    std::cerr << app.help();
    return kExitUsage;
  }
  return 0;
}
