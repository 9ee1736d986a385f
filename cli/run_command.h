// `tronada run [DIR] [--reload]`: build and run a native app made by `tronada new`, or
// serve a config app, restarting it after edits with --reload.
#pragma once

namespace CLI {
class App;
}

namespace tronada::cli {

void register_run_command(CLI::App& app);

}  // namespace tronada::cli
