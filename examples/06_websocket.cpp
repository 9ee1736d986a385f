// The tour's WebSocket example as a tiny chat: GET / serves a page whose script opens a
// WebSocket to /chatsocket; every message a browser sends goes to every open socket.
#include <cstdio>
#include <set>

#include "example_args.h"
#include "tronada/web/application.h"
#include "tronada/web/request_handler.h"
#include "tronada/web/websocket_handler.h"

using namespace tronada;

namespace {

constexpr std::string_view kPage = R"(<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>tronada chat</title></head>
<body>
<div id="log"></div>
<form id="f"><input id="m" autocomplete="off" autofocus><button>Send</button></form>
<script>
const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") +
                         location.host + "/chatsocket");
ws.onmessage = (e) => {
  const p = document.createElement("p");
  p.textContent = e.data;
  document.getElementById("log").appendChild(p);
};
document.getElementById("f").onsubmit = (e) => {
  e.preventDefault();
  const m = document.getElementById("m");
  ws.send(m.value);
  m.value = "";
};
</script>
</body></html>
)";

class MainHandler : public RequestHandler {
 public:
  Task<void> get() override {
    write(kPage);
    co_return;
  }
};

class ChatSocketHandler : public WebSocketHandler {
 public:
  // The open sockets. A handler is in the set from open() until on_close, the span in
  // which it is alive and may be written to (see WebSocketHandler's lifetime rules).
  static std::set<ChatSocketHandler*>& waiters() {
    static std::set<ChatSocketHandler*> set;
    return set;
  }

  Task<void> open() override {
    waiters().insert(this);
    co_return;
  }
  void on_close(std::uint16_t, std::string_view) override { waiters().erase(this); }
  void on_message(std::string_view message, bool binary) override {
    if (binary) return;  // the page only sends text
    for (ChatSocketHandler* w : waiters()) {
      if (!w->closed()) (void)w->write_message(message);
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  auto args = examples::parse_args(argc, argv);
  Application app(
      {Rule("/", handler<MainHandler>()), Rule("/chatsocket", handler<ChatSocketHandler>())});
  HTTPServer& server = app.listen(args.port, args.address);
  std::printf("listening on http://%s:%d/\n", args.address.c_str(), server.ports().at(0));
  std::fflush(stdout);
  IOLoop& loop = IOLoop::current();
  loop.add_signal_handler(SIGINT, [&] { loop.stop(); });
  loop.add_signal_handler(SIGTERM, [&] { loop.stop(); });
  loop.start();
  return 0;
}
