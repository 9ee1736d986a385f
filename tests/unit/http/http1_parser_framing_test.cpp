// HTTP1RequestParser on chunk extensions (RFC 9112 section 7.1.1) and on whitespace around
// field values (OWS, RFC 9110 section 5.6.3), where llhttp 8.1 alone gets it wrong. Every
// input goes through parse(): whole, one byte at a time and cut in two at every offset.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "http1_parser_harness.h"
#include "tronada/http/http1_parser.h"

namespace tronada {
namespace {

using namespace http1_test;

std::string chunked(std::string_view chunks) {
  return req("Transfer-Encoding: chunked\r\n", chunks);
}

// ---------------------------------------------------------------------------------------
// Chunk extensions are ignored, with whitespace where the grammar has BWS.

TEST(HTTP1ParserFramingTest, ChunkExtensionsAreIgnored) {
  const std::vector<std::string> lines = {
      "3",
      "3;a",
      "3;a=b",
      "3 ; a = b",
      "3\t;\ta\t=\tb",
      "3  ;  a  =  b  ;  c",
      "3;a=1;b=2",  // llhttp 8.1 refuses a second extension after one with a value
      "3;a=1;b=2;c=3;d",
      "3;a;b;c",
      "3 ;a ;b= 1",
      "3;name=\"quoted value\"",
      "3 ; name = \"a \\\" b ; c = d\" ; other = token",
      "3;q=\"\"",
      "3;q=\"caf\xc3\xa9\\\xff\\\t\"",
      "3;!#$%&'*+-.^_`|~09azAZ=!#$%&'*+-.^_`|~",
      "03;a=b",
      "0003 ;x",
  };
  for (const std::string& line : lines) {
    Outcome o = parse(chunked(line + "\r\nabc\r\n0 ; last = \"yes\" ;end\r\nT: 1\r\n\r\n"));
    ASSERT_EQ(o.status, FeedStatus::kNeedMore) << line << "\n" << o.describe();
    const SeenRequest& r = only_request(o);
    EXPECT_EQ(r.body, "abc") << line;
    EXPECT_EQ(r.trailers.get("T"), "1") << line;
    EXPECT_TRUE(r.complete) << line;
  }
}

TEST(HTTP1ParserFramingTest, ExtensionsOnEveryChunkOfAPipelinedRequest) {
  std::string input =
      chunked("5 ; a = b\r\nhello\r\n1;x=\"y\"\r\n \r\n5\t;\tz\r\nworld\r\n0;done\r\n\r\n") +
      "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
  Outcome o = parse(input);
  ASSERT_EQ(o.requests.size(), 2u) << o.describe();
  EXPECT_EQ(o.requests[0].body, "hello world");
  EXPECT_EQ(o.requests[1].start.target, "/next");
  EXPECT_EQ(o.status, FeedStatus::kNeedMore);
}

TEST(HTTP1ParserFramingTest, ChunkDataThatLooksLikeExtensionsIsData) {
  // Whitespace and semicolons in chunk data, and whitespace before its CRLF, are data.
  Outcome o = parse(chunked("6\r\n ; a \t\r\n4 ; x\r\n\r\n\t\r\r\n0\r\n\r\n"));
  EXPECT_EQ(only_request(o).body, " ; a \t\r\n\t\r");
}

TEST(HTTP1ParserFramingTest, ExtensionsUpToTheLimitsAreServed) {
  HTTP1Limits limits;
  limits.max_chunk_line = 20;
  limits.max_chunk_extension_bytes = 30;
  // 20 bytes before the CRLF: the size and 19 of extensions; then 11 more on the last chunk.
  std::string line = "1;" + std::string(14, 'a') + "=bbb";
  ASSERT_EQ(line.size(), 20u);
  Outcome o = parse(chunked(line + "\r\nx\r\n0;a=bbbbbbb\r\n\r\n"), limits);
  ASSERT_EQ(o.status, FeedStatus::kNeedMore) << o.describe();
  EXPECT_EQ(only_request(o).body, "x");
}

TEST(HTTP1ParserFramingTest, ExtensionBudgetIsPerRequest) {
  HTTP1Limits limits;
  limits.max_chunk_extension_bytes = 10;
  std::string one = chunked("1;abcdefgh\r\nx\r\n0\r\n\r\n");  // 9 extension bytes each
  Outcome o = parse(one + one + one, limits);
  EXPECT_EQ(o.requests.size(), 3u) << o.describe();
  EXPECT_EQ(o.status, FeedStatus::kNeedMore) << o.describe();
}

TEST(HTTP1ParserFramingTest, ChunkLimitsOfZeroDisableThem) {
  HTTP1Limits limits;
  limits.max_chunk_line = 0;
  limits.max_chunk_extension_bytes = 0;
  std::string body;
  for (int i = 0; i < 100; ++i) body += "1;" + std::string(1000, 'e') + "\r\nx\r\n";
  Outcome o = run_cut(chunked(body + "0\r\n\r\n"), {}, limits, {});
  ASSERT_EQ(o.status, FeedStatus::kNeedMore) << o.error_reason;
  EXPECT_EQ(only_request(o).body, std::string(100, 'x'));
}

TEST(HTTP1ParserFramingTest, ChunkedUpgradesReadTheBodyButConnectDoesNot) {
  // An upgrade with a chunked body reads the body first; an accepted CONNECT's message
  // ends with its head, and what follows belongs to the tunnel, chunk-like or not.
  std::string head =
      req("Connection: Upgrade\r\nUpgrade: websocket\r\nTransfer-Encoding: chunked\r\n", "",
          "GET /ws HTTP/1.1");
  Outcome upgrade = parse(head + "3 ; a\r\nabc\r\n0\r\n\r\nframes");
  EXPECT_EQ(upgrade.status, FeedStatus::kUpgrade) << upgrade.describe();
  EXPECT_EQ(only_request(upgrade).body, "abc");
  EXPECT_EQ(upgrade.consumed, head.size() + 17);
  std::string connect =
      "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\nTransfer-Encoding: chunked\r\n\r\n";
  Outcome tunnel = parse(connect + "\x16\x03\x01 not a chunk \r\n");
  EXPECT_EQ(tunnel.status, FeedStatus::kUpgrade) << tunnel.describe();
  EXPECT_EQ(tunnel.consumed, connect.size());
}

TEST(HTTP1ParserFramingTest, ChunkErrorsNameTheProblem) {
  EXPECT_EQ(parse(chunked("3;a=\"b\r\nabc\r\n0\r\n\r\n")).error_reason,
            "unterminated quoted string in a chunk extension");
  EXPECT_EQ(parse(chunked("3;" + std::string(5000, 'a') + "\r\n")).error_reason,
            "chunk-size line too long");
  std::string many;
  for (int i = 0; i < 20000; ++i) many += "1;a\r\nx\r\n";
  EXPECT_EQ(parse(chunked(many)).error_reason, "chunk extensions too large");
}

// ---------------------------------------------------------------------------------------
// Field values with HTAB as OWS mean what they say.

TEST(HTTP1ParserFramingTest, TransferEncodingWithTabs) {
  for (std::string_view value :
       {"\tchunked\t", "chunked\t", " \t chunked \t ", "\tCHUNKED \t", ",\tchunked\t"}) {
    Outcome o =
        parse(req("Transfer-Encoding:" + std::string(value) + "\r\n", "3\r\nabc\r\n0\r\n\r\n"));
    ASSERT_EQ(o.status, FeedStatus::kNeedMore) << escape(value) << "\n" << o.describe();
    const SeenRequest& r = only_request(o);
    EXPECT_TRUE(r.info.chunked) << escape(value);
    EXPECT_EQ(r.body, "abc");
    EXPECT_EQ(r.headers.get("Transfer-Encoding"), detail::trim_ows(value));
  }
}

TEST(HTTP1ParserFramingTest, ContentLengthWithTabs) {
  for (std::string_view value : {"\t3\t", "3\t", " 3 \t", "\t 3"}) {
    Outcome o = parse(req("Content-Length:" + std::string(value) + "\r\n", "abc"));
    ASSERT_EQ(o.status, FeedStatus::kNeedMore) << escape(value) << "\n" << o.describe();
    EXPECT_EQ(only_request(o).info.content_length, 3u);
    EXPECT_EQ(only_request(o).body, "abc");
  }
}

TEST(HTTP1ParserFramingTest, ConnectionWithTabs) {
  Outcome close = parse(req("Connection:\tclose\t\r\n", "", "GET / HTTP/1.1"));
  EXPECT_FALSE(only_request(close).info.keep_alive);
  Outcome keep = parse("GET / HTTP/1.0\r\nConnection:\tkeep-alive\t\r\n\r\n");
  EXPECT_TRUE(only_request(keep).info.keep_alive);
  Outcome list = parse(req("Connection: keep-alive,\tclose\t\r\n", "", "GET / HTTP/1.1"));
  EXPECT_FALSE(only_request(list).info.keep_alive);
  Outcome upgrade =
      parse(req("Connection:\tUpgrade\t\r\nUpgrade:\twebsocket\t\r\n", "", "GET /ws HTTP/1.1"));
  EXPECT_EQ(upgrade.status, FeedStatus::kUpgrade) << upgrade.describe();
  EXPECT_TRUE(only_request(upgrade).info.upgrade);
}

TEST(HTTP1ParserFramingTest, OtherFieldsWithTabs) {
  Outcome o = parse(
      "PUT / HTTP/1.1\r\n"
      "Host:\th\t\r\n"
      "Expect:\t100-continue\t\r\n"
      "X-Inner: a\tb \t c\t \r\n"
      "X-Empty:\t \t\r\n"
      "Content-Length: 1\r\n"
      "\r\nx");
  const SeenRequest& r = only_request(o);
  EXPECT_TRUE(r.info.expect_continue);
  EXPECT_EQ(r.headers.get("Host"), "h");
  EXPECT_EQ(r.headers.get("X-Inner"), "a\tb \t c");  // whitespace inside a value stays
  EXPECT_EQ(r.headers.get("X-Empty"), "");
  EXPECT_EQ(r.body, "x");
}

TEST(HTTP1ParserFramingTest, TrailersWithTabs) {
  Outcome o = parse(chunked("1\r\nx\r\n0\r\nX-Sum:\tabc\t\r\nX-Other: 1 \t\r\n\r\n"));
  const SeenRequest& r = only_request(o);
  EXPECT_EQ(r.trailers.get("X-Sum"), "abc");
  EXPECT_EQ(r.trailers.get("X-Other"), "1");
}

TEST(HTTP1ParserFramingTest, BodyWhitespaceBeforeCRIsKept) {
  std::string body = "a \t\r\n \r\t \r";
  Outcome cl = parse(req("Content-Length: " + std::to_string(body.size()) + "\r\n", body));
  EXPECT_EQ(only_request(cl).body, body);
}

TEST(HTTP1ParserFramingTest, TrailingWhitespaceIsBoundedAcrossFeeds) {
  // Dropped trailing whitespace still counts against the header budget, as it did when
  // llhttp passed it on as part of the value.
  HTTP1Limits limits;
  limits.max_header_bytes = 100;
  Recorder recorder;
  HTTP1RequestParser parser(recorder, limits);
  recorder.parser = &parser;
  ASSERT_EQ(parser.feed("GET / HTTP/1.1\r\nHost: h\r\nX: v").status, FeedStatus::kNeedMore);
  FeedResult r;
  for (int i = 0; i < 10 && r.status == FeedStatus::kNeedMore; ++i)
    r = parser.feed(" \t \t \t \t \t");
  EXPECT_EQ(r.status, FeedStatus::kError);
  EXPECT_EQ(parser.error_status(), 431);
}

// ---------------------------------------------------------------------------------------
// Malformed chunk lines and smuggling attempts with tabs: the same status however cut.

std::vector<Malformed> malformed_framing() {
  HTTP1Limits small_line;
  small_line.max_chunk_line = 20;
  HTTP1Limits small_budget;
  small_budget.max_chunk_extension_bytes = 10;
  std::string ten_chunks;
  for (int i = 0; i < 10; ++i) ten_chunks += "1;a\r\nx\r\n";
  std::string many_chunks;
  for (int i = 0; i < 20000; ++i) many_chunks += "1;a\r\nx\r\n";
  return {
      // Chunk extensions.
      {"ExtensionWithoutName", chunked("3;\r\nabc\r\n0\r\n\r\n"), 400},
      {"ExtensionEmptyNameBeforeEquals", chunked("3;=b\r\nabc\r\n0\r\n\r\n"), 400},
      {"ExtensionDoubleSemicolon", chunked("3;;a\r\nabc\r\n0\r\n\r\n"), 400},
      {"ExtensionWithoutValue", chunked("3;a=\r\nabc\r\n0\r\n\r\n"), 400},
      {"ExtensionTwoEquals", chunked("3;a==b\r\nabc\r\n0\r\n\r\n"), 400},
      {"ExtensionBadCharInName", chunked("3;a@b\r\nabc\r\n0\r\n\r\n"), 400},
      {"ExtensionNonAsciiName", chunked("3;caf\xc3\xa9\r\nabc\r\n0\r\n\r\n"), 400},
      {"ExtensionBadCharInValue", chunked("3;a=b@c\r\nabc\r\n0\r\n\r\n"), 400},
      {"ExtensionSpaceInName", chunked("3;a b\r\nabc\r\n0\r\n\r\n"), 400},
      {"ExtensionSpaceInValue", chunked("3;a=b c\r\nabc\r\n0\r\n\r\n"), 400},
      {"ExtensionTrailingSpace", chunked("3;a \r\nabc\r\n0\r\n\r\n"), 400},
      {"ExtensionValueTrailingTab", chunked("3;a=b\t\r\nabc\r\n0\r\n\r\n"), 400},
      {"ExtensionUnterminatedQuote", chunked("3;a=\"bc\r\nabc\r\n0\r\n\r\n"), 400},
      {"ExtensionQuoteThenText", chunked("3;a=\"b\"c\r\nabc\r\n0\r\n\r\n"), 400},
      {"ExtensionControlInQuote", chunked("3;a=\"b\x01\"\r\nabc\r\n0\r\n\r\n"), 400},
      {"ExtensionDelInQuote", chunked("3;a=\"b\x7f\"\r\nabc\r\n0\r\n\r\n"), 400},
      {"ExtensionNulInQuote", chunked(bytes("3;a=\"b\0\"\r\nabc\r\n0\r\n\r\n")), 400},
      {"ExtensionNulInName", chunked(bytes("3;a\0\r\nabc\r\n0\r\n\r\n")), 400},
      {"ExtensionEscapedControl", chunked("3;a=\"\\\x01\"\r\nabc\r\n0\r\n\r\n"), 400},
      {"ExtensionBareLF", chunked("3;a\nabc\r\n0\r\n\r\n"), 400},
      {"ExtensionBareCRInQuote", chunked("3;a=\"b\rc\"\r\nabc\r\n0\r\n\r\n"), 400},
      {"ExtensionLFInQuote", chunked("3;a=\"b\nc\"\r\nabc\r\n0\r\n\r\n"), 400},
      {"ExtensionOnLastChunkMalformed", chunked("1\r\nx\r\n0;=\r\n\r\n"), 400},
      {"SizeThenSpaceThenJunk", chunked("3 x\r\nabc\r\n0\r\n\r\n"), 400},
      {"SizeThenTabOnly", chunked("3\t\r\nabc\r\n0\r\n\r\n"), 400},
      {"SpaceBeforeSize", chunked(" 3\r\nabc\r\n0\r\n\r\n"), 400},
      {"SemicolonWithoutSize", chunked(";a\r\nabc\r\n0\r\n\r\n"), 400},
      {"SizeInsideExtension", chunked("3;a=1 4\r\nabc\r\n0\r\n\r\n"), 400},
      // Limits: one line, then the extensions of the whole request.
      {"ChunkLineOverTheLimit", chunked("1;" + std::string(19, 'a') + "\r\nx\r\n0\r\n\r\n"), 400,
       small_line},
      {"LeadingZerosOverTheLimit", chunked(std::string(20, '0') + "1\r\nx\r\n0\r\n\r\n"), 400,
       small_line},
      {"HugeExtension", chunked("1;a=" + std::string(256 * 1024, 'b') + "\r\nx\r\n0\r\n\r\n"), 400},
      {"ExtensionsOverTheRequestBudget", chunked(ten_chunks + "0\r\n\r\n"), 413, small_budget},
      {"ExtensionOnLastChunkOverTheBudget", chunked("1;abcdefgh\r\nx\r\n0;ab\r\n\r\n"), 413,
       small_budget},
      {"TwentyThousandChunksWithExtensions", chunked(many_chunks + "0\r\n\r\n"), 413},
      // Tabs do not open a way around the framing checks.
      {"TabbedChunkedWithContentLength",
       req("Transfer-Encoding:\tchunked\t\r\nContent-Length: 3\r\n", "abc"), 400},
      {"ContentLengthWithTabbedChunked",
       req("Content-Length:\t3\t\r\nTransfer-Encoding:\tchunked\t\r\n", "0\r\n\r\n"), 400},
      {"TabbedChunkedThenIdentity", req("Transfer-Encoding:\tchunked\t,\tidentity\t\r\n", "abc"),
       400},
      {"ChunkedCommaIdentity", req("Transfer-Encoding: chunked, identity\r\n", "abc"), 400},
      {"TabbedIdentity", req("Transfer-Encoding:\tidentity\t\r\n", "abc"), 501},
      {"TabbedChunkedTwice",
       req("Transfer-Encoding:\tchunked\t\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"), 400},
      {"TabbedChunkedOnHttp10", "POST / HTTP/1.0\r\nTransfer-Encoding:\tchunked\t\r\n\r\n0\r\n\r\n",
       400},
      {"TabbedChunkedObsFold", req("Transfer-Encoding:\r\n\tchunked\t\r\n", "0\r\n\r\n"), 400},
      {"TabInsideContentLength", req("Content-Length: 1\t2\r\n", "abc"), 400},
      {"TwoContentLengthsWithTabs", req("Content-Length: 3\t\r\nContent-Length:\t3\r\n", "abc"),
       400},
      {"TabAfterVersion", "GET / HTTP/1.1\t\r\nHost: h\r\n\r\n", 400},
      {"TabAfterTarget", "GET /\t\r\nHost: h\r\n\r\n", 400},
      {"TabAfterFieldName", req("X-A\t\r\n"), 400},
      {"TabOnlyLine", req("X-A: b\r\n\t\r\n"), 400},
      {"TabThenBareCR", req("X-A: b\t\rc\r\n"), 400},
      {"TabbedTrailerObsFold", chunked("1\r\nx\r\n0\r\nT: a\t\r\n\tb\r\n\r\n"), 400},
  };
}

class HTTP1ParserFramingMalformedTest : public ::testing::TestWithParam<Malformed> {};

TEST_P(HTTP1ParserFramingMalformedTest, FailsWithTheSameStatusHoweverItIsCut) {
  const Malformed& row = GetParam();
  Outcome o = parse(row.input, row.limits);
  EXPECT_EQ(o.status, FeedStatus::kError) << o.describe();
  EXPECT_EQ(o.error_status, row.status) << o.describe();
  EXPECT_FALSE(o.error_reason.empty());
  for (const SeenRequest& r : o.requests) EXPECT_FALSE(r.complete) << o.describe();
}

INSTANTIATE_TEST_SUITE_P(HTTP1ParserFraming, HTTP1ParserFramingMalformedTest,
                         ::testing::ValuesIn(malformed_framing()),
                         [](const ::testing::TestParamInfo<Malformed>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace tronada
