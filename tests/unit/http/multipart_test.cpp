#include "tronada/http/multipart.h"

#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tronada {
namespace {

using Status = MultipartParser::Status;

std::string escape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c >= 0x7f || c == '\\') {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// Records events as text, joining each part's data so that logs compare equal however
// the input was split, and checks the event order the delegate contract promises.
class Recorder : public MultipartDelegate {
 public:
  std::string log;
  std::size_t data_bytes = 0;
  std::function<void()> on_begin_hook;

  void on_part_begin(const MultipartPartHeaders& part) override {
    EXPECT_FALSE(in_part_);
    EXPECT_FALSE(finished_);
    in_part_ = true;
    log += "begin name=" + part.name;
    log += " filename=" + (part.filename ? "[" + *part.filename + "]" : std::string("-"));
    log += " type=" + part.content_type + "\n";
    if (on_begin_hook) on_begin_hook();
  }
  void on_part_data(std::string_view data) override {
    EXPECT_TRUE(in_part_);
    EXPECT_FALSE(data.empty());
    data_ += data;
    data_bytes += data.size();
  }
  void on_part_end() override {
    EXPECT_TRUE(in_part_);
    in_part_ = false;
    log += "data=" + escape(data_) + "\nend\n";
    data_.clear();
  }
  void on_finish() override {
    EXPECT_FALSE(in_part_);
    EXPECT_FALSE(finished_);
    finished_ = true;
    log += "finish\n";
  }

 private:
  bool in_part_ = false;
  bool finished_ = false;
  std::string data_;
};

struct Outcome {
  std::string log;
  Status status;
  MultipartError error;
};

Outcome parse_in_chunks(std::string_view boundary, std::string_view body,
                        const std::vector<std::size_t>& cuts, MultipartLimits limits = {}) {
  Recorder recorder;
  MultipartParser parser(boundary, recorder, limits);
  std::size_t at = 0;
  for (std::size_t cut : cuts) {
    parser.feed(body.substr(at, cut - at));
    at = cut;
  }
  parser.feed(body.substr(at));
  Status status = parser.finish();
  return {recorder.log, status, parser.error()};
}

Outcome parse_whole(std::string_view boundary, std::string_view body, MultipartLimits limits = {}) {
  return parse_in_chunks(boundary, body, {}, limits);
}

Outcome parse_bytewise(std::string_view boundary, std::string_view body) {
  Recorder recorder;
  MultipartParser parser(boundary, recorder);
  for (char c : body) parser.feed(std::string_view(&c, 1));
  Status status = parser.finish();
  return {recorder.log, status, parser.error()};
}

constexpr std::string_view kBoundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW";

// Binary file contents full of near-misses: "\r\n--" runs, the delimiter minus its last
// byte, the whole delimiter followed by bytes that do not end a boundary line, NULs,
// high bytes, and a CR right before the real delimiter.
std::string tricky_binary() {
  std::string d = "\r\n--" + std::string(kBoundary);
  std::string b;
  b += std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16);
  b += "\r\n--";
  b += "\r\n--\r\n--";
  b += "\r\r\n-\r\n-";
  b += d.substr(0, d.size() - 1) + "X";
  b += d + "X";
  b += d + "-x";
  b += d + " \t x";
  b += d + "\rX";
  b += d + "  \r\r\n";
  b += std::string("\xff\xfe\x00\x01\x00", 5);
  b += "--" + std::string(kBoundary) + "\r\n";  // a boundary line not preceded by CRLF
  b += "\r";
  return b;
}

std::string browser_body() {
  std::string dash = "--" + std::string(kBoundary);
  std::string body;
  body += dash + "\r\n";
  body += "Content-Disposition: form-data; name=\"title\"\r\n\r\n";
  body += "Hello world\r\n";
  body += dash + "\r\n";
  body += "Content-Disposition: form-data; name=\"comment\"\r\n\r\n";
  body += "line one\r\nline two\r\n";
  body += dash + "\r\n";
  body += "Content-Disposition: form-data; name=\"notes\"; filename=\"notes.txt\"\r\n";
  body += "Content-Type: text/plain\r\n\r\n";
  body += "some notes\r\n\r\n";
  body += dash + "\r\n";
  body += "Content-Disposition: form-data; name=\"blob\"; filename=\"data.bin\"\r\n";
  body += "Content-Type: application/octet-stream\r\n\r\n";
  body += tricky_binary();
  body += "\r\n" + dash + "--\r\n";
  return body;
}

