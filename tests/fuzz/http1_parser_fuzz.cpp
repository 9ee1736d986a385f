// HTTP/1 requests through the sans-I/O HTTP1RequestParser alone (faster than the
// connection target, so it goes deeper into the parser): the same requests, bodies and
// verdict fed whole and in pieces; what it accepts has no bytes that could smuggle a
// second request past a proxy behind us.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "fuzz_support.h"
#include "tronada/http/http1_parser.h"

using namespace tronada;

namespace {

struct Delegate : HTTP1ParserDelegate {
  std::string log;
  HeadersAction on_headers(RequestStartLine&& line, HTTPHeaders&& headers,
                           const RequestInfo& info) override {
    FUZZ_CHECK(!(info.chunked && info.content_length));
    for (char c : line.target) FUZZ_CHECK(c > 0x20 && c < 0x7f);
    log += "H" + line.method + " " + line.target + " " + std::to_string(line.version_minor) + "|";
    for (const auto& f : headers) {
      FUZZ_CHECK(!f.name.empty());
      for (char c : f.value) FUZZ_CHECK(c != '\r' && c != '\n' && c != '\0');
      log += f.name + ":" + f.value + "|";
    }
    log += info.keep_alive ? "k" : "-";
    log += info.upgrade ? "u" : "-";
    return info.upgrade && (log.size() & 1) ? HeadersAction::kDeclineUpgrade
                                            : HeadersAction::kContinue;
  }
  void on_body(std::string_view chunk) override { log.append(chunk); }
  void on_trailers(HTTPHeaders&& trailers) override {
    for (const auto& f : trailers) log += "T" + f.name + ":" + f.value + "|";
  }
  void on_message_complete() override { log += "C"; }
};

struct Outcome {
  std::string log;
  int error = 0;
  bool upgraded = false;
};

Outcome run(const std::vector<std::string_view>& pieces) {
  Delegate d;
  HTTP1Limits limits;
  limits.max_request_line = 512;
  limits.max_header_bytes = 1024;
  limits.max_header_count = 16;
  limits.max_body_bytes = 2048;
  limits.max_chunk_line = 64;
  limits.max_chunk_extension_bytes = 128;
  HTTP1RequestParser parser(d, limits);
  Outcome o;
  for (std::string_view p : pieces) {
    while (!p.empty()) {
      FeedResult r = parser.feed(p);
      FUZZ_CHECK(r.consumed <= p.size());
      if (r.status == FeedStatus::kError) {
        o.error = parser.error_status();
        FUZZ_CHECK(o.error >= 400 && o.error <= 505);
        FUZZ_CHECK(!parser.error_reason().empty());
        return {std::move(d.log), o.error, false};
      }
      if (r.status == FeedStatus::kUpgrade) return {std::move(d.log), 0, true};
      p.remove_prefix(r.consumed);
      if (r.status == FeedStatus::kPaused) {
        parser.resume();
      } else {
        FUZZ_CHECK(p.empty());
      }
    }
  }
  o.log = std::move(d.log);
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input = fuzz::as_view(data, size);
  Outcome whole = run({input});
  Outcome pieces = run(fuzz::split(input));
  auto limit = [](int status) { return status == 413 || status == 414 || status == 431; };
  bool same = whole.error == pieces.error && whole.log == pieces.log;
  // An input that is both malformed and over a size limit may get either status: the
  // parser counts header bytes as llhttp reports them, which is at the end of each read
  // at the latest ("a buffer late at worst", http1_parser.cpp), so where the reads end
  // decides which error is seen first. Accepting or refusing must never depend on it.
  bool both_refused_for_a_limit =
      whole.error != 0 && pieces.error != 0 && (limit(whole.error) || limit(pieces.error));
  if (!same && !both_refused_for_a_limit) {
    std::fprintf(stderr, "whole: %d %s\npieces: %d %s\n", whole.error, whole.log.c_str(),
                 pieces.error, pieces.log.c_str());
  }
  FUZZ_CHECK((whole.error != 0) == (pieces.error != 0));
  FUZZ_CHECK(whole.upgraded == pieces.upgraded);
  FUZZ_CHECK(same || both_refused_for_a_limit);
  return 0;
}
