#include "tronada/gateway/proxy_headers.h"

#include <gtest/gtest.h>

using namespace tronada;

namespace {

HTTPServerRequest make_request(std::string method = "GET", std::string uri = "/a/b?x=1") {
  HTTPServerRequest r;
  r.method = std::move(method);
  r.uri = std::move(uri);
  r.version = "HTTP/1.1";
  r.remote_ip = "192.0.2.7";
  r.headers.add("Host", "example.com");
  r.parse_target();
  return r;
}

bool has_line(const std::string& head, const std::string& line) {
  return head.find("\r\n" + line + "\r\n") != std::string::npos;
}

}  // namespace

TEST(ProxyHeaders, HopByHopNames) {
  for (const char* h :
       {"Connection", "keep-alive", "Proxy-Connection", "TE", "Trailer", "transfer-encoding",
        "Upgrade", "Proxy-Authorization", "Proxy-Authenticate"}) {
    EXPECT_TRUE(is_hop_by_hop(h)) << h;
  }
  for (const char* h : {"Host", "Cookie", "Content-Length", "X-Forwarded-For"}) {
    EXPECT_FALSE(is_hop_by_hop(h)) << h;
  }
}

TEST(ProxyHeaders, StripRemovesConnectionListedFields) {
  HTTPHeaders h;
  h.add("Connection", "close, X-Secret");
  h.add("X-Secret", "1");
  h.add("Keep-Alive", "timeout=5");
  h.add("Content-Type", "text/plain");
  strip_hop_by_hop(h);
  EXPECT_FALSE(h.contains("Connection"));
  EXPECT_FALSE(h.contains("X-Secret"));
  EXPECT_FALSE(h.contains("Keep-Alive"));
  EXPECT_TRUE(h.contains("Content-Type"));
}

TEST(ProxyHeaders, RequestHeadBasics) {
  HTTPServerRequest r = make_request();
  r.headers.add("Connection", "keep-alive, X-Drop");
  r.headers.add("X-Drop", "1");
  r.headers.add("Accept", "*/*");
  r.headers.add("Expect", "100-continue");
  r.headers.add("X-Forwarded-For", "203.0.113.9");  // forged: not trusted by default
  Upstream u = parse_upstream("http://backend:8080");
  std::string head = upstream_request_head(r, u, {}, UpstreamFraming::none);
  EXPECT_EQ(head.rfind("GET /a/b?x=1 HTTP/1.1\r\n", 0), 0u) << head;
  EXPECT_TRUE(has_line(head, "Host: example.com"));
  EXPECT_TRUE(has_line(head, "Accept: */*"));
  EXPECT_TRUE(has_line(head, "X-Forwarded-For: 192.0.2.7"));
  EXPECT_TRUE(has_line(head, "X-Forwarded-Proto: http"));
  EXPECT_TRUE(has_line(head, "X-Forwarded-Host: example.com"));
  EXPECT_TRUE(has_line(head, "Via: 1.1 tronada"));
  EXPECT_EQ(head.find("X-Drop"), std::string::npos);
  EXPECT_EQ(head.find("Connection"), std::string::npos);
  EXPECT_EQ(head.find("Expect"), std::string::npos);
  EXPECT_EQ(head.find("203.0.113.9"), std::string::npos);
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n");
}

TEST(ProxyHeaders, TrustedForwardedForIsExtended) {
  HTTPServerRequest r = make_request();
  r.headers.add("X-Forwarded-For", "203.0.113.9");
  ProxyHeaderOptions o;
  o.trust_forwarded = true;
  std::string head = upstream_request_head(r, parse_upstream("http://b"), o, UpstreamFraming::none);
  EXPECT_TRUE(has_line(head, "X-Forwarded-For: 203.0.113.9, 192.0.2.7")) << head;
  // With xheaders the server took remote_ip from the chain's end: not repeated.
  r.remote_ip = "203.0.113.9";
  head = upstream_request_head(r, parse_upstream("http://b"), o, UpstreamFraming::none);
  EXPECT_TRUE(has_line(head, "X-Forwarded-For: 203.0.113.9")) << head;
}