std::string browser_log() {
  return "begin name=title filename=- type=text/plain\n"
         "data=Hello world\nend\n"
         "begin name=comment filename=- type=text/plain\n"
         "data=line one\\r\\nline two\nend\n"
         "begin name=notes filename=[notes.txt] type=text/plain\n"
         "data=some notes\\r\\n\nend\n"
         "begin name=blob filename=[data.bin] type=application/octet-stream\n"
         "data=" +
         escape(tricky_binary()) +
         "\nend\n"
         "finish\n";
}

TEST(MultipartTest, ParsesBrowserBodyInOneChunk) {
  Outcome outcome = parse_whole(kBoundary, browser_body());
  EXPECT_EQ(outcome.status, Status::finished);
  EXPECT_EQ(outcome.error, MultipartError::none);
  EXPECT_EQ(outcome.log, browser_log());
}

TEST(MultipartTest, ParsesBrowserBodySplitAtEveryPosition) {
  std::string body = browser_body();
  std::string expected = browser_log();
  for (std::size_t cut = 0; cut <= body.size(); ++cut) {
    Outcome outcome = parse_in_chunks(kBoundary, body, {cut});
    ASSERT_EQ(outcome.status, Status::finished) << "cut at " << cut;
    ASSERT_EQ(outcome.log, expected) << "cut at " << cut;
  }
}

TEST(MultipartTest, ParsesBrowserBodySplitTwiceNearEveryPosition) {
  // Three chunks with the middle one short enough to fall inside a delimiter.
  std::string body = browser_body();
  std::string expected = browser_log();
  const std::size_t span = kBoundary.size() + 8;
  for (std::size_t first = 0; first <= body.size(); ++first) {
    for (std::size_t second = first + 1; second <= std::min(body.size(), first + span); ++second) {
      Outcome outcome = parse_in_chunks(kBoundary, body, {first, second});
      ASSERT_EQ(outcome.status, Status::finished) << first << "," << second;
      ASSERT_EQ(outcome.log, expected) << first << "," << second;
    }
  }
}

TEST(MultipartTest, ParsesBrowserBodyByteByByte) {
  Outcome outcome = parse_bytewise(kBoundary, browser_body());
  EXPECT_EQ(outcome.status, Status::finished);
  EXPECT_EQ(outcome.log, browser_log());
}

TEST(MultipartTest, ParsesBrowserBodyInFixedChunkSizes) {
  std::string body = browser_body();
  for (std::size_t size = 1; size <= 64; ++size) {
    std::vector<std::size_t> cuts;
    for (std::size_t at = size; at < body.size(); at += size) cuts.push_back(at);
    Outcome outcome = parse_in_chunks(kBoundary, body, cuts);
    ASSERT_EQ(outcome.log, browser_log()) << "chunk size " << size;
  }
}

TEST(MultipartTest, StreamsDataWithBoundedLookbehind) {
  // Part data must leave the parser as it arrives: at most a delimiter's worth of bytes
  // may be held back at a chunk's end.
  const std::string boundary = "xyz";
  const std::size_t delimiter_size = 4 + boundary.size();
  Recorder recorder;
  MultipartParser parser(boundary, recorder);
  std::string head = "--xyz\r\nContent-Disposition: form-data; name=f; filename=big\r\n\r\n";
  ASSERT_EQ(parser.feed(head), Status::need_more);
  std::size_t fed = 0;
  std::string chunk;
  for (int i = 0; i < 4096; ++i) chunk += "\r\n--xy"[i % 6];
  for (int round = 0; round < 256; ++round) {  // 1 MiB
    ASSERT_EQ(parser.feed(chunk), Status::need_more);
    fed += chunk.size();
    EXPECT_GE(recorder.data_bytes + delimiter_size, fed);
  }
  ASSERT_EQ(parser.feed("\r\n--xyz--"), Status::finished);
  EXPECT_EQ(recorder.data_bytes, fed);
}

