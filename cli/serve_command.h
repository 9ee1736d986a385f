// `tronada serve [-c FILE]`: runs the server a TOML config describes (listeners, workers,
// limits, logs and an ordered list of routes), and `tronada check`, which validates it.
#pragma once

#include "cli/common_options.h"
#include "cli/config.h"

#include <vector>

namespace CLI {
class App;
}

namespace tronada::cli {

/// The config file a command uses: -c FILE, else ./tronada.toml, else
/// /etc/tronada/tronada.toml. Throws ConfigError when none exists.
std::string find_config_file(const CommonOptions& flags);

/// The config file with the command line's flags laid over it ("flags override the
/// file") and relative paths made relative to the file's folder.
Config effective_config(const CommonOptions& flags);

/// Opens a listening socket for every address (close-on-exec), logging each; throws
/// naming the address that cannot be bound.
std::vector<int> bind_all(const std::vector<BindAddress>& binds);

void register_serve_command(CLI::App& app);
void register_check_command(CLI::App& app);

}  // namespace tronada::cli
