// multipart/form-data bodies: the input's first line is the Content-Type value, the rest
// the body. The streaming parser gives the same events and verdict fed whole and in
// pieces, and parse_multipart agrees with it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "tronada/http/multipart.h"

using namespace tronada;

namespace {

struct Events : MultipartDelegate {
  std::string log;
  std::size_t parts = 0;
  bool in_part = false;
  bool finished = false;
  void on_part_begin(const MultipartPartHeaders& part) override {
    FUZZ_CHECK(!in_part && !finished);
    in_part = true;
    ++parts;
    log += "B" + part.name + "|" + part.filename.value_or("-") + "|" + part.content_type + "|";
    for (const auto& f : part.headers) log += f.name + ":" + f.value + "|";
  }
  void on_part_data(std::string_view d) override {
    FUZZ_CHECK(in_part && !d.empty());
    log.append(d);
  }
  void on_part_end() override {
    FUZZ_CHECK(in_part);
    in_part = false;
    log += "E";
  }
  void on_finish() override {
    FUZZ_CHECK(!in_part && !finished);
    finished = true;
    log += "F";
  }
};

struct Outcome {
  std::string log;
  MultipartParser::Status status;
  MultipartError error;
  std::size_t parts;
};

Outcome run(const std::string& boundary, const std::vector<std::string_view>& pieces) {
  Events events;
  MultipartLimits limits;
  limits.max_header_bytes = 512;
  limits.max_parts = 16;
  MultipartParser parser(boundary, events, limits);
  for (std::string_view p : pieces) parser.feed(p);
  MultipartParser::Status status = parser.finish();
  FUZZ_CHECK(status != MultipartParser::Status::need_more);
  FUZZ_CHECK((status == MultipartParser::Status::finished) == events.finished);
  FUZZ_CHECK((status == MultipartParser::Status::failed) == !parser.error_message().empty());
  return {std::move(events.log), status, parser.error(), events.parts};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input = fuzz::as_view(data, size);
  std::size_t eol = input.find('\n');
  if (eol == std::string_view::npos) return 0;
  std::string_view content_type = input.substr(0, eol);
  if (!content_type.empty() && content_type.back() == '\r') content_type.remove_suffix(1);
  std::string_view body = input.substr(eol + 1);

  std::optional<std::string> boundary = parse_boundary(content_type);
  if (!boundary) return 0;
  FUZZ_CHECK(is_valid_multipart_boundary(*boundary));

  Outcome whole = run(*boundary, {body});
  Outcome pieces = run(*boundary, fuzz::split(body));
  FUZZ_CHECK(whole.status == pieces.status);
  FUZZ_CHECK(whole.error == pieces.error);
  FUZZ_CHECK(whole.log == pieces.log);

  MultipartLimits limits;
  limits.max_header_bytes = 512;
  limits.max_parts = 16;
  try {
    MultipartForm form = parse_multipart(body, *boundary, limits);
    FUZZ_CHECK(whole.status == MultipartParser::Status::finished);
    FUZZ_CHECK(form.fields.size() + form.files.size() == whole.parts);
  } catch (const FormError&) {
    FUZZ_CHECK(whole.status == MultipartParser::Status::failed);
  }
  return 0;
}
