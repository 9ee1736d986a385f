// FastCGI records from a backend (what php-fpm writes back): the client's ResponseParser
// for request 1, fed whole and in pieces with the same events and the same verdict; the
// record splitter's records re-encode to the same records; name-value pairs (PARAMS,
// GET_VALUES_RESULT) decode and re-encode to the same pairs.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "tronada/gateway/fastcgi_record.h"

using namespace tronada::fastcgi;

namespace {

struct Events : ResponseHandler {
  std::string log;  // every event, in order
  void on_stdout(std::string_view d) override { log.append("O").append(d); }
  void on_stderr(std::string_view d) override { log.append("E").append(d); }
  void on_end_request(std::uint32_t app, ProtocolStatus s) override {
    log += "END" + std::to_string(app) + "/" + std::to_string(static_cast<int>(s));
  }
  void on_values(const NameValuePairs& values) override {
    for (const auto& [n, v] : values) log += "V" + n + "=" + v;
  }
};

struct Outcome {
  std::string log;
  bool error = false;
  bool complete = false;
  bool clean = false;
};

Outcome run(const std::vector<std::string_view>& pieces) {
  Outcome o;
  Events events;
  ResponseParser parser(1, events);
  try {
    for (std::string_view p : pieces) parser.feed(p);
    o.complete = parser.complete();
    o.clean = parser.clean();
    parser.feed_eof();
  } catch (const ProtocolError&) {
    o.error = true;
  }
  o.log = std::move(events.log);
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input = fuzz::as_view(data, size);

  Outcome whole = run({input});
  Outcome pieces = run(fuzz::split(input));
  FUZZ_CHECK(whole.error == pieces.error);
  FUZZ_CHECK(whole.log == pieces.log);
  if (!whole.error) FUZZ_CHECK(whole.complete == pieces.complete && whole.clean == pieces.clean);

  // Records: splitting, re-encoding each record and splitting again is the identity.
  std::vector<std::pair<Record, std::string>> records;
  std::string reencoded;
  try {
    RecordParser splitter([&](const Record& r) {
      FUZZ_CHECK(r.content.size() <= kMaxContentLength);
      records.push_back({r, std::string(r.content)});
      if (!r.content.empty()) {
        append_record(reencoded, static_cast<RecordType>(r.type), r.request_id, r.content);
      }
      // Name-value content: whatever decodes re-encodes to pairs that decode the same.
      try {
        NameValuePairs pairs = parse_name_values(r.content);
        std::string again;
        for (const auto& [n, v] : pairs) append_name_value(again, n, v);
        FUZZ_CHECK(parse_name_values(again) == pairs);
      } catch (const ProtocolError&) {
      }
    });
    splitter.feed(input);
  } catch (const ProtocolError&) {
  }
  std::size_t i = 0;
  RecordParser check([&](const Record& r) {
    while (i < records.size() && records[i].second.empty()) ++i;  // empty ones not re-encoded
    FUZZ_CHECK(i < records.size());
    FUZZ_CHECK(r.type == records[i].first.type && r.request_id == records[i].first.request_id);
    FUZZ_CHECK(r.content == records[i].second);
    ++i;
  });
  check.feed(reencoded);
  FUZZ_CHECK(check.at_boundary());
  return 0;
}
