// The tour's 01_getting_started: the smallest server that answers GET / with
// "Hello, world". (The framework's RequestHandler/Application form replaces this once
// the web layer lands.)
#include <cstdio>

#include "example_args.h"
#include "tronada/http/http_server.h"

using namespace tronada;

int main(int argc, char** argv) {
  auto args = examples::parse_args(argc, argv);
  IOLoop& loop = IOLoop::current();
  HTTPServer server([](std::shared_ptr<HTTPServerRequest> request) {
    HTTPHeaders headers;
    if (request->path != "/") {
      headers.add("Content-Type", "text/plain");
      headers.add("Content-Length", "10");
      request->connection->write_response(404, headers, "Not Found\n");
      return;
    }
    headers.add("Content-Type", "text/plain");
    headers.add("Content-Length", "12");
    request->connection->write_response(200, headers, "Hello, world");
  });
  server.listen(args.port, args.address);
  std::printf("listening on http://%s:%d/\n", args.address.c_str(), server.ports().at(0));
  std::fflush(stdout);
  loop.add_signal_handler(SIGINT, [&] { loop.stop(); });
  loop.add_signal_handler(SIGTERM, [&] { loop.stop(); });
  loop.start();
  return 0;
}
