// HTTP/1 responses as an upstream sends them, through HTTP1ResponseParser (the HTTP
// client and the proxy read with it): the same responses and verdict fed whole and in
// pieces, and field values that cannot split a response we forward. Bit 0 of the first
// byte says the first response answers a HEAD request.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "tronada/http/http1_response_parser.h"

using namespace tronada;

namespace {

struct Events : HTTP1ResponseParser::Events {
  std::string log;
  void on_head(HTTPResponseHead&& head) override {
    FUZZ_CHECK(head.status >= 100 && head.status <= 999);
    log += "H" + std::to_string(head.status) + " " + head.reason + "|";
    for (const auto& f : head.headers) {
      FUZZ_CHECK(!f.name.empty());
      for (char c : f.value) FUZZ_CHECK(c != '\r' && c != '\n' && c != '\0');
      log += f.name + ":" + f.value + "|";
    }
  }
  void on_body(std::string_view chunk) override { log.append(chunk); }
  void on_complete() override { log += "C"; }
};

struct Outcome {
  std::string log;
  bool failed = false;
};

Outcome run(bool head, const std::vector<std::string_view>& pieces) {
  Events events;
  HTTP1ResponseParser parser(events, 2048);
  if (head) parser.expect_no_body();
  bool failed = false;
  for (std::string_view p : pieces) {
    while (!p.empty() && !failed) {
      std::size_t n = parser.feed(p);
      FUZZ_CHECK(n <= p.size());
      if (parser.failed()) {
        failed = true;
        break;
      }
      p.remove_prefix(n);
      if (parser.complete()) {
        // A kept-alive connection goes on with the next response; a closing one ends.
        if (!parser.keep_alive()) break;  // the connection ends; what follows is dropped
        parser.reset();
      } else {
        FUZZ_CHECK(p.empty());
      }
    }
    if (failed || (parser.complete() && !parser.keep_alive())) break;
  }
  if (!failed && !parser.complete()) {
    parser.finish_eof();
    failed = parser.failed();
  }
  return {std::move(events.log), failed};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  bool head = data[0] & 1;
  std::string_view input = fuzz::as_view(data + 1, size - 1);
  Outcome whole = run(head, {input});
  Outcome pieces = run(head, fuzz::split(input));
  FUZZ_CHECK(whole.failed == pieces.failed);
  FUZZ_CHECK(whole.log == pieces.log);
  return 0;
}
