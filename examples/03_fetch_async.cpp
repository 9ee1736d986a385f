// The tour's 03_fetch_async: fetch a URL with AsyncHTTPClient in callback style. The
// callback gets the response (or, on failure, a response whose error says why) and
// stops the loop.
//
//   03_fetch_async http://127.0.0.1:8888/
#include <cstdio>
#include <string>

#include "example_args.h"
#include "tronada/http/http_client.h"

using namespace tronada;

int main(int argc, char** argv) {
  auto args = examples::parse_args(argc, argv);
  std::string url = args.url.empty()
                        ? "http://" + args.address + ":" + std::to_string(args.port) + "/"
                        : args.url;
  IOLoop& loop = IOLoop::current();
  int exit_code = 1;
  AsyncHTTPClient::instance().fetch(HTTPRequest(url), [&](HTTPResponse response) {
    if (response.code == 599) {
      std::fprintf(stderr, "fetch failed: %s\n", response.reason.c_str());
    } else {
      std::printf("HTTP %d %s\n", response.code, response.reason.c_str());
      for (const auto& field : response.headers) {
        std::printf("%s: %s\n", field.name.c_str(), field.value.c_str());
      }
      std::printf("\n%s\n", response.body.c_str());
      exit_code = response.error ? 1 : 0;
    }
    loop.stop();
  });
  loop.start();
  AsyncHTTPClient::close_instance();
  return exit_code;
}
