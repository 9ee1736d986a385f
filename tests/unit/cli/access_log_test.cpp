#include "cli/access_log.h"

#include <gtest/gtest.h>

namespace tronada::cli {
namespace {

AccessRecord sample() {
  AccessRecord r;
  r.remote_ip = "127.0.0.1";
  r.method = "GET";
  r.uri = "/a?b=1";
  r.version = "HTTP/1.1";
  r.status = 200;
  r.bytes = 1234;
  r.referer = "http://x/";
  r.user_agent = "curl/7.88.1";
  r.host = "localhost:8888";
  r.seconds = 0.0015;
  r.unix_time = 1795000000;  // 2026-11-18T11:06:40Z
  return r;
}

TEST(AccessLog, CommonAndCombined) {
  AccessRecord r = sample();
  EXPECT_EQ(format_access_line(r, AccessLogFormat::common),
            "127.0.0.1 - - [18/Nov/2026:11:06:40 +0000] \"GET /a?b=1 HTTP/1.1\" 200 1234\n");
  EXPECT_EQ(format_access_line(r, AccessLogFormat::combined),
            "127.0.0.1 - - [18/Nov/2026:11:06:40 +0000] \"GET /a?b=1 HTTP/1.1\" 200 1234 "
            "\"http://x/\" \"curl/7.88.1\"\n");
  r.bytes = 0;
  r.referer = "";
  EXPECT_EQ(format_access_line(r, AccessLogFormat::combined),
            "127.0.0.1 - - [18/Nov/2026:11:06:40 +0000] \"GET /a?b=1 HTTP/1.1\" 200 - "
            "\"-\" \"curl/7.88.1\"\n");
}

TEST(AccessLog, ClientBytesCannotForgeLines) {
  AccessRecord r = sample();
  r.user_agent = "x\"\n127.0.0.1 - - fake\\";
  std::string line = format_access_line(r, AccessLogFormat::combined);
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  EXPECT_NE(line.find("x\\x22\\x0A127.0.0.1 - - fake\\x5C"), std::string::npos) << line;
}

TEST(AccessLog, Json) {
  AccessRecord r = sample();
  r.user_agent = "a\"b\x01\xff";
  EXPECT_EQ(format_access_line(r, AccessLogFormat::json),
            "{\"time\":\"2026-11-18T11:06:40Z\",\"remote_addr\":\"127.0.0.1\",\"method\":\"GET\","
            "\"uri\":\"/a?b=1\",\"protocol\":\"HTTP/1.1\",\"status\":200,\"bytes\":1234,"
            "\"duration_ms\":1.500,\"host\":\"localhost:8888\",\"referer\":\"http://x/\","
            "\"user_agent\":\"a\\\"b\\u0001\\u00ff\",\"route\":\"\"}\n");
}

TEST(AccessLog, JsonNamesTheRouteAndTheUpstream) {
  AccessRecord r = sample();
  r.route = "api.example/v1/";
  std::string line = format_access_line(r, AccessLogFormat::json);
  EXPECT_NE(line.find(",\"route\":\"api.example/v1/\"}\n"), std::string::npos) << line;
  EXPECT_EQ(line.find("upstream"), std::string::npos) << line;

  r.upstream = "http://10.0.0.7:8080";
  r.upstream_seconds = 0.0125;
  line = format_access_line(r, AccessLogFormat::json);
  EXPECT_NE(line.find(",\"route\":\"api.example/v1/\",\"upstream\":\"http://10.0.0.7:8080\","
                      "\"upstream_ms\":12.500}\n"),
            std::string::npos)
      << line;

  // No whole response from it (refused, timed out): the time is null, not zero.
  r.upstream_seconds = -1;
  line = format_access_line(r, AccessLogFormat::json);
  EXPECT_NE(line.find("\"upstream_ms\":null}"), std::string::npos) << line;

  // The common formats stay as every analyser reads them.
  EXPECT_EQ(format_access_line(r, AccessLogFormat::common),
            "127.0.0.1 - - [18/Nov/2026:11:06:40 +0000] \"GET /a?b=1 HTTP/1.1\" 200 1234\n");
}

}  // namespace
}  // namespace tronada::cli
