// The tour's 04_fetch_gen: the 03_fetch_async handler without the callback. The handler
// co_awaits the fetch, then runs three fetches at once with gather() (the tour's Task and
// Multi) over the client's keep-alive pool, and the request finishes with the task.
//
//   04_fetch_gen --port 8889 http://127.0.0.1:8888/
//   curl http://127.0.0.1:8889/
#include <csignal>
#include <cstdio>
#include <optional>

#include "example_args.h"
#include "tronada/async/gather.h"
#include "tronada/http/http_client.h"
#include "tronada/web/application.h"
#include "tronada/web/request_handler.h"

using namespace tronada;

namespace {

Task<int> fetch_code(std::string url) {
  Future<HTTPResponse> pending = AsyncHTTPClient::instance().fetch(std::move(url), false);
  HTTPResponse response = co_await pending;
  co_return response.code;
}

}  // namespace

class FetchHandler : public RequestHandler {
 public:
  void initialize(const std::string& url) { url_ = url; }

  Task<void> get() override {
    // Errors such as a refused connection arrive as exceptions at the co_await. Build
    // the future first: see docs/coroutines.md on GCC 12 and co_await operands.
    std::optional<HTTPResponse> response;
    std::string failure;
    try {
      Future<HTTPResponse> pending = AsyncHTTPClient::instance().fetch(url_, false);
      response = co_await pending;
    } catch (const std::exception& e) {
      failure = e.what();
    }
    if (!response || response->code == 599) {
      set_status(502);
      write("fetch failed: " + (response ? response->reason : failure) + "\n");
      co_return;
    }
    write("fetched " + url_ + ": " + std::to_string(response->code) + ", " +
          std::to_string(response->body.size()) + " bytes\n");
    write(response->body);

    std::vector<Task<int>> fetches;
    for (int i = 0; i < 3; ++i) fetches.push_back(fetch_code(url_));
    std::vector<int> codes = co_await gather(std::move(fetches));
    std::string line = "\ngathered:";
    for (int code : codes) line += " " + std::to_string(code);
    write(line + "\n");
  }

 private:
  std::string url_;
};

int main(int argc, char** argv) {
  auto args = examples::parse_args(argc, argv);
  std::string url = args.url.empty() ? "http://127.0.0.1:8888/" : args.url;
  Application app({Rule("/", handler<FetchHandler>(url))});
  HTTPServer& server = app.listen(args.port, args.address);
  std::printf("listening on http://%s:%d/, fetching %s\n", args.address.c_str(),
              server.ports().at(0), url.c_str());
  std::fflush(stdout);
  IOLoop& loop = IOLoop::current();
  loop.add_signal_handler(SIGINT, [&] { loop.stop(); });
  loop.add_signal_handler(SIGTERM, [&] { loop.stop(); });
  loop.start();
  AsyncHTTPClient::close_instance();
  return 0;
}
