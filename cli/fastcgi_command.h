// `tronada fastcgi --to ADDR --root DIR`: a PHP site through a FastCGI responder.
#pragma once

namespace CLI {
class App;
}

namespace tronada::cli {

void register_fastcgi_command(CLI::App& app);

}  // namespace tronada::cli
