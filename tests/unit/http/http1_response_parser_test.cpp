// HTTP1ResponseParser on its own: responses an upstream could send that must not reach a
// client we forward them to. The cases come from tests/fuzz/http1_response_fuzz.
#include "tronada/http/http1_response_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace tronada;

namespace {

struct Collect : HTTP1ResponseParser::Events {
  std::vector<HTTPResponseHead> heads;
  std::string body;
  bool complete = false;
  void on_head(HTTPResponseHead&& head) override { heads.push_back(std::move(head)); }
  void on_body(std::string_view chunk) override { body.append(chunk); }
  void on_complete() override { complete = true; }
};

}  // namespace

TEST(HTTP1ResponseParser, ParsesAResponseWithEmptyFieldValues) {
  Collect c;
  HTTP1ResponseParser p(c);
  std::string_view r = "HTTP/1.1 200 OK\r\nX-Empty:\r\nContent-Length: 2\r\nY:  \r\n\r\nhi";
  EXPECT_EQ(p.feed(r), r.size());
  ASSERT_FALSE(p.failed()) << p.error();
  ASSERT_TRUE(p.complete());
  ASSERT_EQ(c.heads.size(), 1u);
  EXPECT_EQ(c.heads[0].status, 200);
  EXPECT_EQ(c.heads[0].headers.get("X-Empty"), "");
  EXPECT_EQ(c.heads[0].headers.get("Y"), "");
  EXPECT_EQ(c.body, "hi");
}

TEST(HTTP1ResponseParser, RefusesAnEmptyFieldName) {
  Collect c;
  HTTP1ResponseParser p(c);
  p.feed("HTTP/1.1 200 OK\r\n: 13\r\nContent-Length: 0\r\n\r\n");
  EXPECT_TRUE(p.failed());
  EXPECT_TRUE(c.heads.empty());
}

TEST(HTTP1ResponseParser, RefusesAStatusBelow100) {
  for (std::string_view r : {"HTTP/1.1 0 OK\r\nContent-Length: 0\r\n\r\n",
                             "HTTP/1.1 99 Odd\r\nContent-Length: 0\r\n\r\n"}) {
    Collect c;
    HTTP1ResponseParser p(c);
    p.feed(r);
    EXPECT_TRUE(p.failed()) << r;
    EXPECT_TRUE(c.heads.empty()) << r;
  }
}
