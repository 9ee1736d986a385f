#include "cli/admin_server.h"

#include <gtest/gtest.h>

namespace tronada::cli {
namespace {

TEST(AdminRequest, ParsesRequestLineAndAccept) {
  auto r = parse_admin_request(
      "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: application/openmetrics-text\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->method, "GET");
  EXPECT_EQ(r->path, "/metrics");
  EXPECT_EQ(r->accept, "application/openmetrics-text");
  auto lf = parse_admin_request("HEAD /readyz HTTP/1.0\n\n");
  ASSERT_TRUE(lf);
  EXPECT_EQ(lf->method, "HEAD");
}

TEST(AdminRequest, RejectsMalformedHeads) {
  for (const char* bad :
       {"", "GET /metrics", "GET /metrics HTTP/1.1", "GET\r\n\r\n", "GET  HTTP/1.1\r\n\r\n",
        "get /metrics HTTP/1.1\r\n\r\n", "GET metrics HTTP/1.1\r\n\r\n",
        "GET /metrics HTTP/2.0\r\n\r\n", "GET /metrics HTTP/1.1\r\nno colon\r\n\r\n",
        "GET /metrics HTTP/1.1\r\n: empty name\r\n\r\n", "\x01\x02 / HTTP/1.1\r\n\r\n"}) {
    EXPECT_FALSE(parse_admin_request(bad)) << bad;
  }
}

TEST(AdminAnswer, StatusPerPathAndState) {
  auto region = metrics::SharedRegion::create(1);
  auto get = [&](const char* path, const char* method = "GET") {
    return answer_admin(AdminRequest{method, path, ""}, *region);
  };
  // No serving process yet: alive, not ready.
  EXPECT_EQ(get("/healthz").rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(get("/readyz").rfind("HTTP/1.1 503", 0), 0u);
  ASSERT_TRUE(region->attach());
  region->own()->ready.store(1);
  EXPECT_EQ(get("/readyz").rfind("HTTP/1.1 200", 0), 0u);
  region->own()->draining.store(1);
  std::string draining = get("/readyz");
  EXPECT_EQ(draining.rfind("HTTP/1.1 503", 0), 0u);
  EXPECT_NE(draining.find("draining"), std::string::npos);
  EXPECT_EQ(get("/nope").rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(get("/metrics", "POST").rfind("HTTP/1.1 405", 0), 0u);
  EXPECT_EQ(answer_admin(std::nullopt, *region).rfind("HTTP/1.1 400", 0), 0u);
  std::string head = get("/metrics", "HEAD");
  EXPECT_EQ(head.rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n");  // no body
  std::string metrics = get("/metrics");
  EXPECT_NE(metrics.find("text/plain; version=0.0.4"), std::string::npos);
  EXPECT_NE(metrics.find("process_open_fds "), std::string::npos);
}

}  // namespace
}  // namespace tronada::cli