TEST(MultipartTest, RandomBodiesParseTheSameHoweverSplit) {
  // Bodies stitched from boundary fragments, header lines and noise, with small limits so
  // that every error path is reached; the outcome must not depend on the chunking.
  const std::vector<std::string> pieces = {
      "\r\n",
      "--b",
      "-",
      "b",
      "x",
      " ",
      "\r",
      "\n",
      "\r\n--b\r\n",
      "\r\n--b--",
      "\r\n\r\n",
      std::string(1, '\0'),
      "--b\r\n",
      "Content-Disposition: form-data; name=a\r\n",
      "Content-Type: t\r\n",
      "Content-Disposition: attachment\r\n",
      "Content-Disposition: form-data\r\n",
      "\r\n--b\r\nContent-Disposition: form-data; name=p\r\n\r\n",
      "Content-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n\r\n"};
  MultipartLimits limits;
  limits.max_header_bytes = 64;
  limits.max_parts = 4;
  std::mt19937 rng(20240601);
  int finished = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string body = round % 2 ? "--b\r\n" : "";
    int count = std::uniform_int_distribution<int>(1, 30)(rng);
    for (int i = 0; i < count; ++i) {
      body += pieces[std::uniform_int_distribution<std::size_t>(0, pieces.size() - 1)(rng)];
    }
    Outcome whole = parse_whole("b", body, limits);
    std::vector<std::size_t> cuts;
    for (std::size_t at = 0; at < body.size();) {
      at += std::uniform_int_distribution<std::size_t>(1, 5)(rng);
      if (at < body.size()) cuts.push_back(at);
    }
    Outcome split = parse_in_chunks("b", body, cuts, limits);
    ASSERT_EQ(whole.log, split.log) << escape(body);
    ASSERT_EQ(whole.status, split.status) << escape(body);
    ASSERT_EQ(whole.error, split.error) << escape(body);
    finished += whole.status == Status::finished;
  }
  EXPECT_GT(finished, 0);
}

TEST(MultipartTest, BoundaryLinePaddingIsAllowed) {
  std::string body =
      "--b \t \r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b\t\r\n"
      "Content-Disposition: form-data; name=b\r\n\r\n2\r\n--b--  \r\n";
  Outcome outcome = parse_bytewise("b", body);
  EXPECT_EQ(outcome.status, Status::finished);
  EXPECT_EQ(outcome.log,
            "begin name=a filename=- type=text/plain\ndata=1\nend\n"
            "begin name=b filename=- type=text/plain\ndata=2\nend\nfinish\n");
}

TEST(MultipartTest, OverlongPaddingIsData) {
  std::string padding(300, ' ');
  std::string body =
      "--b\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--b" + padding + "\r\ny\r\n--b--";
  Outcome outcome = parse_whole("b", body);
  EXPECT_EQ(outcome.status, Status::finished);
  EXPECT_EQ(outcome.log, "begin name=a filename=- type=text/plain\ndata=x\\r\\n--b" + padding +
                             "\\r\\ny\nend\nfinish\n");
}

TEST(MultipartTest, PreambleAndEpilogueAreIgnored) {
  std::string body =
      "This is the preamble.\r\n--bX\r\n--b-\r\n--b\r\n"
      "Content-Disposition: form-data; name=a\r\n\r\nv\r\n--b--\r\nepilogue\r\n--b\r\njunk";
  for (const Outcome& outcome : {parse_whole("b", body), parse_bytewise("b", body)}) {
    EXPECT_EQ(outcome.status, Status::finished);
    EXPECT_EQ(outcome.log, "begin name=a filename=- type=text/plain\ndata=v\nend\nfinish\n");
  }
}

TEST(MultipartTest, PreambleLinesThatLookLikeBoundariesAreSkipped) {
  // "--b" at the start followed by junk is preamble; so is "\r\n--b-x".
  std::string body =
      "--bb\r\n--b-x\r\n--b\r\nContent-Disposition: form-data; name=a\r\n\r\n\r\n--b--";
  Outcome outcome = parse_bytewise("b", body);
  EXPECT_EQ(outcome.status, Status::finished);
  EXPECT_EQ(outcome.log, "begin name=a filename=- type=text/plain\ndata=\nend\nfinish\n");
}

TEST(MultipartTest, EmptyFormHasNoParts) {
  Outcome outcome = parse_whole("b", "--b--\r\n");
  EXPECT_EQ(outcome.status, Status::finished);
  EXPECT_EQ(outcome.log, "finish\n");
}

