#include "tronada/gateway/wsgi_environ.h"

#include <gtest/gtest.h>

#include "tronada/http/http_server_request.h"

namespace tronada {
namespace {

HTTPServerRequest make_request(std::string method, std::string uri) {
  HTTPServerRequest r;
  r.method = std::move(method);
  r.uri = std::move(uri);
  r.version = "HTTP/1.1";
  r.remote_ip = "127.0.0.1";
  r.headers.add("Host", "example.com:8080");
  EXPECT_TRUE(r.parse_target());
  return r;
}

std::string get(const WSGIEnviron& env, std::string_view key) {
  const std::string* v = env.find(key);
  return v ? *v : "<missing>";
}

TEST(WsgiEnviron, RequiredCgiKeys) {
  auto r = make_request("GET", "/a/b?x=1&y=%41");
  auto env = build_wsgi_environ(r, "", {});
  EXPECT_EQ(get(env, "REQUEST_METHOD"), "GET");
  EXPECT_EQ(get(env, "SCRIPT_NAME"), "");
  EXPECT_EQ(get(env, "PATH_INFO"), "/a/b");
  EXPECT_EQ(get(env, "QUERY_STRING"), "x=1&y=%41");  // raw
  EXPECT_EQ(get(env, "SERVER_NAME"), "example.com");
  EXPECT_EQ(get(env, "SERVER_PORT"), "8080");
  EXPECT_EQ(get(env, "SERVER_PROTOCOL"), "HTTP/1.1");
  EXPECT_EQ(get(env, "REMOTE_ADDR"), "127.0.0.1");
  EXPECT_EQ(get(env, "RAW_URI"), "/a/b?x=1&y=%41");
  EXPECT_EQ(env.find("CONTENT_TYPE"), nullptr);
  EXPECT_EQ(get(env, "HTTP_HOST"), "example.com:8080");
}

TEST(WsgiEnviron, PathIsPercentDecodedBytes) {
  auto r = make_request("GET", "/caf%C3%A9/a%2Fb/%zz/%4");
  auto env = build_wsgi_environ(r, "", {});
  // Bytes as they decode: the Python side turns them into latin-1 text (PEP 3333).
  EXPECT_EQ(get(env, "PATH_INFO"), "/caf\xC3\xA9/a/b/%zz/%4");
  EXPECT_EQ(decode_wsgi_path("a+b%20c%"), "a+b c%");
}

TEST(WsgiEnviron, MountPrefixBecomesScriptName) {
  auto r = make_request("GET", "/app/users/1");
  auto env = build_wsgi_environ(r, "/app", {});
  EXPECT_EQ(get(env, "SCRIPT_NAME"), "/app");
  EXPECT_EQ(get(env, "PATH_INFO"), "/users/1");

  auto root = make_request("GET", "/app");
  env = build_wsgi_environ(root, "/app", {});
  EXPECT_EQ(get(env, "SCRIPT_NAME"), "/app");
  EXPECT_EQ(get(env, "PATH_INFO"), "");

  // "/application" is not under "/app".
  auto other = make_request("GET", "/application");
  env = build_wsgi_environ(other, "/app", {});
  EXPECT_EQ(get(env, "SCRIPT_NAME"), "");
  EXPECT_EQ(get(env, "PATH_INFO"), "/application");
}

TEST(WsgiEnviron, HeadersBecomeHttpKeys) {
  auto r = make_request("POST", "/");
  r.headers.add("Content-Type", "text/plain");
  r.headers.add("Content-Length", "5");
  r.headers.add("X-Forwarded-For", "1.1.1.1");
  r.headers.add("X-Forwarded-For", "2.2.2.2");
  r.headers.add("Cookie", "a=1");
  r.headers.add("Cookie", "b=2");
  r.headers.add("X_Sneaky", "impersonates X-Sneaky");
  r.headers.add("accept-encoding", "gzip");
  auto env = build_wsgi_environ(r, "", {});
  EXPECT_EQ(get(env, "CONTENT_TYPE"), "text/plain");
  EXPECT_EQ(get(env, "CONTENT_LENGTH"), "5");
  EXPECT_EQ(env.find("HTTP_CONTENT_TYPE"), nullptr);
  EXPECT_EQ(env.find("HTTP_CONTENT_LENGTH"), nullptr);
  EXPECT_EQ(get(env, "HTTP_X_FORWARDED_FOR"), "1.1.1.1, 2.2.2.2");
  EXPECT_EQ(get(env, "HTTP_COOKIE"), "a=1; b=2");
  EXPECT_EQ(get(env, "HTTP_ACCEPT_ENCODING"), "gzip");
  EXPECT_EQ(env.find("HTTP_X_SNEAKY"), nullptr);
}

TEST(WsgiEnviron, ServerNameWithoutHostAndIpv6) {
  HTTPServerRequest r;
  r.method = "GET";
  r.uri = "/";
  r.version = "HTTP/1.0";
  ASSERT_TRUE(r.parse_target());
  WSGIServerInfo info;
  info.server_name = "10.0.0.1";
  info.server_port = "9000";
  auto env = build_wsgi_environ(r, "", info);
  EXPECT_EQ(get(env, "SERVER_NAME"), "10.0.0.1");
  EXPECT_EQ(get(env, "SERVER_PORT"), "9000");
  EXPECT_EQ(get(env, "SERVER_PROTOCOL"), "HTTP/1.0");

  auto v6 = make_request("GET", "/");
  v6.headers.set("Host", "[::1]:81");
  ASSERT_TRUE(v6.parse_target());
  env = build_wsgi_environ(v6, "", {});
  EXPECT_EQ(get(env, "SERVER_NAME"), "::1");
  EXPECT_EQ(get(env, "SERVER_PORT"), "81");

  auto noport = make_request("GET", "/");
  noport.headers.set("Host", "example.org");
  ASSERT_TRUE(noport.parse_target());
  env = build_wsgi_environ(noport, "", {});
  EXPECT_EQ(get(env, "SERVER_NAME"), "example.org");
  EXPECT_EQ(get(env, "SERVER_PORT"), "80");
}

}  // namespace
}  // namespace tronada
