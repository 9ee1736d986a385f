#include "tronada/testing/test_server.h"

#include <stdexcept>

#include "tronada/async/run_sync.h"
#include "tronada/net/tcp_client.h"

namespace tronada::testing {

namespace {

struct Collector : HTTP1ResponseParser::Events {
  Response response;
  void on_head(HTTPResponseHead&& head) override {
    response.status = head.status;
    response.headers = std::move(head.headers);
  }
  void on_body(std::string_view chunk) override { response.body.append(chunk); }
  void on_complete() override {}
};

Task<std::string> exchange(int port, std::string bytes) {
  TCPClient client;
  Future<std::shared_ptr<IOStream>> connecting = client.connect("127.0.0.1", port);
  std::shared_ptr<IOStream> stream = co_await connecting;
  Future<void> sent = stream->write(std::move(bytes));
  co_await sent;
  Future<std::string> all = stream->read_until_close();
  std::string data = co_await all;
  co_return data;
}

}  // namespace

TestServer::TestServer(std::unique_ptr<Application> app, HTTPServerOptions options)
    : loop_(std::make_unique<IOLoop>()), app_(std::move(app)) {
  loop_->make_current();
  server_ = &app_->listen(0, "127.0.0.1", std::move(options));
  port_ = server_->ports().at(0);
}

TestServer::~TestServer() {
  app_.reset();  // closes the server and its connections
  loop_->close();
}

std::string TestServer::url(std::string_view path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
}

Response TestServer::fetch(std::string_view path) {
  Request r;
  r.path = std::string(path);
  return fetch(r);
}

std::string TestServer::fetch_raw(std::string_view bytes, std::chrono::milliseconds timeout) {
  int port = port_;
  std::string copy(bytes);
  return run_sync([port, copy]() { return exchange(port, copy); }, timeout);
}

Response TestServer::fetch(const Request& request, std::chrono::milliseconds timeout) {
  std::string wire = request.method + " " + request.path + " HTTP/1.1\r\n";
  bool has_host = false, has_length = false;
  for (const auto& f : request.headers) {
    wire += f.name + ": " + f.value + "\r\n";
    if (f.name == "Host") has_host = true;
    if (f.name == "Content-Length" || f.name == "Transfer-Encoding") has_length = true;
  }
  if (!has_host) wire += "Host: 127.0.0.1:" + std::to_string(port_) + "\r\n";
  if (!has_length && (!request.body.empty() || request.method == "POST" ||
                      request.method == "PUT" || request.method == "PATCH")) {
    wire += "Content-Length: " + std::to_string(request.body.size()) + "\r\n";
  }
  wire += "Connection: close\r\n\r\n";
  wire += request.body;
  std::string raw = fetch_raw(wire, timeout);
  Collector collector;
  HTTP1ResponseParser parser(collector);
  if (request.method == "HEAD") parser.expect_no_body();
  parser.feed(raw);
  parser.finish_eof();
  if (!parser.complete()) {
    throw std::runtime_error("incomplete or malformed response: " + parser.error() + "\n" + raw);
  }
  return std::move(collector.response);
}

}  // namespace tronada::testing
