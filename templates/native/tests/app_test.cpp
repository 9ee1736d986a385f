// Tests against the real application on a free port, with tronada::testing's TestServer.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <tronada/testing/test_server.h>

#include "app.h"

using tronada::testing::Request;
using tronada::testing::TestServer;

TEST(App, HelloAnswersJSON) {
  TestServer server({{name}}::make_app(STATIC_DIR));
  auto r = server.fetch("/api/hello?name=tests");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(nlohmann::json::parse(r.body)["message"], "Hello, tests!");
}

TEST(App, EchoReturnsTheBody) {
  TestServer server({{name}}::make_app(STATIC_DIR));
  Request request;
  request.method = "POST";
  request.path = "/api/echo";
  request.headers.add("Content-Type", "application/json");
  request.body = R"({"n": 1})";
  auto r = server.fetch(request);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(nlohmann::json::parse(r.body)["received"]["n"], 1);
}

TEST(App, EchoRefusesBrokenJSON) {
  TestServer server({{name}}::make_app(STATIC_DIR));
  Request request;
  request.method = "POST";
  request.path = "/api/echo";
  request.body = "{not json";
  EXPECT_EQ(server.fetch(request).status, 400);
}

TEST(App, UnknownPathIs404) {
  TestServer server({{name}}::make_app(STATIC_DIR));
  EXPECT_EQ(server.fetch("/no/such/page").status, 404);
}

TEST(App, ServesStaticFiles) {
  TestServer server({{name}}::make_app(STATIC_DIR));
  auto r = server.fetch("/static/app.js");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("WebSocket"), std::string::npos);
}
