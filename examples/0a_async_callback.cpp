// The tour's 0a_async_callback: an IOStream client in callback style. It connects,
// sends an HTTP/1.0 request, reads the headers with read_until, then the body with
// read_bytes (when Content-Length says how much) or a streaming read_until_close.
//
//   0a_async_callback http://127.0.0.1:8888/
#include <cstdio>
#include <cstdlib>
#include <string>

#include "example_args.h"
#include "tronada/net/tcp_client.h"

using namespace tronada;

namespace {

struct Url {
  std::string host = "127.0.0.1";
  int port = 8888;
  std::string path = "/";
};

Url parse_url(const std::string& text) {
  Url url;
  std::string rest = text;
  if (rest.rfind("http://", 0) == 0) rest = rest.substr(7);
  auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) url.path = rest.substr(slash);
  auto colon = authority.rfind(':');
  if (colon != std::string::npos) {
    url.host = authority.substr(0, colon);
    url.port = std::atoi(authority.c_str() + colon + 1);
  } else if (!authority.empty()) {
    url.host = authority;
    url.port = 80;
  }
  return url;
}

}  // namespace

int main(int argc, char** argv) {
  auto args = examples::parse_args(argc, argv);
  Url url = args.url.empty() ? Url{args.address, args.port, "/"} : parse_url(args.url);
  IOLoop& loop = IOLoop::current();
  TCPClient client;
  int exit_code = 1;

  Future<std::shared_ptr<IOStream>> connecting = client.connect(url.host, url.port);
  connecting.add_done_callback([&] {
    if (connecting.has_exception()) {
      try {
        connecting.result();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "connect failed: %s\n", e.what());
      }
      loop.stop();
      return;
    }
    std::shared_ptr<IOStream> stream = connecting.result();
    stream->set_close_callback([&] { loop.stop(); });
    stream->write("GET " + url.path + " HTTP/1.0\r\nHost: " + url.host + "\r\n\r\n", [] {});
    stream->read_until("\r\n\r\n", [&, stream](std::string headers) {
      std::printf("%s", headers.c_str());
      auto pos = headers.find("Content-Length: ");
      if (pos == std::string::npos) pos = headers.find("content-length: ");
      if (pos != std::string::npos) {
        std::size_t length = std::strtoul(headers.c_str() + pos + 16, nullptr, 10);
        stream->read_bytes(length, [&, stream](std::string body) {
          std::printf("%s\n", body.c_str());
          exit_code = 0;
          stream->close();
        });
      } else {
        // No length: the body ends when the server closes; print it as it arrives.
        stream->read_until_close(
            [&, stream](std::string) {
              std::printf("\n");
              exit_code = 0;
            },
            [](std::string_view piece) { std::fwrite(piece.data(), 1, piece.size(), stdout); });
      }
    }, 64 * 1024);
  });
  loop.start();
  return exit_code;
}
