// `tronada proxy --to URL [--to URL]...`: a reverse proxy to HTTP upstreams.
#pragma once

namespace CLI {
class App;
}

namespace tronada::cli {

void register_proxy_command(CLI::App& app);

}  // namespace tronada::cli
