// The tour's 03_fetch_async: a handler that fetches another URL with AsyncHTTPClient in
// callback style and finishes the request from that callback ("close it yourself"),
// while the loop goes on serving other requests.
//
//   03_fetch_async --port 8889 http://127.0.0.1:8888/
//   curl http://127.0.0.1:8889/
#include <csignal>
#include <cstdio>

#include "example_args.h"
#include "tronada/http/http_client.h"
#include "tronada/web/application.h"
#include "tronada/web/request_handler.h"

using namespace tronada;

class FetchHandler : public RequestHandler {
 public:
  void initialize(const std::string& url) { url_ = url; }

  Task<void> get() override {
    keep_open();  // Tornado's @asynchronous: the callback finishes the request
    AsyncHTTPClient::instance().fetch(HTTPRequest(url_), [this](HTTPResponse response) {
      if (response.code == 599) {
        set_status(502);
        finish("fetch failed: " + response.reason + "\n");
        return;
      }
      write("fetched " + url_ + ": " + std::to_string(response.code) + ", " +
            std::to_string(response.body.size()) + " bytes\n");
      finish(response.body);
    });
    co_return;
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
