// `tronada wsgi MODULE:CALLABLE`: serve a WSGI app (Flask, Django, ...) from embedded Python.
#pragma once

namespace CLI {
class App;
}

namespace tronada::cli {

void register_wsgi_command(CLI::App& app);

}  // namespace tronada::cli