TEST(MultipartTest, EmptyPartBodies) {
  std::string body =
      "--b\r\nContent-Disposition: form-data; name=a\r\n\r\n\r\n--b\r\n"
      "Content-Disposition: form-data; name=f; filename=\"\"\r\n"
      "Content-Type: application/octet-stream\r\n\r\n\r\n--b--";
  Outcome outcome = parse_bytewise("b", body);
  EXPECT_EQ(outcome.status, Status::finished);
  EXPECT_EQ(outcome.log,
            "begin name=a filename=- type=text/plain\ndata=\nend\n"
            "begin name=f filename=[] type=application/octet-stream\ndata=\nend\nfinish\n");
}

TEST(MultipartTest, FeedAfterFinishIsIgnored) {
  Recorder recorder;
  MultipartParser parser("b", recorder);
  EXPECT_EQ(parser.feed("--b--"), Status::finished);
  EXPECT_EQ(parser.feed("\r\n--b\r\nContent-Disposition: form-data; name=a\r\n\r\nx"),
            Status::finished);
  EXPECT_EQ(parser.finish(), Status::finished);
  EXPECT_EQ(parser.status(), Status::finished);
  EXPECT_EQ(recorder.log, "finish\n");
}

TEST(MultipartTest, EmptyFeedChangesNothing) {
  Recorder recorder;
  MultipartParser parser("b", recorder);
  EXPECT_EQ(parser.feed(""), Status::need_more);
  EXPECT_EQ(parser.status(), Status::need_more);
  EXPECT_EQ(parser.error(), MultipartError::none);
  EXPECT_TRUE(parser.error_message().empty());
}

TEST(MultipartTest, ReportsMissingInitialBoundary) {
  for (const std::string& body : std::vector<std::string>{
           "", "hello", "--c\r\nContent-Disposition: form-data; name=a\r\n\r\nx", "-b\r\n",
           "--B\r\n", "\n--b\r\n"}) {
    Outcome outcome = parse_whole("b", body);
    EXPECT_EQ(outcome.status, Status::failed) << escape(body);
    EXPECT_EQ(outcome.error, MultipartError::no_initial_boundary) << escape(body);
    EXPECT_EQ(outcome.log, "") << escape(body);
  }
}

TEST(MultipartTest, EveryTruncationIsIncomplete) {
  std::string body = browser_body();
  // Everything up to the closing "--" is needed; what follows it is epilogue.
  std::size_t needed = body.size() - 2;
  for (std::size_t n = 0; n < body.size(); ++n) {
    Outcome outcome = parse_whole(kBoundary, std::string_view(body).substr(0, n));
    if (n >= needed) {
      EXPECT_EQ(outcome.status, Status::finished) << n;
      continue;
    }
    ASSERT_EQ(outcome.status, Status::failed) << n;
    EXPECT_TRUE(outcome.error == MultipartError::incomplete ||
                outcome.error == MultipartError::no_initial_boundary)
        << n;
    EXPECT_EQ(outcome.log.find("finish"), std::string::npos) << n;
  }
}

TEST(MultipartTest, ErrorMessagesAreSet) {
  Recorder recorder;
  MultipartParser parser("b", recorder);
  parser.feed("--b\r\nContent-Disposition: form-data; name=a\r\n\r\nx");
  EXPECT_EQ(parser.finish(), Status::failed);
  EXPECT_EQ(parser.error(), MultipartError::incomplete);
  EXPECT_FALSE(parser.error_message().empty());
}

MultipartError error_for_part_headers(std::string_view headers) {
  std::string body = "--b\r\n" + std::string(headers) + "\r\nvalue\r\n--b--\r\n";
  Outcome whole = parse_whole("b", body);
  Outcome bytewise = parse_bytewise("b", body);
  EXPECT_EQ(whole.error, bytewise.error) << escape(headers);
  EXPECT_EQ(whole.log, bytewise.log) << escape(headers);
  if (whole.error != MultipartError::none) {
    EXPECT_EQ(whole.log.find("begin"), std::string::npos);
  }
  return whole.error;
}

