// WebSocket echo server: every message at /ws comes back as it came, text as text and
// binary as binary, compressed with permessage-deflate when the client offers it. The
// integration tests and the ws-echo benchmark run it.
#include <cstdio>

#include "example_args.h"
#include "tronada/web/application.h"
#include "tronada/web/websocket_handler.h"

using namespace tronada;

class EchoHandler : public WebSocketHandler {
 public:
  void on_message(std::string_view message, bool binary) override {
    // /ws-header answers "header NAME" with that request header's value, read after
    // open() (the tests' check of keep_request_headers).
    if (keep_request_headers() && message.starts_with("header ")) {
      auto value = request().headers.get(message.substr(7));
      (void)write_message(value ? *value : std::string_view("(none)"), false);
      return;
    }
    (void)write_message(message, binary);
  }
  bool keep_request_headers() const override { return request().path == "/ws-header"; }
  bool check_origin(std::string_view origin) override {
    // /ws-same-origin keeps Tornado's default (the tests check the 403).
    if (request().path == "/ws-same-origin") return WebSocketHandler::check_origin(origin);
    return true;
  }
  std::optional<ws::DeflateOptions> get_compression_options() override {
    return ws::DeflateOptions{};
  }
  std::optional<std::string> select_subprotocol(const std::vector<std::string>& offered) override {
    for (const auto& p : offered) {
      if (p == "echo") return p;
    }
    return std::nullopt;
  }
};

int main(int argc, char** argv) {
  auto args = examples::parse_args(argc, argv);
  ApplicationSettings settings;
  settings.log_function = [](const RequestHandler&) {};
  Application app(
      {Rule("/ws", handler<EchoHandler>()), Rule("/ws-same-origin", handler<EchoHandler>()),
       Rule("/ws-header", handler<EchoHandler>())},
      settings);
  HTTPServer& server = app.listen(args.port, args.address);
  std::printf("listening on ws://%s:%d/ws\n", args.address.c_str(), server.ports().at(0));
  std::fflush(stdout);
  IOLoop& loop = IOLoop::current();
  loop.add_signal_handler(SIGINT, [&] { loop.stop(); });
  loop.add_signal_handler(SIGTERM, [&] { loop.stop(); });
  loop.start();
  return 0;
}
