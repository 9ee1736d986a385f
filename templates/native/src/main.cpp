// {{name}}: serves the application from app.cpp.
//
//   {{name}} [--port N] [--address A] [--static-path DIR]
//
// Started by `tronada run` or by systemd with socket activation, it serves the listening
// sockets it was given (LISTEN_FDS) instead of binding its own, so a restart never
// refuses a connection.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <tronada/loop/io_loop.h>
#include <tronada/net/systemd.h>

#include "app.h"

int main(int argc, char** argv) {
  int port = 8888;
  std::string address = "127.0.0.1";
  std::string static_path = "static";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (i + 1 < argc && arg == "--port") {
      port = std::atoi(argv[++i]);
    } else if (i + 1 < argc && arg == "--address") {
      address = argv[++i];
    } else if (i + 1 < argc && arg == "--static-path") {
      static_path = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--port N] [--address A] [--static-path DIR]\n", argv[0]);
      return 2;
    }
  }

  auto app = {{name}}::make_app(static_path);
  tronada::HTTPServer server(*app);
  std::vector<int> fds = tronada::systemd_listen_fds();
  if (!fds.empty()) {
    server.add_sockets(fds);
    std::printf("{{name}}: serving %zu inherited socket(s)\n", fds.size());
  } else {
    server.listen(port, address);
    std::printf("{{name}}: listening on http://%s:%d/\n", address.c_str(), port);
  }
  std::fflush(stdout);
  tronada::systemd_notify("READY=1");

  tronada::IOLoop& loop = tronada::IOLoop::current();
  loop.add_signal_handler(SIGINT, [&] { loop.stop(); });
  loop.add_signal_handler(SIGTERM, [&] { loop.stop(); });
  loop.start();
  server.stop();
  return 0;
}