TEST(MultipartTest, AcceptsHeaderVariants) {
  for (std::string_view ok : {
           "Content-Disposition: form-data; name=\"a\"\r\n",
           "content-disposition: FORM-DATA; NAME=\"a\"\r\n",
           "Content-Disposition:form-data;name=a\r\n",
           "Content-Disposition: form-data ; name = \"a\" ; \r\n",
           "Content-Disposition: form-data; name=\"\"\r\n",
           "X-Custom: 1\r\nContent-Disposition: form-data; name=a\r\nContent-Type: text/html\r\n",
           "Content-Disposition: form-data; name=a; size=5; creation-date=\"x\"\r\n",
       }) {
    EXPECT_EQ(error_for_part_headers(ok), MultipartError::none) << escape(ok);
  }
}

TEST(MultipartTest, RejectsMalformedHeaderLines) {
  using namespace std::string_literals;
  for (const std::string& bad : {
           "Content-Disposition form-data; name=a\r\n"s,
           "Content-Disposition: form-data; name=a\r\nno colon\r\n"s,
           "Bad Name: x\r\nContent-Disposition: form-data; name=a\r\n"s,
           ": x\r\nContent-Disposition: form-data; name=a\r\n"s,
           "Content-Disposition: form-data;\r\n name=a\r\n"s,
           "Content-Disposition: form-data; name=a\r\n\tX-Folded: y\r\n"s,
           "Content-Disposition: form-data; name=a\rX\r\n"s,
           "Content-Disposition: form-data; name=a\nX: y\r\n"s,
           "X: a\0b\r\nContent-Disposition: form-data; name=a\r\n"s,
       }) {
    EXPECT_EQ(error_for_part_headers(bad), MultipartError::malformed_headers) << escape(bad);
  }
}

TEST(MultipartTest, RejectsMalformedDispositionParameters) {
  for (std::string_view bad : {
           "Content-Disposition: form-data; name=\"a\r\n",
           "Content-Disposition: form-data; name=\"a\"b\r\n",
           "Content-Disposition: form-data; name=\"a\" x\r\n",
           "Content-Disposition: form-data; name=a; name=b\r\n",
           "Content-Disposition: form-data; name=a; NAME=b\r\n",
           "Content-Disposition: form-data; name=a; filename=x; filename=y\r\n",
           "Content-Disposition: form-data; =a\r\n",
           "Content-Disposition: form-data; name\r\n",
           "Content-Disposition: form-data; name=a; ;\r\n",
           "Content-Disposition: form-data x; name=a\r\n",
       }) {
    MultipartError error = error_for_part_headers(bad);
    EXPECT_TRUE(error == MultipartError::malformed_headers ||
                error == MultipartError::not_form_data)
        << escape(bad);
  }
}

TEST(MultipartTest, RequiresExactlyOneFormDataDisposition) {
  EXPECT_EQ(error_for_part_headers(""), MultipartError::missing_content_disposition);
  EXPECT_EQ(error_for_part_headers("Content-Type: text/plain\r\n"),
            MultipartError::missing_content_disposition);
  EXPECT_EQ(error_for_part_headers("Content-Disposition: form-data; name=a\r\n"
                                   "Content-Disposition: form-data; name=b\r\n"),
            MultipartError::missing_content_disposition);
  EXPECT_EQ(error_for_part_headers("Content-Disposition: attachment; name=a\r\n"),
            MultipartError::not_form_data);
  EXPECT_EQ(error_for_part_headers("Content-Disposition: ; name=a\r\n"),
            MultipartError::not_form_data);
  EXPECT_EQ(error_for_part_headers("Content-Disposition: form-data\r\n"),
            MultipartError::missing_name);
  EXPECT_EQ(error_for_part_headers("Content-Disposition: form-data; filename=x\r\n"),
            MultipartError::missing_name);
}

TEST(MultipartTest, BareLineFeedsNeverEndTheHeaders) {
  Outcome outcome = parse_whole("b", "--b\r\nContent-Disposition: form-data; name=a\n\nv\r\n--b--");
  EXPECT_EQ(outcome.status, Status::failed);
  EXPECT_EQ(outcome.error, MultipartError::incomplete);
}

