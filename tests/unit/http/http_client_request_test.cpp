#include "tronada/http/http_client_request.h"

#include <gtest/gtest.h>

#include "tronada/http/connection_pool.h"

using namespace tronada;

namespace {

std::string head_of(const HTTPRequest& r, std::string_view method = "", std::size_t body = 0,
                    BodyFraming* framing = nullptr) {
  std::string out;
  BodyFraming f = serialize_request_head(r, parse_client_url(r.url),
                                         method.empty() ? std::string_view(r.method) : method,
                                         body ? body : (r.body ? r.body->size() : 0), "ua/1", out);
  if (framing) *framing = f;
  return out;
}

}  // namespace

TEST(HTTPClientURL, ParsesSchemesHostsPortsAndPaths) {
  ClientURL u = parse_client_url("http://Example.COM/a/b?x=1#frag");
  EXPECT_EQ(u.scheme, "http");
  EXPECT_EQ(u.host, "example.com");
  EXPECT_EQ(u.port, 80);
  EXPECT_EQ(u.path, "/a/b?x=1");
  EXPECT_EQ(u.host_header(), "example.com");

  u = parse_client_url("https://h:8443");
  EXPECT_EQ(u.port, 8443);
  EXPECT_EQ(u.path, "/");
  EXPECT_TRUE(u.tls());
  EXPECT_EQ(u.host_header(), "h:8443");
  EXPECT_EQ(parse_client_url("https://h:443/").host_header(), "h");

  u = parse_client_url("http://[::1]:9000?q");
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, 9000);
  EXPECT_EQ(u.path, "/?q");
  EXPECT_EQ(u.host_header(), "[::1]:9000");
  EXPECT_EQ(u.to_string(), "http://[::1]:9000/?q");

  u = parse_client_url("http://us%40er:p%3Ass@h/");
  EXPECT_EQ(u.username, "us@er");
  EXPECT_EQ(u.password, "p:ss");
  EXPECT_EQ(u.to_string(), "http://h/");

  u = parse_client_url("http+unix://%2Ftmp%2Fapp.sock/status");
  EXPECT_EQ(u.unix_path, "/tmp/app.sock");
  EXPECT_EQ(u.path, "/status");
  EXPECT_EQ(u.to_string(), "http+unix://%2Ftmp%2Fapp.sock/status");
}

TEST(HTTPClientURL, RejectsBadURLs) {
  for (const char* bad :
       {"example.com/", "ftp://h/", "http:///x", "http://h:0/", "http://h:99999/", "http://h:8a/",
        "http://h/a b", "http://h/\r\nX: y", "http://[::1/", "http://h:/"}) {
    EXPECT_THROW(parse_client_url(bad), std::invalid_argument) << bad;
  }
}

TEST(HTTPClientURL, ResolvesRedirects) {
  ClientURL base = parse_client_url("http://h:81/a/b/c?q=1");
  EXPECT_EQ(resolve_redirect(base, "https://other/x"), "https://other/x");
  EXPECT_EQ(resolve_redirect(base, "//other:82/y"), "http://other:82/y");
  EXPECT_EQ(resolve_redirect(base, "/root?z"), "http://h:81/root?z");
  EXPECT_EQ(resolve_redirect(base, "d"), "http://h:81/a/b/d");
  EXPECT_EQ(resolve_redirect(base, "../d?k=v"), "http://h:81/a/d?k=v");
  EXPECT_EQ(resolve_redirect(base, "./"), "http://h:81/a/b/");
  EXPECT_EQ(resolve_redirect(base, "../../../../x"), "http://h:81/x");
  EXPECT_EQ(resolve_redirect(base, "?n=2"), "http://h:81/a/b/c?n=2");
  EXPECT_EQ(resolve_redirect(base, "/a/./b/../c"), "http://h:81/a/c");
  EXPECT_THROW(resolve_redirect(base, "gopher://x/"), std::invalid_argument);
}

TEST(HTTPClientRequest, SerializesAGetWithDefaults) {
  HTTPRequest r("http://h:8080/p?q=1");
  BodyFraming framing;
  EXPECT_EQ(head_of(r, "", 0, &framing),
            "GET /p?q=1 HTTP/1.1\r\nHost: h:8080\r\nUser-Agent: ua/1\r\n"
            "Accept-Encoding: gzip\r\n\r\n");
  EXPECT_EQ(framing, BodyFraming::none);
}

