// HTTP/1 requests end to end: the input is what a client sends on one connection,
// delivered in pieces to a real HTTP1Connection (parser, keep-alive, pipelining, chunked
// bodies, 100-continue, error responses) over an in-memory stream, with the loop turning
// between pieces. Checks: the output is a well-formed sequence of responses (read back
// with HTTP1ResponseParser), one per request the application answered plus at most one
// error response, and the connection is gone once the client closes.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "fuzz_server.h"
#include "fuzz_support.h"
#include "tronada/http/http1_connection.h"
#include "tronada/http/http1_response_parser.h"

using namespace tronada;

namespace {

struct Responses : HTTP1ResponseParser::Events {
  std::vector<int> statuses;
  int complete = 0;
  void on_head(HTTPResponseHead&& head) override { statuses.push_back(head.status); }
  void on_body(std::string_view) override {}
  void on_complete() override { ++complete; }
};

struct World {
  IOLoop loop;
  fuzz::FuzzServer server{loop};
  std::shared_ptr<detail::HTTP1ServerContext> context;
  World() {
    fuzz::quiet_log();
    loop.make_current();
    HTTPServerOptions options;
    options.limits.max_body_bytes = 64 * 1024;  // reachable by the fuzzer's inputs
    options.limits.max_request_line = 1024;
    options.limits.max_header_bytes = 4096;
    options.limits.max_header_count = 32;
    context = std::make_shared<detail::HTTP1ServerContext>(loop, options, &server);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static World* world = new World;  // one loop for the whole run, as a server has
  world->server.seen.clear();

  auto stream = fuzz::MemoryStream::open(world->loop);
  auto conn = std::make_shared<HTTP1Connection>(stream, world->context);
  std::weak_ptr<HTTP1Connection> weak = conn;
  conn->start();
  conn.reset();  // the stream's close callback and the requests hold it, as in the server

  for (std::string_view piece : fuzz::split(fuzz::as_view(data, size))) {
    stream->receive(piece);
    uv_run(world->loop.uv(), UV_RUN_NOWAIT);
  }
  // Let late responses go out before the client goes away.
  fuzz::run_loop(
      world->loop, [&] { return stream->closed(); }, 8);
  stream->receive_eof();
  fuzz::run_loop(world->loop, [&] { return weak.expired(); });
  FUZZ_CHECK(weak.expired());  // nothing keeps a closed connection alive

  // Every byte written is part of a well-formed response.
  const std::string& out = stream->output();
  if (std::getenv("FUZZ_DEBUG")) std::fprintf(stderr, "output:\n%s\n", out.c_str());
  Responses responses;
  HTTP1ResponseParser parser(responses);
  std::size_t pos = 0;
  bool partial = false;  // a response has begun and not completed
  while (pos < out.size()) {
    // Responses to HEAD have no body; interim 100s come before their request's response.
    std::size_t finals = 0;
    for (int s : responses.statuses) finals += s >= 200;
    if (!partial && finals < world->server.seen.size() &&
        world->server.seen[finals].method == "HEAD") {
      parser.expect_no_body();
    }
    std::size_t n = parser.feed(std::string_view(out).substr(pos));
    if (parser.failed()) std::fprintf(stderr, "response parser: %s\n", parser.error().c_str());
    FUZZ_CHECK(!parser.failed());
    pos += n;
    partial = !parser.complete();
    if (parser.complete()) {
      parser.reset();
    } else {
      FUZZ_CHECK(pos == out.size());
    }
  }
  if (partial) {
    parser.finish_eof();  // a close-delimited response ends with the connection
    if (parser.failed()) std::fprintf(stderr, "response parser: %s\n", parser.error().c_str());
    FUZZ_CHECK(!parser.failed());
  }
  std::size_t ok = 0, errors = 0;
  for (int s : responses.statuses) {
    if (s >= 200 && s < 300) ++ok;
    if (s >= 400) ++errors;
  }
  FUZZ_CHECK(ok == world->server.seen.size());
  FUZZ_CHECK(errors <= 1);  // an error response ends the connection
  return 0;
}
