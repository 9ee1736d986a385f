// Query strings, urlencoded bodies and percent-decoding: url_decode, url_encode and
// parse_query_string, with their round trips.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "tronada/http/form_data.h"
#include "tronada/http/url_codec.h"

using namespace tronada;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text = fuzz::as_view(data, size);

  // Encoding then decoding gives back any bytes, whatever is kept unescaped.
  FUZZ_CHECK(url_decode(url_encode(text, "")) == std::string(text));
  FUZZ_CHECK(url_decode(url_encode(text, "/")) == std::string(text));
  FUZZ_CHECK(url_decode(url_encode(text, "/:@"), true) == std::string(text));

  for (bool plus : {false, true}) {
    if (auto decoded = url_decode(text, plus)) {
      FUZZ_CHECK(decoded->size() <= text.size());
      FUZZ_CHECK(url_decode(url_encode(*decoded, "")) == decoded);
    }
  }

  for (bool keep_blank : {true, false}) {
    QueryArguments args;
    try {
      args = parse_query_string(text, keep_blank, 64);
    } catch (const FormError&) {
      continue;  // too many fields: the documented refusal
    }
    // Re-encoding the decoded pairs and parsing again gives the same arguments.
    std::string again;
    for (const auto& [name, value] : args) {
      if (!again.empty()) again += '&';
      again += url_encode(name, "") + "=" + url_encode(value, "");
      if (!keep_blank) FUZZ_CHECK(!value.empty());
    }
    FUZZ_CHECK(parse_query_string(again, true, 0) == args);
    for (std::string_view name : args.names()) {
      FUZZ_CHECK(args.contains(name));
      FUZZ_CHECK(args.get_first(name).has_value() && args.get_last(name).has_value());
    }
  }
  return 0;
}