TEST(MultipartTest, HeaderLimitIsExact) {
  std::string disposition = "Content-Disposition: form-data; name=a\r\n";
  MultipartLimits limits;
  for (std::size_t extra : {0, 1}) {
    // The header block counted with its blank line.
    std::string headers = disposition + "X: " + std::string(100, 'v') + "\r\n\r\n";
    limits.max_header_bytes = headers.size() - extra;
    std::string body = "--b\r\n" + headers + "v\r\n--b--";
    for (const Outcome& outcome :
         {parse_whole("b", body, limits), parse_in_chunks("b", body, {10, 60, 120}, limits)}) {
      if (extra == 0) {
        EXPECT_EQ(outcome.status, Status::finished);
      } else {
        EXPECT_EQ(outcome.error, MultipartError::headers_too_large);
      }
    }
  }
}

TEST(MultipartTest, DefaultHeaderLimitIs16KiB) {
  std::string big =
      "Content-Disposition: form-data; name=a\r\nX: " + std::string(16 * 1024, 'v') + "\r\n\r\n";
  Recorder recorder;
  MultipartParser parser("b", recorder);
  parser.feed("--b\r\n");
  // Endless header bytes are refused once the limit is reached, not buffered.
  Status status = Status::need_more;
  for (int i = 0; i < 100 && status == Status::need_more; ++i) {
    status = parser.feed(std::string(1024, 'h'));
  }
  EXPECT_EQ(status, Status::failed);
  EXPECT_EQ(parser.error(), MultipartError::headers_too_large);
  EXPECT_EQ(parse_whole("b", "--b\r\n" + big + "\r\n--b--").error,
            MultipartError::headers_too_large);
}

TEST(MultipartTest, PartLimitIsExact) {
  MultipartLimits limits;
  limits.max_parts = 3;
  auto body_with = [](int parts) {
    std::string body;
    for (int i = 0; i < parts; ++i) {
      body += "--b\r\nContent-Disposition: form-data; name=p" + std::to_string(i) + "\r\n\r\nx\r\n";
    }
    return body + "--b--";
  };
  EXPECT_EQ(parse_whole("b", body_with(3), limits).status, Status::finished);
  Outcome outcome = parse_whole("b", body_with(4), limits);
  EXPECT_EQ(outcome.status, Status::failed);
  EXPECT_EQ(outcome.error, MultipartError::too_many_parts);
  EXPECT_EQ(parse_whole("b", body_with(1001)).error, MultipartError::too_many_parts);
  EXPECT_EQ(parse_whole("b", body_with(1000)).status, Status::finished);
}

TEST(MultipartTest, FailureIsFinalAndSilent) {
  Recorder recorder;
  MultipartParser parser("b", recorder);
  EXPECT_EQ(parser.feed("--b\r\nContent-Disposition: attachment\r\n\r\n"), Status::failed);
  std::string log = recorder.log;
  EXPECT_EQ(parser.feed("\r\n--b\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--b--"),
            Status::failed);
  EXPECT_EQ(parser.finish(), Status::failed);
  EXPECT_EQ(parser.error(), MultipartError::not_form_data);
  EXPECT_EQ(recorder.log, log);
}

TEST(MultipartTest, DelegateExceptionAbortsTheParser) {
  Recorder recorder;
  recorder.on_begin_hook = [] { throw std::runtime_error("file too big"); };
  MultipartParser parser("b", recorder);
  EXPECT_THROW(parser.feed("--b\r\nContent-Disposition: form-data; name=a\r\n\r\nxyz"),
               std::runtime_error);
  EXPECT_EQ(parser.status(), Status::failed);
  EXPECT_EQ(parser.error(), MultipartError::aborted);
  EXPECT_EQ(parser.feed("\r\n--b--"), Status::failed);
}

