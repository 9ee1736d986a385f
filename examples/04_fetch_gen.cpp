// The tour's 04_fetch_gen: the same fetch with co_await, then several fetches at once
// with gather() (the tour's Task and Multi) over the client's keep-alive pool.
//
//   04_fetch_gen http://127.0.0.1:8888/
#include <cstdio>
#include <string>
#include <vector>

#include "example_args.h"
#include "tronada/async/gather.h"
#include "tronada/async/run_sync.h"
#include "tronada/http/http_client.h"

using namespace tronada;

namespace {

Task<int> fetch_code(std::string url) {
  Future<HTTPResponse> pending = AsyncHTTPClient::instance().fetch(std::move(url), false);
  HTTPResponse response = co_await pending;
  co_return response.code;
}

Task<int> main_task(std::string url) {
  Future<HTTPResponse> pending = AsyncHTTPClient::instance().fetch(url);
  HTTPResponse response = co_await pending;
  std::printf("HTTP %d %s\n", response.code, response.reason.c_str());
  for (const auto& field : response.headers) {
    std::printf("%s: %s\n", field.name.c_str(), field.value.c_str());
  }
  std::printf("\n%s\n", response.body.c_str());

  std::vector<Task<int>> fetches;
  for (int i = 0; i < 3; ++i) fetches.push_back(fetch_code(url));
  std::vector<int> codes = co_await gather(std::move(fetches));
  std::printf("gathered:");
  for (int code : codes) std::printf(" %d", code);
  std::printf("\n");
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto args = examples::parse_args(argc, argv);
  std::string url = args.url.empty()
                        ? "http://" + args.address + ":" + std::to_string(args.port) + "/"
                        : args.url;
  int exit_code = 1;
  try {
    exit_code = run_sync([url] { return main_task(url); });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fetch failed: %s\n", e.what());
  }
  AsyncHTTPClient::close_instance();
  return exit_code;
}
