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
  EXPECT_EQ(get(env, "SERVER_NAME"), "127.0.0.1");   // the socket's, not Host's
  EXPECT_EQ(get(env, "SERVER_PORT"), "8888");
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

TEST(WsgiEnviron, ServerNameAndPortNameTheSocketNotHost) {
  // The issue: Host: example.test:8080 made SERVER_NAME example.test and SERVER_PORT
  // 8080; gunicorn gives the address and port the request arrived on.
  auto r = make_request("GET", "/");
  r.headers.set("Host", "example.test:8080");
  ASSERT_TRUE(r.parse_target());
  WSGIServerInfo info;
  info.server_name = "10.0.0.1";
  info.server_port = "9000";
  auto env = build_wsgi_environ(r, "", info);
  EXPECT_EQ(get(env, "SERVER_NAME"), "10.0.0.1");
  EXPECT_EQ(get(env, "SERVER_PORT"), "9000");
  EXPECT_EQ(get(env, "HTTP_HOST"), "example.test:8080");

  // No Host at all (HTTP/1.0): the same.
  HTTPServerRequest old;
  old.method = "GET";
  old.uri = "/";
  old.version = "HTTP/1.0";
  ASSERT_TRUE(old.parse_target());
  env = build_wsgi_environ(old, "", info);
  EXPECT_EQ(get(env, "SERVER_NAME"), "10.0.0.1");
  EXPECT_EQ(get(env, "SERVER_PORT"), "9000");
  EXPECT_EQ(get(env, "SERVER_PROTOCOL"), "HTTP/1.0");

  // IPv6 as gunicorn has it: the bare address.
  WSGIServerInfo v6;
  v6.server_name = "::1";
  v6.server_port = "81";
  env = build_wsgi_environ(r, "", v6);
  EXPECT_EQ(get(env, "SERVER_NAME"), "::1");
  EXPECT_EQ(get(env, "SERVER_PORT"), "81");
}

TEST(WsgiEnviron, ServerNameOverAUnixSocketIsGunicorns) {
  WSGIServerInfo sock;
  sock.server_name = "/run/app.sock";
  sock.server_port = "";
  sock.unix_socket = true;
  // With Host: its name and port, the port defaulting by scheme.
  auto r = make_request("GET", "/");
  r.headers.set("Host", "example.test:8080");
  ASSERT_TRUE(r.parse_target());
  auto env = build_wsgi_environ(r, "", sock);
  EXPECT_EQ(get(env, "SERVER_NAME"), "example.test");
  EXPECT_EQ(get(env, "SERVER_PORT"), "8080");
  r.headers.set("Host", "example.test");
  ASSERT_TRUE(r.parse_target());
  EXPECT_EQ(get(build_wsgi_environ(r, "", sock), "SERVER_PORT"), "80");
  r.protocol = "https";
  EXPECT_EQ(get(build_wsgi_environ(r, "", sock), "SERVER_PORT"), "443");
  r.headers.set("Host", "[::1]:81");  // gunicorn's split at ':' would give "["
  ASSERT_TRUE(r.parse_target());
  env = build_wsgi_environ(r, "", sock);
  EXPECT_EQ(get(env, "SERVER_NAME"), "::1");
  EXPECT_EQ(get(env, "SERVER_PORT"), "81");

  // Without Host: the socket's path and an empty port.
  HTTPServerRequest old;
  old.method = "GET";
  old.uri = "/";
  old.version = "HTTP/1.0";
  ASSERT_TRUE(old.parse_target());
  env = build_wsgi_environ(old, "", sock);
  EXPECT_EQ(get(env, "SERVER_NAME"), "/run/app.sock");
  EXPECT_EQ(get(env, "SERVER_PORT"), "");
}

TEST(WsgiEnviron, ServerInfoFromTheConnection) {
  auto r = make_request("GET", "/");
  WSGIServerInfo fallback;
  fallback.server_name = "fallback";
  // No connection (or one that cannot say): the fallback.
  EXPECT_EQ(wsgi_server_info(r, fallback).server_name, "fallback");
}

}  // namespace
}  // namespace tronada
