// The tour's 0b_tcpserver: a TCPServer subclass that echoes every line back, written
// as a coroutine per connection.
#include <cstdio>

#include "example_args.h"
#include "tronada/async/spawn.h"
#include "tronada/net/tcp_server.h"

using namespace tronada;

namespace {

class EchoServer : public TCPServer {
 protected:
  void handle_stream(std::shared_ptr<IOStream> stream) override {
    spawn_logged(echo(std::move(stream)), "echo connection");
  }

 private:
  // The stream is a parameter, not a capture: it lives in the coroutine frame.
  static Task<void> echo(std::shared_ptr<IOStream> stream) {
    try {
      for (;;) {
        std::string line = co_await stream->read_until("\n", 64 * 1024);
        co_await stream->write(std::move(line));
      }
    } catch (const StreamClosedError&) {
      // The client went away: the normal end of an echo session.
    } catch (const UnsatisfiableReadError&) {
      // A line over 64 KiB: the stream is already closed.
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  auto args = examples::parse_args(argc, argv);
  IOLoop& loop = IOLoop::current();
  EchoServer server;
  server.listen(args.port, args.address);
  std::printf("echo server on %s:%d\n", args.address.c_str(), server.ports().at(0));
  std::fflush(stdout);
  loop.add_signal_handler(SIGINT, [&] { loop.stop(); });
  loop.add_signal_handler(SIGTERM, [&] { loop.stop(); });
  loop.start();
  server.stop();
  return 0;
}
