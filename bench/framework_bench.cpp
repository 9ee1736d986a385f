// framework_bench: the server side of bench/run.py's `json` and `routes` workloads, the
// same handlers as bench/peers/tornado_framework.py so the two compare like for like.
//
//   /                "Hello, world" (what the harness probes before measuring)
//   /json            {"message": "Hello, World!"} serialised per request (write_json)
//   /item/([0-9]+)   "item N", the last of --routes N rules (N-3 fillers that do not
//                    match it), so the request pays for the whole table (worst case)
//
//   framework_bench --port N [--address A] [--routes N]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tronada/web/application.h"
#include "tronada/web/request_handler.h"

using namespace tronada;

namespace {

class HelloHandler : public RequestHandler {
 public:
  Task<void> get() override {
    set_header("Content-Type", "text/plain");
    write("Hello, world");
    co_return;
  }
};

class JSONHandler : public RequestHandler {
 public:
  Task<void> get() override {
    write_json({{"message", "Hello, World!"}});
    co_return;
  }
};

class ItemHandler : public RequestHandler {
 public:
  Task<void> get() override {
    set_header("Content-Type", "text/plain");
    write("item " + path_args().at(0));
    co_return;
  }
};

// Never reached by the benchmark's requests: only there to be tried and rejected.
class FillerHandler : public RequestHandler {
 public:
  Task<void> get() override {
    write("filler");
    co_return;
  }
};

struct Options {
  int port = 8888;
  std::string address = "127.0.0.1";
  int routes = 3;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    auto value = [&](const char* flag) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", flag);
        std::exit(2);
      }
      return argv[++i];
    };
    if (std::strcmp(argv[i], "--port") == 0) {
      o.port = std::atoi(value("--port"));
    } else if (std::strcmp(argv[i], "--address") == 0) {
      o.address = value("--address");
    } else if (std::strcmp(argv[i], "--routes") == 0) {
      o.routes = std::atoi(value("--routes"));
    } else {
      std::fprintf(stderr, "usage: %s [--port N] [--address A] [--routes N]\n", argv[0]);
      std::exit(2);
    }
  }
  if (o.routes < 3 || o.routes > 10000) {
    std::fprintf(stderr, "--routes: 3 to 10000\n");
    std::exit(2);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  std::vector<Rule> rules;
  rules.emplace_back("/", handler<HelloHandler>());
  rules.emplace_back("/json", handler<JSONHandler>());
  // Fillers shaped like a real API's rules (a literal prefix, then groups), so a naive
  // matcher cannot reject them on the first byte alone.
  for (int i = 0; i < o.routes - 3; ++i) {
    rules.emplace_back("/api/v1/resource" + std::to_string(i) + "/(?P<id>[0-9]+)/(?P<name>[a-z]+)",
                       handler<FillerHandler>());
  }
  rules.emplace_back("/item/([0-9]+)", handler<ItemHandler>());
  ApplicationSettings settings;
  settings.log_function = [](const RequestHandler&) {};  // measure the server, not stderr
  Application app(std::move(rules), settings);
  HTTPServer& server = app.listen(o.port, o.address);
  std::printf("framework_bench (%d routes) on http://%s:%d/\n", o.routes, o.address.c_str(),
              server.ports().at(0));
  std::fflush(stdout);
  IOLoop& loop = IOLoop::current();
  loop.add_signal_handler(SIGINT, [&] { loop.stop(); });
  loop.add_signal_handler(SIGTERM, [&] { loop.stop(); });
  loop.start();
  return 0;
}
