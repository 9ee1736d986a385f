// HTTP/2 connections end to end: the input is what a client sends after the connection
// preface (the target prepends it), delivered in pieces to a real HTTP2Session (nghttp2
// plus our stream handling, flow control, reset and flood limits) over an in-memory
// stream, with the loop turning between pieces and the same application as the HTTP/1
// target. Checks: the server's output starts with its SETTINGS frame and is a sequence
// of whole frames, and the session is gone once the client closes.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "fuzz_server.h"
#include "fuzz_support.h"
#include "tronada/http/http2_session.h"

using namespace tronada;

namespace {

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

struct World {
  IOLoop loop;
  fuzz::FuzzServer server{loop};
  std::shared_ptr<detail::HTTP2ServerContext> context;
  World() {
    fuzz::quiet_log();
    loop.make_current();
    HTTPServerOptions options;
    options.limits.max_body_bytes = 64 * 1024;
    options.limits.max_header_bytes = 4096;
    context = std::make_shared<detail::HTTP2ServerContext>();
    context->base = std::make_shared<detail::HTTP1ServerContext>(loop, options, &server);
    context->options.max_concurrent_streams = 16;
    context->options.initial_window_size = 1024;  // small windows: flow control is reachable
    context->options.connection_window_size = 4096;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static World* world = new World;
  world->server.seen.clear();

  auto stream = fuzz::MemoryStream::open(world->loop);
  auto session = std::make_shared<HTTP2Session>(stream, world->context);
  std::weak_ptr<HTTP2Session> weak = session;
  session->start();
  session.reset();

  std::string input(kPreface);
  input.append(fuzz::as_view(data, size));
  for (std::string_view piece : fuzz::split(input)) {
    stream->receive(piece);
    uv_run(world->loop.uv(), UV_RUN_NOWAIT);
  }
  fuzz::run_loop(
      world->loop, [&] { return stream->closed(); }, 8);
  stream->receive_eof();
  fuzz::run_loop(world->loop, [&] { return weak.expired(); });
  FUZZ_CHECK(weak.expired());

  // Whole frames only, the first one our SETTINGS.
  std::string_view out = stream->output();
  FUZZ_CHECK(out.size() >= 9 && out[3] == 0x4 /* SETTINGS */);
  while (out.size() >= 9) {
    std::size_t length = (std::size_t(std::uint8_t(out[0])) << 16) |
                         (std::size_t(std::uint8_t(out[1])) << 8) | std::uint8_t(out[2]);
    FUZZ_CHECK(length <= 16384);  // SETTINGS_MAX_FRAME_SIZE's default; we never raise it
    FUZZ_CHECK(out.size() >= 9 + length);
    out.remove_prefix(9 + length);
  }
  FUZZ_CHECK(out.empty());
  return 0;
}