TEST(ProxyHeaders, UpstreamHostAndPrefix) {
  HTTPServerRequest r = make_request("GET", "/users/1");
  ProxyHeaderOptions o;
  o.preserve_host = false;
  std::string head =
      upstream_request_head(r, parse_upstream("http://api:9000/v2/"), o, UpstreamFraming::none);
  EXPECT_EQ(head.rfind("GET /v2/users/1 HTTP/1.1\r\n", 0), 0u) << head;
  EXPECT_TRUE(has_line(head, "Host: api:9000"));
}

TEST(ProxyHeaders, StripPrefix) {
  ProxyHeaderOptions o;
  o.strip_prefix = "/api/";
  auto line = [&](const char* uri) {
    HTTPServerRequest r = make_request("GET", uri);
    std::string head =
        upstream_request_head(r, parse_upstream("http://b"), o, UpstreamFraming::none);
    return head.substr(0, head.find("\r\n"));
  };
  EXPECT_EQ(line("/api/users?q=1"), "GET /users?q=1 HTTP/1.1");
  EXPECT_EQ(line("/api"), "GET / HTTP/1.1");
  EXPECT_EQ(line("/apiary"), "GET /apiary HTTP/1.1");
}

TEST(ProxyHeaders, Framing) {
  HTTPServerRequest r = make_request("POST", "/upload");
  r.headers.add("Content-Length", "12");
  Upstream u = parse_upstream("http://b");
  std::string head = upstream_request_head(r, u, {}, UpstreamFraming::content_length);
  EXPECT_TRUE(has_line(head, "Content-Length: 12"));
  EXPECT_EQ(head.find("Transfer-Encoding"), std::string::npos);

  HTTPServerRequest c = make_request("POST", "/upload");
  c.headers.add("Transfer-Encoding", "chunked");
  head = upstream_request_head(c, u, {}, UpstreamFraming::chunked);
  EXPECT_TRUE(has_line(head, "Transfer-Encoding: chunked"));
  EXPECT_EQ(head.find("Content-Length"), std::string::npos);
}

TEST(ProxyHeaders, CookiesJoinedAndHTTP2Via) {
  HTTPServerRequest r = make_request();
  r.version = "HTTP/2";
  r.protocol = "https";
  r.headers.add("Cookie", "a=1");
  r.headers.add("Cookie", "b=2");
  r.headers.add("Via", "1.0 edge");
  std::string head =
      upstream_request_head(r, parse_upstream("http://b"), {}, UpstreamFraming::none);
  EXPECT_TRUE(has_line(head, "Cookie: a=1; b=2")) << head;
  EXPECT_TRUE(has_line(head, "Via: 1.0 edge, 2 tronada")) << head;
  EXPECT_TRUE(has_line(head, "X-Forwarded-Proto: https"));
}

TEST(ProxyHeaders, UpgradeKeepsConnectionUpgrade) {
  HTTPServerRequest r = make_request("GET", "/ws");
  r.headers.add("Connection", "Upgrade");
  r.headers.add("Upgrade", "websocket");
  r.headers.add("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
  std::string head =
      upstream_request_head(r, parse_upstream("http://b"), {}, UpstreamFraming::none, "websocket");
  EXPECT_TRUE(has_line(head, "Connection: upgrade"));
  EXPECT_TRUE(has_line(head, "Upgrade: websocket"));
  EXPECT_TRUE(has_line(head, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="));
}

TEST(ProxyHeaders, DownstreamResponse) {
  HTTPHeaders h;
  h.add("Transfer-Encoding", "chunked");
  h.add("Connection", "keep-alive");
  h.add("Keep-Alive", "timeout=5");
  h.add("Set-Cookie", "a=1");
  h.add("Set-Cookie", "b=2");
  downstream_response_headers(h, 200);
  EXPECT_FALSE(h.contains("Transfer-Encoding"));
  EXPECT_FALSE(h.contains("Connection"));
  EXPECT_EQ(h.get_all("Set-Cookie").size(), 2u);

  HTTPHeaders u;
  u.add("Connection", "Upgrade");
  u.add("Upgrade", "websocket");
  u.add("Sec-WebSocket-Accept", "x");
  downstream_response_headers(u, 101);
  EXPECT_EQ(u.get("Upgrade").value_or(""), "websocket");
  EXPECT_EQ(u.get("Connection").value_or(""), "Upgrade");
  EXPECT_TRUE(u.contains("Sec-WebSocket-Accept"));
}