TEST(MultipartTest, DecodesFilenameVariants) {
  struct Case {
    std::string_view disposition;
    std::string_view expected;
  };
  for (const Case& c : {
           Case{"name=f; filename=\"report.pdf\"", "[report.pdf]"},
           Case{"name=f; filename=\"a\\b.txt\"", "[a\\b.txt]"},
           Case{"name=f; filename=\"C:\\\\dir\\\\a.txt\"", "[C:\\dir\\a.txt]"},
           Case{"name=f; filename=\"say \\\"hi\\\".txt\"", "[say \"hi\".txt]"},
           Case{"name=f; filename=\"%22quoted%22.txt\"", "[%22quoted%22.txt]"},
           Case{"name=f; filename=\"caf\xc3\xa9.txt\"", "[caf\xc3\xa9.txt]"},
           Case{"name=f; filename=\"../../etc/passwd\"", "[../../etc/passwd]"},
           Case{"name=f; filename=plain name.txt", "[plain name.txt]"},
           Case{"name=f; filename=\"a;b.txt\"", "[a;b.txt]"},
           Case{"name=f; filename=\"x.txt\"; filename*=UTF-8''%E2%82%AC%20rates.txt",
                "[\xe2\x82\xac rates.txt]"},
           Case{"name=f; filename*=utf-8'en'%C3%A9.txt", "[\xc3\xa9.txt]"},
           Case{"name=f; filename=\"x.txt\"; filename*=ISO-8859-1''%E9.txt", "[x.txt]"},
           Case{"name=f; filename=\"x.txt\"; filename*=UTF-8''%zz", "[x.txt]"},
           Case{"name=f; filename=\"x.txt\"; filename*=garbage", "[x.txt]"},
           Case{"name=f", "-"},
       }) {
    std::string body = "--b\r\nContent-Disposition: form-data; " + std::string(c.disposition) +
                       "\r\n\r\nv\r\n--b--";
    Outcome outcome = parse_whole("b", body);
    EXPECT_EQ(outcome.log, "begin name=f filename=" + std::string(c.expected) +
                               " type=text/plain\ndata=v\nend\nfinish\n")
        << c.disposition;
  }
}

TEST(MultipartTest, ExposesRawHeadersInOrder) {
  struct Capture : MultipartDelegate {
    std::vector<HeaderField> fields;
    void on_part_begin(const MultipartPartHeaders& part) override {
      fields.assign(part.headers.begin(), part.headers.end());
    }
    void on_part_data(std::string_view) override {}
    void on_part_end() override {}
    void on_finish() override {}
  } capture;
  MultipartParser parser("b", capture);
  parser.feed(
      "--b\r\nX-First:  one \r\ncontent-disposition: form-data; name=a\r\n"
      "Content-Type: image/png\r\n\r\n\r\n--b--");
  EXPECT_EQ(parser.finish(), Status::finished);
  EXPECT_EQ(capture.fields, (std::vector<HeaderField>{{"X-First", "one"},
                                                      {"content-disposition", "form-data; name=a"},
                                                      {"Content-Type", "image/png"}}));
}

TEST(MultipartTest, ConstructorRejectsInvalidBoundary) {
  Recorder recorder;
  for (const std::string& bad : std::vector<std::string>{"", "a b ", "a\r\nb", "a\"b",
                                                         std::string(71, 'a'), "a;b", "\xc3\xa9"}) {
    EXPECT_THROW({ MultipartParser parser(bad, recorder); }, std::invalid_argument) << escape(bad);
  }
  EXPECT_NO_THROW({ MultipartParser parser(std::string(70, 'a'), recorder); });
  EXPECT_NO_THROW({ MultipartParser parser("'()+_,-./:=? x", recorder); });
}

TEST(MultipartBoundaryTest, ParsesBoundaryParameter) {
  EXPECT_EQ(parse_boundary("multipart/form-data; boundary=abc"), "abc");
  EXPECT_EQ(parse_boundary("multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW"),
            "----WebKitFormBoundary7MA4YWxkTrZu0gW");
  EXPECT_EQ(parse_boundary("multipart/form-data;boundary=abc"), "abc");
  EXPECT_EQ(parse_boundary("Multipart/Form-Data; charset=utf-8; BOUNDARY=xyz"), "xyz");
  EXPECT_EQ(parse_boundary("multipart/form-data; boundary=\"a b:c\""), "a b:c");
  EXPECT_EQ(parse_boundary("multipart/form-data ; boundary = abc ;"), "abc");
  EXPECT_EQ(parse_boundary("multipart/form-data; boundary=\"x:y\"; charset=\"utf;8\""), "x:y");
  EXPECT_EQ(parse_boundary("multipart/form-data; boundary=" + std::string(70, 'z')),
            std::string(70, 'z'));
}

