// One server, three kinds of handler: a C++ handler on /native, a WebSocket echo on /ws
// and a Flask app (examples/wsgi_mixed_app.py, run by embedded Python on worker
// threads) mounted on /app. The loop thread never runs Python, so /native and /ws stay
// fast while a Flask view is busy.
//
//   build/bin/wsgi_mixed [--port N] [--address A] [path/to/wsgi_mixed_app.py]
//
// Without a path the app is looked for next to the sources (../../examples from the
// binary) and next to the binary.
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <filesystem>

#include "example_args.h"
#include "tronada/gateway/wsgi_container.h"
#include "tronada/gateway/wsgi_interpreter.h"
#include "tronada/web/application.h"
#include "tronada/web/request_handler.h"
#include "tronada/web/websocket_handler.h"

using namespace tronada;
namespace fs = std::filesystem;

class NativeHandler : public RequestHandler {
 public:
  Task<void> get() override {
    set_header("Content-Type", "text/plain");
    write("hello from C++\n");
    co_return;
  }
};

class EchoHandler : public WebSocketHandler {
 public:
  void on_message(std::string_view message, bool binary) override {
    (void)write_message(message, binary);
  }
};

static fs::path find_app(const std::string& given) {
  if (!given.empty()) return fs::absolute(given);
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  for (const fs::path& dir : {exe.parent_path() / ".." / ".." / "examples", exe.parent_path()}) {
    if (fs::exists(dir / "wsgi_mixed_app.py", ec)) return fs::canonical(dir / "wsgi_mixed_app.py");
  }
  std::fprintf(stderr, "wsgi_mixed_app.py not found; pass its path as an argument\n");
  std::exit(2);
}

int main(int argc, char** argv) {
  auto args = examples::parse_args(argc, argv);
  fs::path app_file = find_app(args.url);
  WSGIOptions options;
  options.threads = 4;
  options.python_path = {app_file.parent_path().string()};
  std::shared_ptr<WSGIApplication> flask;
  try {
    flask = WSGIApplication::load(app_file.stem().string() + ":app", options);
  } catch (const WSGIAppError& e) {
    std::fprintf(stderr, "cannot load %s: %s\n", app_file.c_str(), e.what());
    return 1;
  }
  ApplicationSettings settings;
  settings.log_function = [](const RequestHandler&) {};
  {
    Application app({Rule("/native", handler<NativeHandler>()), Rule("/ws", handler<EchoHandler>()),
                     wsgi_rule("/app", flask)},
                    settings);
    HTTPServer& server = app.listen(args.port, args.address);
    std::printf("listening on http://%s:%d/ (/native, /ws, /app)\n", args.address.c_str(),
                server.ports().at(0));
    std::fflush(stdout);
    IOLoop& loop = IOLoop::current();
    loop.add_signal_handler(SIGINT, [&] { loop.stop(); });
    loop.add_signal_handler(SIGTERM, [&] { loop.stop(); });
    loop.start();
    // Requests still queued for the app are dropped with the loop; the worker threads
    // finish their current call and are joined before Python goes away.
    flask->stop();
  }
  flask.reset();
  PythonInterpreter::finalize();
  return 0;
}
