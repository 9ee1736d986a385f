// tronada::testing: start an Application on an ephemeral port and fetch from it, as
// Tornado's AsyncHTTPTestCase does. Public, because scaffolded apps test with it too.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "tronada/http/http1_response_parser.h"
#include "tronada/web/application.h"

namespace tronada::testing {

/// A response as the test sees it.
struct Response {
  int status = 0;
  HTTPHeaders headers;
  std::string body;
};

/// A request for fetch().
struct Request {
  std::string method = "GET";
  std::string path = "/";
  HTTPHeaders headers;
  std::string body;
};

/// Owns an IOLoop made current for the test and an Application listening on
/// 127.0.0.1 on a free port. fetch() runs the loop until the response is complete (or
/// the timeout passes), so tests read top to bottom:
///
///   TestServer server(Application({Rule("/", handler<Hello>())}));
///   auto r = server.fetch("/");
///   EXPECT_EQ(r.status, 200);
class TestServer {
 public:
  explicit TestServer(std::unique_ptr<Application> app, HTTPServerOptions options = {});
  ~TestServer();

  Application& app() { return *app_; }
  IOLoop& loop() { return *loop_; }
  int port() const { return port_; }
  std::string url(std::string_view path) const;

  Response fetch(std::string_view path);
  Response fetch(const Request& request,
                 std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// Sends raw bytes on a fresh connection and returns everything the server sent
  /// until it closed (or the timeout). For malformed-request tests.
  std::string fetch_raw(std::string_view bytes,
                        std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  std::unique_ptr<IOLoop> loop_;
  std::unique_ptr<Application> app_;
  HTTPServer* server_ = nullptr;
  int port_ = 0;
};

}  // namespace tronada::testing