TEST(MultipartBoundaryTest, RejectsBadContentTypes) {
  for (const std::string& bad : std::vector<std::string>{
           "",
           "multipart/form-data",
           "multipart/form-data;",
           "multipart/form-data; boundary=",
           "multipart/form-data; boundary=\"\"",
           "multipart/form-data; boundary=\"abc",
           "multipart/form-data; boundary=a; boundary=b",
           "multipart/form-data; boundary=\"ab \"",
           "multipart/form-data; boundary=\"a\\\"b\"",
           "multipart/form-data; boundary=\"a\\\\b\"",
           "multipart/form-data; boundary=" + std::string(71, 'z'),
           "multipart/form-data; boundary=\xc3\xa9",
           "multipart/form-data; charset",
           "multipart/mixed; boundary=abc",
           "multipart/form-datax; boundary=abc",
           "text/plain; boundary=abc",
           "application/x-www-form-urlencoded",
           "boundary=abc",
       }) {
    EXPECT_FALSE(parse_boundary(bad)) << bad;
  }
}

TEST(MultipartFormTest, SplitsFieldsAndFilesLikeTornado) {
  MultipartForm form = parse_multipart(browser_body(), kBoundary);
  EXPECT_EQ(form.fields.size(), 2u);
  EXPECT_EQ(form.fields.get_first("title"), "Hello world");
  EXPECT_EQ(form.fields.get_first("comment"), "line one\r\nline two");
  ASSERT_EQ(form.files.size(), 2u);
  EXPECT_EQ(form.files[0].name, "notes");
  EXPECT_EQ(form.files[0].filename, "notes.txt");
  EXPECT_EQ(form.files[0].content_type, "text/plain");
  EXPECT_EQ(form.files[0].body, "some notes\r\n");
  EXPECT_EQ(form.files[1].name, "blob");
  EXPECT_EQ(form.files[1].filename, "data.bin");
  EXPECT_EQ(form.files[1].content_type, "application/octet-stream");
  EXPECT_EQ(form.files[1].body, tricky_binary());
}

TEST(MultipartFormTest, EmptyFilenameIsAField) {
  MultipartForm form = parse_multipart(
      "--b\r\nContent-Disposition: form-data; name=upload; filename=\"\"\r\n"
      "Content-Type: application/octet-stream\r\n\r\n\r\n"
      "--b\r\nContent-Disposition: form-data; name=tag\r\n\r\none\r\n"
      "--b\r\nContent-Disposition: form-data; name=tag\r\n\r\ntwo\r\n--b--\r\n",
      "b");
  EXPECT_TRUE(form.files.empty());
  EXPECT_EQ(form.fields.get_first("upload"), "");
  EXPECT_EQ(form.fields.get_all("tag"), (std::vector<std::string_view>{"one", "two"}));
}

TEST(MultipartFormTest, ErrorsThrowFormError) {
  EXPECT_THROW(parse_multipart("garbage", "b"), FormError);
  EXPECT_THROW(parse_multipart("--b\r\nContent-Disposition: form-data; name=a\r\n\r\nx", "b"),
               FormError);
  EXPECT_THROW(parse_multipart("--b\r\n\r\nx\r\n--b--", "b"), FormError);
  EXPECT_THROW(parse_multipart("--b--", ""), FormError);
  MultipartLimits limits;
  limits.max_parts = 1;
  EXPECT_THROW(parse_multipart("--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n"
                               "--b\r\nContent-Disposition: form-data; name=a\r\n\r\n2\r\n--b--",
                               "b", limits),
               FormError);
  try {
    parse_multipart("--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--", "b");
    FAIL() << "expected FormError";
  } catch (const FormError& e) {
    EXPECT_NE(std::string(e.what()).find("name"), std::string::npos);
  }
}

TEST(MultipartFormTest, HostileBodiesNeverCrash) {
  std::string junk;
  for (int i = 0; i < 20000; ++i) junk += "\r\n--b-x\0\xff:;\"="[(i * 7) % 13];
  for (const std::string& body : std::vector<std::string>{
           junk, "--b\r\n" + junk, "--b\r\nContent-Disposition: form-data; name=a\r\n\r\n" + junk,
           std::string(50000, '\r'), std::string(50000, '-'),
           "--b\r\n" + std::string(50000, '\n')}) {
    EXPECT_THROW(parse_multipart(body, "b"), FormError);
    Outcome outcome = parse_bytewise("b", body);
    EXPECT_EQ(outcome.status, Status::failed);
  }
}

}  // namespace
}  // namespace tronada