TEST(HTTPClientRequest, UserHeadersWinOverDefaults) {
  HTTPRequest r("http://h/");
  r.headers.add("Host", "virtual");
  r.headers.add("User-Agent", "mine");
  r.headers.add("Accept-Encoding", "identity");
  r.headers.add("X-Many", "1");
  r.headers.add("X-Many", "2");
  r.user_agent = "ignored";
  EXPECT_EQ(head_of(r),
            "GET / HTTP/1.1\r\nHost: virtual\r\nUser-Agent: mine\r\nAccept-Encoding: identity\r\n"
            "X-Many: 1\r\nX-Many: 2\r\n\r\n");
}

TEST(HTTPClientRequest, BodiesGetContentLengthOrChunked) {
  HTTPRequest post("http://h/", "POST");
  post.decompress_response = false;
  post.body = "abc";
  BodyFraming framing;
  EXPECT_EQ(head_of(post, "", 0, &framing),
            "POST / HTTP/1.1\r\nHost: h\r\nUser-Agent: ua/1\r\nContent-Length: 3\r\n\r\n");
  EXPECT_EQ(framing, BodyFraming::content_length);

  HTTPRequest empty_put("http://h/", "PUT");
  empty_put.decompress_response = false;
  EXPECT_NE(head_of(empty_put).find("Content-Length: 0\r\n"), std::string::npos);

  HTTPRequest streamed("http://h/", "POST");
  streamed.body_producer = [](BodyWriter) { return make_ready_future<void>(); };
  EXPECT_NE(head_of(streamed, "", 0, &framing).find("Transfer-Encoding: chunked\r\n"),
            std::string::npos);
  EXPECT_EQ(framing, BodyFraming::chunked);

  streamed.headers.add("Content-Length", "10");
  std::string head = head_of(streamed, "", 0, &framing);
  EXPECT_EQ(head.find("Transfer-Encoding"), std::string::npos);
  EXPECT_EQ(framing, BodyFraming::content_length);
}

TEST(HTTPClientRequest, BasicAuthFromFieldsOrURL) {
  HTTPRequest r("http://u:p@h/");
  EXPECT_NE(head_of(r).find("Authorization: Basic dTpw\r\n"), std::string::npos);
  r.auth_username = "Aladdin";
  r.auth_password = "open sesame";
  EXPECT_NE(head_of(r).find("Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n"),
            std::string::npos);
}

TEST(HTTPClientRequest, RejectsInjection) {
  HTTPRequest r("http://h/");
  r.headers.add("X-Evil", "a\r\nInjected: 1");
  EXPECT_THROW(head_of(r), std::invalid_argument);
  HTTPRequest m("http://h/", "GET /x");
  EXPECT_THROW(head_of(m), std::invalid_argument);
  HTTPRequest n("http://h/");
  n.headers.add("Bad Name", "v");
  EXPECT_THROW(head_of(n), std::invalid_argument);
}

TEST(HTTPClientRequest, IdempotentMethods) {
  EXPECT_TRUE(is_idempotent_method("GET"));
  EXPECT_TRUE(is_idempotent_method("PUT"));
  EXPECT_FALSE(is_idempotent_method("POST"));
  EXPECT_FALSE(is_idempotent_method("PATCH"));
}

TEST(HTTPClientEndpoint, KeysSeparateWhatMustNotShareConnections) {
  Endpoint a{"http", "h", 80, "", nullptr, ""};
  Endpoint b = a;
  EXPECT_EQ(a.key(), b.key());
  b.port = 81;
  EXPECT_NE(a.key(), b.key());
  b = a;
  b.scheme = "https";
  EXPECT_NE(a.key(), b.key());
  b = a;
  b.unix_path = "/s";
  EXPECT_NE(a.key(), b.key());
  EXPECT_EQ(a.describe(), "h:80");
  Endpoint v6{"http", "::1", 8, "", nullptr, ""};
  EXPECT_EQ(v6.describe(), "[::1]:8");
}
