#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "http1_parser_harness.h"
#include "tronada/http/http1_parser.h"

namespace tronada {
namespace {

using namespace http1_test;

// ---------------------------------------------------------------------------------------
// Valid requests

TEST(HTTP1ParserTest, SimpleGet) {
  Outcome o = parse(
      "GET /index.html?q=1 HTTP/1.1\r\n"
      "Host: example.com\r\n"
      "User-Agent: curl/8.0\r\n"
      "Accept: */*\r\n"
      "\r\n");
  ASSERT_EQ(o.status, FeedStatus::kNeedMore) << o.describe();
  const SeenRequest& r = only_request(o);
  EXPECT_EQ(r.start.method, "GET");
  EXPECT_EQ(r.start.target, "/index.html?q=1");
  EXPECT_EQ(r.start.version_major, 1);
  EXPECT_EQ(r.start.version_minor, 1);
  EXPECT_EQ(r.headers.size(), 3u);
  EXPECT_EQ(r.headers.get("host"), "example.com");
  EXPECT_EQ(r.headers.get("USER-AGENT"), "curl/8.0");
  EXPECT_TRUE(r.info.keep_alive);
  EXPECT_FALSE(r.info.chunked);
  EXPECT_FALSE(r.info.content_length.has_value());
  EXPECT_FALSE(r.info.expect_continue);
  EXPECT_FALSE(r.info.upgrade);
  EXPECT_FALSE(r.info.has_body());
  EXPECT_TRUE(r.body.empty());
  EXPECT_TRUE(r.complete);
}

TEST(HTTP1ParserTest, FeedStopsRightAfterEachRequest) {
  Recorder recorder;
  HTTP1RequestParser parser(recorder);
  recorder.parser = &parser;
  std::string one = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n";
  std::string input = one + "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
  FeedResult r = parser.feed(input);
  EXPECT_EQ(r.status, FeedStatus::kPaused);
  EXPECT_EQ(r.consumed, one.size());
  EXPECT_EQ(recorder.requests.size(), 1u);
  // Still paused: nothing happens until resume().
  EXPECT_EQ(parser.feed(input.data() + one.size(), input.size() - one.size()).consumed, 0u);
  EXPECT_EQ(recorder.requests.size(), 1u);
  parser.resume();
  r = parser.feed(input.data() + one.size(), input.size() - one.size());
  EXPECT_EQ(r.status, FeedStatus::kPaused);
  EXPECT_EQ(r.consumed, input.size() - one.size());
  ASSERT_EQ(recorder.requests.size(), 2u);
  EXPECT_EQ(recorder.requests[1].start.target, "/b");
  parser.resume();
  EXPECT_EQ(parser.feed("", 0).status, FeedStatus::kNeedMore);
}

TEST(HTTP1ParserTest, HeaderValuesAreTrimmedAndNamesKeepTheirSpelling) {
  Outcome o = parse(
      "GET / HTTP/1.1\r\n"
      "host:example.com\r\n"
      "X-Padded: \t  some value \t \r\n"
      "x-empty:\r\n"
      "X-Empty-Spaces:    \r\n"
      "X-Dup: 1\r\n"
      "x-dup: 2\r\n"
      "X-Obs-Text: caf\xc3\xa9\r\n"
      "\r\n");
  const SeenRequest& r = only_request(o);
  std::vector<std::string> fields;
  for (const HeaderField& f : r.headers) fields.push_back(f.name + "=[" + f.value + "]");
  EXPECT_EQ(fields, (std::vector<std::string>{"host=[example.com]", "X-Padded=[some value]",
                                              "x-empty=[]", "X-Empty-Spaces=[]", "X-Dup=[1]",
                                              "x-dup=[2]", "X-Obs-Text=[caf\xc3\xa9]"}));
  EXPECT_EQ(r.headers.get_joined("X-DUP"), "1, 2");
}

TEST(HTTP1ParserTest, Http10WithoutKeepAlive) {
  Outcome o = parse("GET / HTTP/1.0\r\n\r\n");
  const SeenRequest& r = only_request(o);
  EXPECT_EQ(r.start.version_minor, 0);
  EXPECT_FALSE(r.info.keep_alive);
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(o.status, FeedStatus::kNeedMore);
}

TEST(HTTP1ParserTest, Http10WithKeepAlive) {
  Outcome o = parse(
      "GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
      "GET /2 HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: h\r\n\r\n");
  ASSERT_EQ(o.requests.size(), 2u) << o.describe();
  EXPECT_TRUE(o.requests[0].info.keep_alive);
  EXPECT_TRUE(o.requests[1].info.keep_alive);
}

TEST(HTTP1ParserTest, Http11ConnectionClose) {
  Outcome o = parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  EXPECT_FALSE(only_request(o).info.keep_alive);
}

TEST(HTTP1ParserTest, RefusesBytesAfterARequestThatClosesTheConnection) {
  for (std::string first :
       {"GET / HTTP/1.0\r\n\r\n", "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"}) {
    Outcome o = parse(first + "GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_EQ(o.requests.size(), 1u);
    EXPECT_EQ(o.status, FeedStatus::kError);
    EXPECT_EQ(o.error_status, 400);
  }
}

TEST(HTTP1ParserTest, FiftyPipelinedRequestsInOneBuffer) {
  std::string input;
  for (int i = 0; i < 50; ++i) {
    std::string n = std::to_string(i);
    if (i % 3 == 0) {
      input += "POST /r" + n +
               " HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(n.size()) + "\r\n\r\n" +
               n;
    } else if (i % 3 == 1) {
      input += "PUT /r" + n + " HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" +
               std::to_string(n.size()) + "\r\n" + n + "\r\n0\r\n\r\n";
    } else {
      input += "GET /r" + n + " HTTP/1.1\r\nHost: h\r\n\r\n";
    }
  }
  Outcome o = parse(input);
  ASSERT_EQ(o.status, FeedStatus::kNeedMore) << o.describe();
  ASSERT_EQ(o.requests.size(), 50u);
  for (int i = 0; i < 50; ++i) {
    const SeenRequest& r = o.requests[i];
    EXPECT_EQ(r.start.target, "/r" + std::to_string(i));
    EXPECT_EQ(r.body, i % 3 == 2 ? "" : std::to_string(i));
    EXPECT_TRUE(r.complete);
  }
}

TEST(HTTP1ParserTest, ContentLengthBody) {
  std::string body = bytes("name=value&binary=\r\r\n\n\0\xff end\r");
  std::string input =
      "POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n" + body;
  Outcome o = parse(input);
  const SeenRequest& r = only_request(o);
  EXPECT_EQ(r.info.content_length, body.size());
  EXPECT_FALSE(r.info.chunked);
  EXPECT_TRUE(r.info.has_body());
  EXPECT_EQ(r.body, body);  // CR and LF inside the body are data
  EXPECT_TRUE(r.complete);
}

TEST(HTTP1ParserTest, ContentLengthZero) {
  Outcome o = parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
  const SeenRequest& r = only_request(o);
  EXPECT_EQ(r.info.content_length, 0u);
  EXPECT_FALSE(r.info.has_body());
  EXPECT_TRUE(r.complete);
}

TEST(HTTP1ParserTest, ContentLengthWithOws) {
  Outcome o = parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:   3  \r\n\r\nabc");
  EXPECT_EQ(only_request(o).body, "abc");
}

TEST(HTTP1ParserTest, ChunkedBodyWithExtensionsAndTrailers) {
  // llhttp 8.1 takes one extension per chunk when it has a value (see the report).
  Outcome o =
      parse(bytes("POST /upload HTTP/1.1\r\n"
                  "Host: h\r\n"
                  "Transfer-Encoding: chunked\r\n"
                  "Trailer: X-Checksum\r\n"
                  "\r\n"
                  "5;name=value\r\n"
                  "hello\r\n"
                  "6;flag\r\n"
                  " wor\r\n\r\n"
                  "3;quoted=\"a b\"\r\n"
                  "\0\r!\r\n"
                  "A\r\n"
                  "0123456789\r\n"
                  "0;last\r\n"
                  "X-Checksum:  abc \r\n"
                  "X-Other: 2\r\n"
                  "\r\n"));
  const SeenRequest& r = only_request(o);
  EXPECT_TRUE(r.info.chunked);
  EXPECT_FALSE(r.info.content_length.has_value());
  EXPECT_TRUE(r.info.has_body());
  EXPECT_EQ(r.body, std::string("hello wor\r\n\0\r!0123456789", 24));
  std::vector<std::string> trailers;
  for (const HeaderField& f : r.trailers) trailers.push_back(f.name + "=" + f.value);
  EXPECT_EQ(trailers, (std::vector<std::string>{"X-Checksum=abc", "X-Other=2"}));
  EXPECT_TRUE(r.complete);
}

TEST(HTTP1ParserTest, ChunkedUppercaseAndHexSizes) {
  Outcome o = parse(
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: CHUNKED\r\n\r\n"
      "1a\r\nabcdefghijklmnopqrstuvwxyz\r\n00000\r\n\r\n");
  EXPECT_EQ(only_request(o).body, "abcdefghijklmnopqrstuvwxyz");
}

TEST(HTTP1ParserTest, ChunkedWithEmptyListElements) {
  // RFC 9110 section 5.6.1: recipients ignore empty list elements.
  Outcome o = parse(
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: , chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n");
  EXPECT_EQ(only_request(o).body, "x");
}

TEST(HTTP1ParserTest, ExpectContinue) {
  Outcome o = parse(
      "PUT /big HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-Continue\r\n\r\nbody");
  const SeenRequest& r = only_request(o);
  EXPECT_TRUE(r.info.expect_continue);
  EXPECT_EQ(r.body, "body");
}

TEST(HTTP1ParserTest, ExpectContinueIgnoredOnHttp10) {
  Outcome o = parse("PUT / HTTP/1.0\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\nx");
  EXPECT_FALSE(only_request(o).info.expect_continue);
}

TEST(HTTP1ParserTest, OtherExpectationsAreNotContinue) {
  Outcome o = parse("GET / HTTP/1.1\r\nHost: h\r\nExpect: something\r\n\r\n");
  EXPECT_FALSE(only_request(o).info.expect_continue);
}

TEST(HTTP1ParserTest, AbsoluteFormTarget) {
  Outcome o = parse("GET http://example.com:8080/a/b?c=d HTTP/1.1\r\nHost: example.com\r\n\r\n");
  EXPECT_EQ(only_request(o).start.target, "http://example.com:8080/a/b?c=d");
}

TEST(HTTP1ParserTest, OptionsAsterisk) {
  Outcome o = parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
  const SeenRequest& r = only_request(o);
  EXPECT_EQ(r.start.method, "OPTIONS");
  EXPECT_EQ(r.start.target, "*");
}

TEST(HTTP1ParserTest, Head) {
  Outcome o = parse(
      "HEAD /file HTTP/1.1\r\nHost: h\r\n\r\n"
      "HEAD /other HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi");
  ASSERT_EQ(o.requests.size(), 2u) << o.describe();
  EXPECT_EQ(o.requests[0].start.method, "HEAD");
  EXPECT_EQ(o.requests[0].body, "");
  // A request's Content-Length frames the request body, whatever the method.
  EXPECT_EQ(o.requests[1].body, "hi");
}

TEST(HTTP1ParserTest, GetWithBody) {
  Outcome o = parse("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc");
  EXPECT_EQ(only_request(o).body, "abc");
}

TEST(HTTP1ParserTest, ExtensionMethodsLlhttpKnows) {
  Outcome o = parse("PROPFIND /dav HTTP/1.1\r\nHost: h\r\nDepth: 1\r\n\r\n");
  EXPECT_EQ(only_request(o).start.method, "PROPFIND");
  o = parse("M-SEARCH * HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(o.status, FeedStatus::kError);  // "*" is for OPTIONS only
}

TEST(HTTP1ParserTest, LeadingEmptyLinesAreIgnored) {
  // RFC 9112 section 2.2: a server SHOULD ignore at least one empty line before a request.
  Outcome o = parse("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(only_request(o).start.target, "/");
}

TEST(HTTP1ParserTest, UpgradeLeavesTrailingBytesUnconsumed) {
  std::string head =
      "GET /chat HTTP/1.1\r\n"
      "Host: h\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Version: 13\r\n"
      "\r\n";
  // A masked frame: binary, with bare CR and LF bytes the HTTP framing check must not see.
  std::string frame = bytes("\x82\x85\x0d\x0a\x00\x0d\xc3\r\xff\n");
  Outcome o = parse(head + frame);
  ASSERT_EQ(o.status, FeedStatus::kUpgrade) << o.describe();
  EXPECT_EQ(o.consumed, head.size());
  const SeenRequest& r = only_request(o);
  EXPECT_TRUE(r.info.upgrade);
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.headers.get("upgrade"), "websocket");
}

TEST(HTTP1ParserTest, UpgradeWithoutTrailingBytes) {
  std::string head = "GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n";
  Outcome o = parse(head);
  EXPECT_EQ(o.status, FeedStatus::kUpgrade);
  EXPECT_EQ(o.consumed, head.size());
}

TEST(HTTP1ParserTest, UpgradeWithBodyReadsTheBodyFirst) {
  // RFC 9113 section 3.2 (h2c): the request body is sent in full before the switch.
  std::string head =
      "POST / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
      "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Length: 5\r\n\r\nhello";
  Outcome o = parse(head + "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  ASSERT_EQ(o.status, FeedStatus::kUpgrade) << o.describe();
  EXPECT_EQ(o.consumed, head.size());
  EXPECT_EQ(only_request(o).body, "hello");
}

TEST(HTTP1ParserTest, UpgradeHeaderWithoutConnectionUpgradeIsPlainHttp) {
  Outcome o = parse("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n");
  EXPECT_EQ(o.status, FeedStatus::kNeedMore);
  EXPECT_FALSE(only_request(o).info.upgrade);
}

TEST(HTTP1ParserTest, DeclinedUpgradeGoesOnAsHttp) {
  std::string input =
      "GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
      "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
  Outcome o = parse(input, {}, [](Recorder& r) { r.action = HeadersAction::kDeclineUpgrade; });
  ASSERT_EQ(o.status, FeedStatus::kNeedMore) << o.describe();
  ASSERT_EQ(o.requests.size(), 2u);
  EXPECT_TRUE(o.requests[0].info.upgrade);  // the delegate still learns it was asked
  EXPECT_EQ(o.requests[1].start.target, "/next");
}

TEST(HTTP1ParserTest, ResumeAfterUpgradeParsesHttpAgain) {
  Recorder recorder;
  HTTP1RequestParser parser(recorder);
  recorder.parser = &parser;
  std::string first =
      "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n";
  std::string second = "GET /after HTTP/1.1\r\nHost: h\r\n\r\n";
  std::string input = first + second;
  FeedResult r = parser.feed(input);
  EXPECT_EQ(r.status, FeedStatus::kUpgrade);
  EXPECT_EQ(r.consumed, first.size());
  parser.resume();  // e.g. the handler refused the upgrade with a 403
  r = parser.feed(second);
  EXPECT_EQ(r.status, FeedStatus::kPaused);
  ASSERT_EQ(recorder.requests.size(), 2u);
  EXPECT_EQ(recorder.requests[1].start.target, "/after");
}

TEST(HTTP1ParserTest, Connect) {
  std::string head = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
  Outcome o = parse(head + bytes("\x16\x03\x01\x02\x00\x01\r\r"));
  ASSERT_EQ(o.status, FeedStatus::kUpgrade) << o.describe();
  EXPECT_EQ(o.consumed, head.size());
  const SeenRequest& r = only_request(o);
  EXPECT_EQ(r.start.method, "CONNECT");
  EXPECT_EQ(r.start.target, "example.com:443");
  EXPECT_TRUE(r.info.upgrade);
}

TEST(HTTP1ParserTest, BodyLimitCanBeRaisedPerRequest) {
  HTTP1Limits limits;
  limits.max_body_bytes = 4;
  std::string input =
      "POST /small HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
      "POST /stream HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789"
      "POST /stream HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "6\r\n012345\r\n6\r\n6789ab\r\n0\r\n\r\n"
      "POST /small HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n01234";
  Outcome o = parse(input, limits, [](Recorder& r) {
    r.on_headers_hook = [](HTTP1RequestParser& parser, const RequestStartLine& start) {
      EXPECT_EQ(parser.max_body_bytes(), 4u);  // back to the configured limit each time
      if (start.target == "/stream") parser.set_max_body_bytes(0);
    };
  });
  ASSERT_EQ(o.requests.size(), 4u) << o.describe();
  EXPECT_EQ(o.requests[1].body, "0123456789");
  EXPECT_EQ(o.requests[2].body, "0123456789ab");
  EXPECT_FALSE(o.requests[3].complete);
  EXPECT_EQ(o.status, FeedStatus::kError);
  EXPECT_EQ(o.error_status, 413);
}

TEST(HTTP1ParserTest, BodyExactlyAtTheLimit) {
  HTTP1Limits limits;
  limits.max_body_bytes = 5;
  Outcome o = parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n12345", limits);
  EXPECT_EQ(only_request(o).body, "12345");
  o = parse(
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "2\r\n12\r\n3\r\n345\r\n0\r\n\r\n",
      limits);
  EXPECT_EQ(only_request(o).body, "12345");
}

TEST(HTTP1ParserTest, LargeStreamedChunkedBody) {
  HTTP1Limits limits;
  limits.max_body_bytes = 0;
  std::string input = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  std::string expected;
  for (int i = 0; i < 40; ++i) {
    std::string chunk(1000 + i, static_cast<char>('a' + i % 26));
    char size[16];
    std::snprintf(size, sizeof size, "%zx", chunk.size());
    input += std::string(size) + "\r\n" + chunk + "\r\n";
    expected += chunk;
  }
  input += "0\r\n\r\n";
  ASSERT_GT(expected.size(), 40000u);
  Outcome o = parse(input, limits);
  EXPECT_EQ(only_request(o).body, expected);
}

TEST(HTTP1ParserTest, LimitsOfZeroDisableChecks) {
  HTTP1Limits limits{0, 0, 0, 0};
  std::string input = "GET /" + std::string(20000, 'a') + " HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 300; ++i) input += "X-" + std::to_string(i) + ": v\r\n";
  input += "Big: " + std::string(100000, 'b') + "\r\n\r\n";
  Outcome o = run_cut(input, {}, limits, {});
  EXPECT_EQ(o.status, FeedStatus::kNeedMore) << o.error_reason;
  EXPECT_EQ(only_request(o).headers.size(), 302u);
}

TEST(HTTP1ParserTest, ExactlyMaxHeaderCount) {
  HTTP1Limits limits;
  limits.max_header_count = 3;
  Outcome o = parse("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n", limits);
  EXPECT_EQ(only_request(o).headers.size(), 3u);
}

TEST(HTTP1ParserTest, InMessageTracksTheRequest) {
  Recorder recorder;
  HTTP1RequestParser parser(recorder);
  recorder.parser = &parser;
  EXPECT_FALSE(parser.in_message());
  parser.feed("GET / HT");
  EXPECT_TRUE(parser.in_message());
  EXPECT_EQ(parser.feed("TP/1.1\r\nHost: h\r\n\r\n").status, FeedStatus::kPaused);
  EXPECT_FALSE(parser.in_message());
}

TEST(HTTP1ParserTest, ResetAfterAnErrorStartsOver) {
  Recorder recorder;
  HTTP1RequestParser parser(recorder);
  recorder.parser = &parser;
  EXPECT_EQ(parser.feed("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n").status, FeedStatus::kError);
  EXPECT_EQ(parser.error_status(), 400);
  EXPECT_FALSE(parser.error_reason().empty());
  parser.reset();
  EXPECT_EQ(parser.error_status(), 0);
  EXPECT_EQ(parser.error_reason(), "");
  FeedResult r = parser.feed("GET /again HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(r.status, FeedStatus::kPaused);
  ASSERT_EQ(recorder.requests.size(), 1u);
  EXPECT_EQ(recorder.requests[0].start.target, "/again");
}

TEST(HTTP1ParserTest, ResetMidRequestDropsIt) {
  Recorder recorder;
  HTTP1RequestParser parser(recorder);
  recorder.parser = &parser;
  parser.feed("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc");
  parser.reset();
  recorder.allow_abandoned = true;
  EXPECT_FALSE(parser.in_message());
  EXPECT_EQ(parser.feed("GET /b HTTP/1.1\r\nHost: h\r\n\r\n").status, FeedStatus::kPaused);
  ASSERT_EQ(recorder.requests.size(), 2u);
  EXPECT_FALSE(recorder.requests[0].complete);
  EXPECT_EQ(recorder.requests[1].start.target, "/b");
}

TEST(HTTP1ParserTest, DelegateExceptionPropagatesAndStopsTheParser) {
  Recorder recorder;
  recorder.throw_in_body = true;
  HTTP1RequestParser parser(recorder);
  recorder.parser = &parser;
  EXPECT_THROW(parser.feed("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx"),
               std::runtime_error);
  EXPECT_EQ(parser.error_status(), 500);
  EXPECT_EQ(parser.feed("x").status, FeedStatus::kError);
}

TEST(HTTP1ParserTest, WhitespacePaddingIsBoundedAcrossFeeds) {
  // OWS never reaches the field callbacks, so only the wire count sees it.
  HTTP1Limits limits;
  limits.max_request_line = 100;
  limits.max_header_bytes = 100;
  Recorder recorder;
  HTTP1RequestParser parser(recorder, limits);
  recorder.parser = &parser;
  ASSERT_EQ(parser.feed("GET / HTTP/1.1\r\nHost: h\r\nX:").status, FeedStatus::kNeedMore);
  std::string spaces(50, ' ');
  FeedResult r;
  for (int i = 0; i < 10 && r.status == FeedStatus::kNeedMore; ++i) r = parser.feed(spaces);
  EXPECT_EQ(r.status, FeedStatus::kError);
  EXPECT_EQ(parser.error_status(), 431);
}

TEST(HTTP1ParserTest, EmptyLineFloodIsBounded) {
  HTTP1Limits limits;
  limits.max_request_line = 100;
  limits.max_header_bytes = 100;
  Recorder recorder;
  HTTP1RequestParser parser(recorder, limits);
  recorder.parser = &parser;
  FeedResult r;
  for (int i = 0; i < 200 && r.status == FeedStatus::kNeedMore; ++i) r = parser.feed("\r\n");
  EXPECT_EQ(r.status, FeedStatus::kError);
  EXPECT_EQ(parser.error_status(), 414);
}

TEST(HTTP1ParserTest, StartLineCapacityIsReusedWhenTheDelegateLeavesIt) {
  // A delegate that copies instead of moving leaves the parser's buffers in place.
  class Copier : public HTTP1ParserDelegate {
   public:
    std::vector<std::string> targets;
    HeadersAction on_headers(RequestStartLine&& start, HTTPHeaders&&, const RequestInfo&) override {
      targets.push_back(start.target);
      return HeadersAction::kContinue;
    }
    void on_body(std::string_view) override {}
    void on_message_complete() override {}
  } copier;
  HTTP1RequestParser parser(copier);
  std::string long_target = "/" + std::string(500, 'x');
  for (const std::string& target : {long_target, std::string("/short")}) {
    std::string request = "GET " + target + " HTTP/1.1\r\nHost: h\r\n\r\n";
    EXPECT_EQ(parser.feed(request).status, FeedStatus::kPaused);
    parser.resume();
  }
  EXPECT_EQ(copier.targets, (std::vector<std::string>{long_target, "/short"}));
}

// ---------------------------------------------------------------------------------------
// Malformed requests: every row is fed in one piece, byte by byte and cut in two at every
// offset, and must fail with the same status every time.

std::vector<Malformed> malformed_requests() {
  std::vector<Malformed> rows = {
      // Framing conflicts (request smuggling).
      {"ContentLengthThenTransferEncoding",
       req("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"), 400},
      {"TransferEncodingThenContentLength",
       req("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", "0\r\n\r\n"), 400},
      {"TwoDifferentContentLengths", req("Content-Length: 3\r\nContent-Length: 4\r\n", "abcd"),
       400},
      {"TwoIdenticalContentLengths", req("Content-Length: 3\r\nContent-Length: 3\r\n", "abc"), 400},
      {"ContentLengthList", req("Content-Length: 3, 3\r\n", "abc"), 400},
      {"ContentLengthPlusSign", req("Content-Length: +3\r\n", "abc"), 400},
      {"ContentLengthMinusSign", req("Content-Length: -3\r\n", "abc"), 400},
      {"ContentLengthInnerSpace", req("Content-Length: 1 2\r\n", "abc"), 400},
      {"ContentLengthNonDigits", req("Content-Length: abc\r\n", "abc"), 400},
      {"ContentLengthHex", req("Content-Length: 0x10\r\n", "abc"), 400},
      {"ContentLengthEmpty", req("Content-Length:\r\n", "abc"), 400},
      {"ContentLengthOverflow", req("Content-Length: 99999999999999999999999\r\n"), 400},
      // Transfer codings.
      {"TransferEncodingGzip", req("Transfer-Encoding: gzip\r\n", "abc"), 501},
      {"TransferEncodingIdentity", req("Transfer-Encoding: identity\r\n", "abc"), 501},
      {"TransferEncodingGzipThenChunked", req("Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n"),
       501},
      {"TransferEncodingChunkedThenGzip", req("Transfer-Encoding: chunked, gzip\r\n", "abc"), 400},
      {"TransferEncodingChunkedTwice", req("Transfer-Encoding: chunked, chunked\r\n", "0\r\n\r\n"),
       400},
      {"TransferEncodingChunkedOnTwoLines",
       req("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"), 400},
      {"TransferEncodingChunkedWithParameter",
       req("Transfer-Encoding: chunked;q=1\r\n", "0\r\n\r\n"), 400},
      {"TransferEncodingNotAToken", req("Transfer-Encoding: chu\"nked\r\n", "0\r\n\r\n"), 400},
      {"TransferEncodingOnHttp10", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       400},
      // Chunk syntax.
      {"ChunkSizeHexOverflow", req("Transfer-Encoding: chunked\r\n", "1FFFFFFFFFFFFFFFF\r\nabc"),
       400},
      {"ChunkSizeNotHex", req("Transfer-Encoding: chunked\r\n", "zz\r\nabc\r\n0\r\n\r\n"), 400},
      {"ChunkSizeNegative", req("Transfer-Encoding: chunked\r\n", "-1\r\nabc\r\n0\r\n\r\n"), 400},
      {"ChunkSizeWith0x", req("Transfer-Encoding: chunked\r\n", "0x3\r\nabc\r\n0\r\n\r\n"), 400},
      {"ChunkSizeEmpty", req("Transfer-Encoding: chunked\r\n", "\r\nabc\r\n0\r\n\r\n"), 400},
      {"ChunkSizeTrailingSpace", req("Transfer-Encoding: chunked\r\n", "3 \r\nabc\r\n0\r\n\r\n"),
       400},
      {"ChunkDataTooLong", req("Transfer-Encoding: chunked\r\n", "3\r\nabcd\r\n0\r\n\r\n"), 400},
      {"ChunkDataWithoutCRLF", req("Transfer-Encoding: chunked\r\n", "3\r\nabc0\r\n\r\n"), 400},
      {"ChunkSizeBareLF", req("Transfer-Encoding: chunked\r\n", "3\nabc\r\n0\r\n\r\n"), 400},
      {"ChunkSizeBareCR", req("Transfer-Encoding: chunked\r\n", "3\rabc\r\n0\r\n\r\n"), 400},
      {"ChunkDataBareLF", req("Transfer-Encoding: chunked\r\n", "3\r\nabc\n0\r\n\r\n"), 400},
      {"ChunkDataBareCR", req("Transfer-Encoding: chunked\r\n", "3\r\nabc\r0\r\n\r\n"), 400},
      // llhttp's loose build skips the byte after chunk data, reading on from the next one.
      {"ChunkDataFollowedByJunk",
       req("Transfer-Encoding: chunked\r\n", "3\r\nabcX5\r\nhello\r\n0\r\n\r\n"), 400},
      {"ChunkDataEndingInCRThenBareLF",
       req("Transfer-Encoding: chunked\r\n", "2\r\nx\r\n2\r\nde\r\n0\r\n\r\n"), 400},
      {"ChunkOfCRLFThenJunk", req("Transfer-Encoding: chunked\r\n", "2\r\n\r\nde9\r\n0\r\n\r\n"),
       400},
      {"ChunkExtensionBareCR", req("Transfer-Encoding: chunked\r\n", "3;a\rb\r\nabc\r\n0\r\n\r\n"),
       400},
      {"TrailerSectionBareCR",
       req("Transfer-Encoding: chunked\r\n", "3\r\nabc\r\n0\r\nT: 1\r\n\rX\r\n\r\n"), 400},
      {"TrailerObsFold", req("Transfer-Encoding: chunked\r\n", "1\r\nx\r\n0\r\nT: a\r\n b\r\n\r\n"),
       400},
      {"TrailerInvalidName",
       req("Transfer-Encoding: chunked\r\n", "1\r\nx\r\n0\r\nBad Name: a\r\n\r\n"), 400},
      // Header section syntax.
      {"ObsFold", req("X-A: b\r\n c\r\n"), 400},
      {"ObsFoldWithTab", req("X-A: b\r\n\tc\r\n"), 400},
      {"ObsFoldOfEmptyValue", req("X-A:\r\n c\r\n"), 400},
      {"ObsFoldAfterRequestLine", "GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400},
      {"BareCRInHeaderValue", req("X-A: b\rc\r\n"), 400},
      {"BareCRAtStartOfValue", req("X-A:\rc\r\n"), 400},
      {"BareCRBeforeHeaderName", req("\rX-A: b\r\n"), 400},
      {"BareCREndingHeaderSection", "GET / HTTP/1.1\r\nHost: h\r\n\rX", 400},
      {"BareCRCRLFEndingHeaderSection", "GET / HTTP/1.1\r\nHost: h\r\n\r\r\n", 400},
      {"BareCRInRequestLine", "GET / HTTP/1.1\rHost: h\r\n\r\n", 400},
      {"BareCRInTarget", "GET /a\rb HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"BareLFAfterRequestLine", "GET / HTTP/1.1\nHost: h\r\n\r\n", 400},
      {"BareLFAfterHeader", "GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", 400},
      {"BareLFEndingHeaderSection", "GET / HTTP/1.1\r\nHost: h\r\n\n", 400},
      {"BareLFBeforeRequest", "\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"NulInHeaderValue", req(bytes("X-A: b\0c\r\n")), 400},
      {"ControlCharInHeaderValue",
       req("X-A: b\x01"
           "c\r\n"),
       400},
      {"DelInHeaderValue", req("X-A: b\x7f\r\n"), 400},
      {"InvalidCharInHeaderName", req("X@A: b\r\n"), 400},
      {"NonAsciiInHeaderName", req("X\xc3\xa9: b\r\n"), 400},
      {"SpaceInHeaderName", req("X A: b\r\n"), 400},
      {"SpaceBeforeColon", req("X-A : b\r\n"), 400},
      {"TabBeforeColon", req("X-A\t: b\r\n"), 400},
      {"EmptyHeaderName", req(": b\r\n"), 400},
      {"HeaderWithoutColon", req("X-A\r\n"), 400},
      // Request line.
      {"InvalidCharInMethod", "G@T / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"ControlCharInMethod", "GE\x01T / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"TabAfterMethod", "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"EmptyMethod", " / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"TlsHandshakeOnPlainPort", bytes("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), 400},
      {"ResponseInsteadOfRequest", "HTTP/1.1 200 OK\r\n\r\n", 400},
      {"MethodTooLong", std::string(100, 'X') + " / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"UnknownMethod", "FOO / HTTP/1.1\r\nHost: h\r\n\r\n", 501},
      {"UnknownMethodWithKnownPrefix", "GETS / HTTP/1.1\r\nHost: h\r\n\r\n", 501},
      {"UnknownMethodLongerThanKnown", "FLUSHX / HTTP/1.1\r\nHost: h\r\n\r\n", 501},
      {"LowercaseMethod", "get / HTTP/1.1\r\nHost: h\r\n\r\n", 501},
      {"RtspMethod", "DESCRIBE / HTTP/1.1\r\nHost: h\r\n\r\n", 501},
      {"Http12", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505},
      {"Http20", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
      {"Http30", "GET / HTTP/3.0\r\nHost: h\r\n\r\n", 505},
      {"Http09Version", "GET / HTTP/0.9\r\n\r\n", 505},
      {"Http09StyleLine", "GET /\r\n\r\n", 505},
      {"Http2Preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
      {"VersionWithoutDot", "GET / HTTP/11\r\nHost: h\r\n\r\n", 400},
      {"VersionTwoDigitMinor", "GET / HTTP/1.10\r\nHost: h\r\n\r\n", 400},
      {"LowercaseProtocol", "GET / http/1.1\r\nHost: h\r\n\r\n", 400},
      {"RtspProtocol", "GET / RTSP/1.0\r\nHost: h\r\n\r\n", 400},
      {"IceProtocol", "SOURCE / ICE/1.0\r\nHost: h\r\n\r\n", 400},
      {"SpaceAfterVersion", "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400},
      {"SpaceInTarget", "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"TabInTarget", "GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"DelInTarget", "GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"NonAsciiInTarget", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"NulInTarget", bytes("GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n"), 400},
      {"AsteriskOnGet", "GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"ConnectWithPath", "CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"ConnectWithoutPort", "CONNECT example.com HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"ConnectAbsoluteForm", "CONNECT http://h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      // Host.
      {"MissingHostOnHttp11", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400},
      {"TwoHosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      {"TwoHostsOnHttp10", "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", 400},
      {"HostWithSpace", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
      {"HostWithSlash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
      {"HostWithUserinfoAndPath", "GET / HTTP/1.1\r\nHost: evil.com/x?@a\r\n\r\n", 400},
      // Limits.
      {"RequestLineOverTheLimit", "GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n",
       414},
      {"OneHeaderOverTheLimit", req("Cookie: " + std::string(70000, 'c') + "\r\n"), 431},
      {"HeaderNameOverTheLimit", req(std::string(70000, 'N') + ": v\r\n"), 431},
      {"ManyHeadersOverTheByteLimit", req([] {
         std::string h;
         for (int i = 0; i < 90; ++i)
           h += "X-" + std::to_string(i) + ": " + std::string(800, 'v') + "\r\n";
         return h;
       }()),
       431},
      {"TooManyHeaders", req([] {
         std::string h;
         for (int i = 0; i < 100; ++i) h += "X-" + std::to_string(i) + ": v\r\n";
         return h;  // 101 with Host
       }()),
       431},
      {"TooManyTrailers",
       req("Transfer-Encoding: chunked\r\n",
           [] {
             std::string t = "1\r\nx\r\n0\r\n";
             for (int i = 0; i < 101; ++i) t += "T-" + std::to_string(i) + ": v\r\n";
             return t + "\r\n";
           }()),
       431},
      {"ContentLengthOverTheLimit", req("Content-Length: 11\r\n", "01234567890"), 413,
       small_body_limit()},
      {"HugeContentLength", req("Content-Length: 18446744073709551615\r\n", "x"), 413},
      {"ChunkedOverTheLimit",
       req("Transfer-Encoding: chunked\r\n", "5\r\n01234\r\n5\r\n56789\r\n1\r\nx\r\n0\r\n\r\n"),
       413, small_body_limit()},
      {"OneChunkOverTheLimit",
       req("Transfer-Encoding: chunked\r\n", "b\r\n0123456789a\r\n0\r\n\r\n"), 413,
       small_body_limit()},
      {"MaxSizeChunk", req("Transfer-Encoding: chunked\r\n", "FFFFFFFFFFFFFFFF\r\nabc"), 413},
  };
  return rows;
}

class HTTP1ParserMalformedTest : public ::testing::TestWithParam<Malformed> {};

TEST_P(HTTP1ParserMalformedTest, FailsWithTheSameStatusHoweverItIsCut) {
  const Malformed& row = GetParam();
  Outcome o = parse(row.input, row.limits);
  EXPECT_EQ(o.status, FeedStatus::kError) << o.describe();
  EXPECT_EQ(o.error_status, row.status) << o.describe();
  EXPECT_FALSE(o.error_reason.empty());
  for (const SeenRequest& r : o.requests) EXPECT_FALSE(r.complete) << o.describe();
}

INSTANTIATE_TEST_SUITE_P(HTTP1Parser, HTTP1ParserMalformedTest,
                         ::testing::ValuesIn(malformed_requests()),
                         [](const ::testing::TestParamInfo<Malformed>& info) {
                           return std::string(info.param.name);
                         });

// The same malformed bytes after a good request on a keep-alive connection: the first
// request completes, then the status is the same.
TEST(HTTP1ParserTest, MalformedRequestAfterAGoodOne) {
  for (const Malformed& row : malformed_requests()) {
    if (row.input.size() > 1000) continue;
    std::string input = "GET /first HTTP/1.1\r\nHost: h\r\n\r\n" + row.input;
    Outcome o = parse(input, row.limits);
    ASSERT_GE(o.requests.size(), 1u) << row.name;
    EXPECT_TRUE(o.requests[0].complete) << row.name;
    EXPECT_EQ(o.error_status, row.status) << row.name << "\n" << o.describe();
  }
}

TEST(HTTP1ParserTest, ErrorReasonsNameTheProblem) {
  EXPECT_EQ(parse(req("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n")).error_reason,
            "Content-Length together with Transfer-Encoding");
  EXPECT_EQ(parse(req("Content-Length: 3\r\nContent-Length: 3\r\n")).error_reason,
            "more than one Content-Length");
  EXPECT_EQ(parse("GET / HTTP/1.1\r\n\r\n").error_reason, "missing Host header");
  EXPECT_EQ(parse(req("X-A: b\r\n c\r\n")).error_reason, "obsolete line folding is not allowed");
  EXPECT_EQ(parse(req("Transfer-Encoding: gzip\r\n")).error_reason,
            "transfer coding not implemented");
}

}  // namespace
}  // namespace tronada
