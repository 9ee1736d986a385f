#include "app.h"

#include <nlohmann/json.hpp>

#include <tronada/web/request_handler.h>
#include <tronada/web/websocket_handler.h>

namespace {{name}} {

namespace {

using tronada::Task;

class MainHandler : public tronada::RequestHandler {
 public:
  Task<void> get() override {
    set_header("Content-Type", "text/html; charset=utf-8");
    write("<!doctype html>\n<title>{{name}}</title>\n"
          "<link rel=\"stylesheet\" href=\"/static/style.css\">\n"
          "<h1>{{name}}</h1>\n"
          "<p>Served by tronada. Try <a href=\"/api/hello?name=you\">/api/hello</a>.</p>\n"
          "<p>WebSocket echo: <input id=\"msg\" value=\"hello\"> <button id=\"send\">send</button>"
          " <span id=\"reply\"></span></p>\n"
          "<script src=\"/static/app.js\"></script>\n");
    co_return;
  }
};

// A JSON API: GET answers a greeting, POST echoes the JSON body it was sent.
class HelloHandler : public tronada::RequestHandler {
 public:
  Task<void> get() override {
    std::string name = get_argument("name", "world");
    write_json({{"message", "Hello, " + name + "!"}});
    co_return;
  }
};

class EchoHandler : public tronada::RequestHandler {
 public:
  Task<void> post() override {
    nlohmann::json body = json_body();  // 400 when the body is not JSON
    write_json({{"received", body}});
    co_return;
  }
};

// Echoes every WebSocket message back, text as text and binary as binary.
class EchoSocket : public tronada::WebSocketHandler {
 public:
  void on_message(std::string_view message, bool binary) override {
    (void)write_message(message, binary);
  }
};

}  // namespace

std::unique_ptr<tronada::Application> make_app(const std::string& static_path) {
  tronada::ApplicationSettings settings;
  settings.static_path = static_path;  // served under /static/
  return std::make_unique<tronada::Application>(
      std::vector<tronada::Rule>{
          tronada::Rule("/", tronada::handler<MainHandler>()),
          tronada::Rule("/api/hello", tronada::handler<HelloHandler>()),
          tronada::Rule("/api/echo", tronada::handler<EchoHandler>()),
          tronada::Rule("/ws", tronada::handler<EchoSocket>()),
      },
      settings);
}

}  // namespace {{name}}
