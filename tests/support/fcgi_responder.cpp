// A FastCGI responder built on libfcgi (Debian's libfcgi-dev), a second implementation
// of the protocol for the integration tests besides php-fpm: it answers every request
// with its CGI parameters and body as text, over TCP.
//
// Usage: fcgi_responder --port N [--address A]   (listens on A:N, A 127.0.0.1 unless
// given; the X-Responder-Address header says which)
#include <fcgiapp.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

std::string param(FCGX_Request& req, const char* name) {
  const char* v = FCGX_GetParam(name, req.envp);
  return v ? v : "";
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  std::string listen_on = "127.0.0.1";
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--port") == 0) port = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--address") == 0) listen_on = argv[i + 1];
  }
  if (port <= 0) {
    std::fprintf(stderr, "usage: fcgi_responder --port N\n");
    return 2;
  }
  if (FCGX_Init() != 0) return 1;
  std::string address = listen_on + ":" + std::to_string(port);
  int sock = FCGX_OpenSocket(address.c_str(), 128);
  if (sock < 0) {
    std::fprintf(stderr, "cannot listen on %s\n", address.c_str());
    return 1;
  }
  FCGX_Request req;
  FCGX_InitRequest(&req, sock, 0);
  unsigned long served = 0;
  while (FCGX_Accept_r(&req) >= 0) {
    ++served;
    std::string body;
    long length = std::atol(param(req, "CONTENT_LENGTH").c_str());
    body.resize(length > 0 ? static_cast<std::size_t>(length) : 0);
    std::size_t got = 0;
    while (got < body.size()) {
      int n = FCGX_GetStr(body.data() + got, static_cast<int>(body.size() - got), req.in);
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    body.resize(got);
    std::string query = param(req, "QUERY_STRING");
    if (query.find("stderr") != std::string::npos) {
      FCGX_FPrintF(req.err, "libfcgi responder stderr marker\n");
    }
    std::string status = query.find("status=404") != std::string::npos ? "404 Not Found" : "200 OK";
    FCGX_FPrintF(req.out,
                 "Status: %s\r\nContent-Type: text/plain\r\nX-Responder: libfcgi\r\n"
                 "X-Responder-Address: %s\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n",
                 status.c_str(), listen_on.c_str());
    const char* names[] = {"REQUEST_METHOD", "SCRIPT_NAME",    "PATH_INFO",  "QUERY_STRING",
                           "REQUEST_URI",    "CONTENT_LENGTH", "HTTP_X_TEST"};
    for (const char* name : names) {
      FCGX_FPrintF(req.out, "%s=%s\n", name, param(req, name).c_str());
    }
    FCGX_FPrintF(req.out, "served=%lu\nbody_length=%lu\n", served,
                 static_cast<unsigned long>(body.size()));  // libfcgi has no %zu
    FCGX_PutStr(body.data(), static_cast<int>(body.size()), req.out);
    FCGX_Finish_r(&req);
  }
  return 0;
}
