// The tour's asynchronous handler (03_fetch_async without the HTTP client): get()
// returns at once, the request stays open, and a timeout finishes it later while the
// loop keeps serving other requests.
#include <cstdio>

#include "example_args.h"
#include "tronada/async/sleep.h"
#include "tronada/web/application.h"
#include "tronada/web/request_handler.h"

using namespace tronada;
using namespace std::chrono_literals;

// Callback style: keep_open() is Tornado's @asynchronous.
class CallbackHandler : public RequestHandler {
 public:
  Task<void> get() override {
    keep_open();
    IOLoop::current().call_later(500ms, [this] { finish("finished from a callback\n"); });
    co_return;
  }
};

// Coroutine style: the request finishes when the task does.
class CoroutineHandler : public RequestHandler {
 public:
  Task<void> get() override {
    co_await sleep(500ms);
    write("finished after co_await sleep\n");
  }
};

int main(int argc, char** argv) {
  auto args = examples::parse_args(argc, argv);
  Application app({Rule("/", handler<CallbackHandler>()), Rule("/coro", handler<CoroutineHandler>())});
  HTTPServer& server = app.listen(args.port, args.address);
  std::printf("listening on http://%s:%d/ and /coro\n", args.address.c_str(), server.ports().at(0));
  std::fflush(stdout);
  IOLoop& loop = IOLoop::current();
  loop.add_signal_handler(SIGINT, [&] { loop.stop(); });
  loop.add_signal_handler(SIGTERM, [&] { loop.stop(); });
  loop.start();
  return 0;
}
