// The tour's 01_getting_started: define a RequestHandler, implement get, define an
// Application, tell it to listen, start the IOLoop.
#include <cstdio>

#include "example_args.h"
#include "tronada/web/application.h"
#include "tronada/web/request_handler.h"

using namespace tronada;

class MainHandler : public RequestHandler {
 public:
  Task<void> get() override {
    set_header("Content-Type", "text/plain");
    write("Hello, world");
    co_return;
  }
};

int main(int argc, char** argv) {
  auto args = examples::parse_args(argc, argv);
  ApplicationSettings settings;
  // One line per request goes to stderr at info level; the hello-world benchmark
  // measures the server, not the terminal.
  settings.log_function = [](const RequestHandler&) {};
  Application app({Rule("/", handler<MainHandler>())}, settings);
  HTTPServer& server = app.listen(args.port, args.address);
  std::printf("listening on http://%s:%d/\n", args.address.c_str(), server.ports().at(0));
  std::fflush(stdout);
  IOLoop& loop = IOLoop::current();
  loop.add_signal_handler(SIGINT, [&] { loop.stop(); });
  loop.add_signal_handler(SIGTERM, [&] { loop.stop(); });
  loop.start();
  return 0;
}
