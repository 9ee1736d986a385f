// The application: its routes and handlers, kept apart from main() so the tests build
// the same Application the program serves.
#pragma once

#include <memory>
#include <string>

#include <tronada/web/application.h>

namespace {{name}} {

/// Routes: GET / (the page), GET /api/hello?name=... and POST /api/echo (JSON),
/// /ws (a WebSocket that echoes), /static/... (files from `static_path`).
std::unique_ptr<tronada::Application> make_app(const std::string& static_path);

}  // namespace {{name}}
