#include "tronada/gateway/cgi_response.h"

#include <gtest/gtest.h>

using namespace tronada;

namespace {

CGIResponse parse_all(std::string_view text, std::size_t step, std::string* body = nullptr) {
  CGIResponseParser p;
  std::size_t i = 0;
  while (i < text.size() && !p.done()) {
    std::string_view piece = text.substr(i, step);
    std::size_t used = p.feed(piece);
    i += used;
    if (used < piece.size()) break;
  }
  p.finish();
  if (body) *body = std::string(text.substr(i));
  return p.response();
}

}  // namespace

TEST(CGIResponse, DocumentWithStatusAndCookies) {
  std::string text =
      "Status: 201 Created\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\n"
      "Set-Cookie: b=2; Path=/\r\nX-Powered-By: PHP\r\n\r\nbody\r\n\r\nmore";
  for (std::size_t step : {text.size(), std::size_t(1), std::size_t(7)}) {
    std::string body;
    auto r = parse_all(text, step, &body);
    EXPECT_EQ(r.kind, CGIResponse::Kind::document);
    EXPECT_EQ(r.status, 201);
    EXPECT_EQ(r.reason, "Created");
    EXPECT_EQ(r.headers.get("Content-Type"), "text/plain");
    auto cookies = r.headers.get_all("Set-Cookie");
    ASSERT_EQ(cookies.size(), 2u);
    EXPECT_EQ(cookies[0], "a=1");
    EXPECT_EQ(cookies[1], "b=2; Path=/");
    EXPECT_FALSE(r.headers.contains("Status"));
    EXPECT_EQ(body, "body\r\n\r\nmore");
  }
}

TEST(CGIResponse, BareLineFeedsAndDefaultStatus) {
  std::string body;
  auto r = parse_all("Content-type: text/html\n\nhi", 100, &body);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(body, "hi");
}

TEST(CGIResponse, LocalRedirect) {
  auto r = parse_all("Location: /other?x=1\r\n\r\n", 100);
  EXPECT_EQ(r.kind, CGIResponse::Kind::local_redirect);
  EXPECT_EQ(r.location, "/other?x=1");
}

TEST(CGIResponse, ClientRedirects) {
  auto r = parse_all("Location: https://example.com/\r\n\r\n", 100);
  EXPECT_EQ(r.kind, CGIResponse::Kind::client_redirect);
  EXPECT_EQ(r.status, 302);
  EXPECT_EQ(r.headers.get("Location"), "https://example.com/");
  // PHP's header('Location: /x') comes with a Status and a Content-type: a client redirect.
  auto php = parse_all(
      "Status: 301 Moved Permanently\r\nLocation: /x\r\nContent-type: text/html\r\n\r\n", 100);
  EXPECT_EQ(php.kind, CGIResponse::Kind::client_redirect);
  EXPECT_EQ(php.status, 301);
  auto typed = parse_all("Location: /x\r\nContent-type: text/html\r\n\r\n", 100);
  EXPECT_EQ(typed.kind, CGIResponse::Kind::client_redirect);
  EXPECT_EQ(typed.status, 302);
}

TEST(CGIResponse, HopByHopDropped) {
  auto r = parse_all("Connection: close\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n", 100);
  EXPECT_FALSE(r.headers.contains("Connection"));
  EXPECT_FALSE(r.headers.contains("Transfer-Encoding"));
  EXPECT_EQ(r.headers.size(), 1u);
}

TEST(CGIResponse, MalformedTable) {
  const char* cases[] = {
      "no colon here\r\n\r\n",
      ": empty name\r\n\r\n",
      "Bad Name: x\r\n\r\n",
      "X-A: 1\r\n folded\r\n\r\n",
      "Status: abc\r\n\r\n",
      "Status: 20\r\n\r\n",
      "Status: 2000\r\n\r\n",
      "Status: 099 Low\r\n\r\n",
      "Status: 200\r\nStatus: 404\r\n\r\n",
      "Location: /a\r\nLocation: /b\r\n\r\n",
      "X-A: a\rb\r\n\r\n",
      "Content-Type: text/plain\r\n",  // ends inside the block
      "",
  };
  for (const char* text : cases) {
    for (std::size_t step : {std::size_t(1), std::size_t(1000)}) {
      EXPECT_THROW(parse_all(text, step), CGIResponseError) << text;
    }
  }
  std::string nul("X-A: a\0b\r\n\r\n", 12);
  EXPECT_THROW(parse_all(nul, 100), CGIResponseError);
}

TEST(CGIResponse, HeaderBlockLimit) {
  CGIResponseParser p(100);
  EXPECT_THROW(p.feed("X-A: " + std::string(200, 'a')), CGIResponseError);
  CGIResponseParser ok(100);
  EXPECT_NO_THROW(ok.feed("X-A: b\r\n\r\n" + std::string(1000, 'x')));
  EXPECT_TRUE(ok.done());
}
