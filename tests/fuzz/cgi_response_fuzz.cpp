// CGI response header blocks as a FastCGI responder writes them (FCGI_STDOUT): parsed
// whole and in pieces, with the same outcome; what it accepts holds no bytes that could
// split the HTTP response we build from it.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "fuzz_support.h"
#include "tronada/gateway/cgi_response.h"

using namespace tronada;

namespace {

struct Outcome {
  bool error = false;
  bool done = false;
  std::size_t header_bytes = 0;  // bytes of the input that were the header block
  CGIResponse response;
};

Outcome parse(const std::vector<std::string_view>& pieces, bool finish) {
  Outcome o;
  CGIResponseParser parser(1024);
  try {
    for (std::string_view piece : pieces) {
      std::size_t n = parser.feed(piece);
      FUZZ_CHECK(n <= piece.size());
      o.header_bytes += n;
      if (parser.done()) break;
      FUZZ_CHECK(n == piece.size());
    }
    if (finish && !parser.done()) parser.finish();
  } catch (const CGIResponseError&) {
    o.error = true;
    return o;
  }
  o.done = parser.done();
  if (o.done) o.response = parser.response();
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input = fuzz::as_view(data, size);
  Outcome whole = parse({input}, true);
  Outcome pieces = parse(fuzz::split(input), true);
  FUZZ_CHECK(whole.error == pieces.error);
  if (whole.error) return 0;
  FUZZ_CHECK(whole.done && pieces.done);
  FUZZ_CHECK(whole.header_bytes == pieces.header_bytes);
  FUZZ_CHECK(whole.response.status == pieces.response.status);
  FUZZ_CHECK(whole.response.kind == pieces.response.kind);
  FUZZ_CHECK(whole.response.headers == pieces.response.headers);
  FUZZ_CHECK(whole.response.location == pieces.response.location);
  const CGIResponse& r = whole.response;
  FUZZ_CHECK(r.status >= 100 && r.status <= 999);
  for (const auto& field : r.headers) {
    FUZZ_CHECK(!field.name.empty());
    for (char c : field.name) FUZZ_CHECK(c != ':' && c != '\r' && c != '\n' && c != '\0');
    for (char c : field.value) FUZZ_CHECK(c != '\r' && c != '\n' && c != '\0');
  }
  for (char c : r.reason) FUZZ_CHECK(c != '\r' && c != '\n');
  return 0;
}
