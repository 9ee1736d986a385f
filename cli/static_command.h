// `tronada static DIR`: serve a directory.
#pragma once

namespace CLI {
class App;
}

namespace tronada::cli {

void register_static_command(CLI::App& app);

}  // namespace tronada::cli
