// WSGIContainer with CPython embedded: each test runs in its own process under ctest
// (CPython starts once per process); run together, they share one interpreter.
#include "tronada/gateway/wsgi_container.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "tronada/gateway/wsgi_interpreter.h"
#include "tronada/testing/test_server.h"

namespace tronada {
namespace {

using testing::Request;
using testing::TestServer;

// A module written to a fresh directory, so every test imports its own code.
std::shared_ptr<WSGIApplication> load_app(const std::string& module, const std::string& code,
                                          WSGIOptions options = {}) {
  auto dir =
      std::filesystem::temp_directory_path() / ("tronada-wsgi-test-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / (module + ".py")) << code;
  options.python_path.push_back(dir.string());
  return WSGIApplication::load(module + ":application", options);
}

const char kEchoApp[] = R"(
import json
closed = []

class Body:
    def __init__(self, data):
        self.data = data
    def __iter__(self):
        yield self.data
    def close(self):
        closed.append(1)

def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/environ':
        keys = {k: environ[k] for k in ('SCRIPT_NAME', 'PATH_INFO', 'QUERY_STRING',
                'REQUEST_METHOD', 'SERVER_PROTOCOL', 'wsgi.url_scheme')}
        keys['version'] = list(environ['wsgi.version'])
        keys['input_terminated'] = environ['wsgi.input_terminated']
        body = json.dumps(keys, sort_keys=True).encode()
        start_response('200 OK', [('Content-Type', 'application/json')])
        return [body]
    if path == '/echo':
        data = environ['wsgi.input'].read()
        start_response('201 Created', [('Content-Type', 'application/octet-stream')])
        return Body(data)
    if path == '/lines':
        lines = list(environ['wsgi.input'])
        start_response('200 OK', [])
        return [str(len(lines)).encode(), b':', lines[-1] if lines else b'']
    if path == '/write':
        write = start_response('200 OK', [('Content-Type', 'text/plain')])
        write(b'one,')
        write(b'two,')
        return iter([b'three'])
    if path == '/stream':
        start_response('200 OK', [])
        return (b'%d;' % i for i in range(1000))
    if path == '/raise':
        raise RuntimeError('boom')
    if path == '/closed':
        start_response('200 OK', [])
        return [str(len(closed)).encode()]
    if path == '/no-start':
        return [b'x']
    if path.startswith('/latin1'):
        start_response('200 OK', [])
        return [environ['PATH_INFO'].encode('latin-1')]
    start_response('404 Not Found', [('Content-Type', 'text/plain')])
    return [b'not found']
)";

TEST(WsgiContainer, EnvironThroughTheMount) {
  auto app = load_app("echo_env", kEchoApp);
  TestServer server(std::make_unique<Application>(std::vector<Rule>{wsgi_rule("/app", app)}));
  auto r = server.fetch("/app/environ?a=%20b");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body,
            R"({"PATH_INFO": "/environ", "QUERY_STRING": "a=%20b", "REQUEST_METHOD": "GET", )"
            R"("SCRIPT_NAME": "/app", "SERVER_PROTOCOL": "HTTP/1.1", "input_terminated": true, )"
            R"("version": [1, 0], "wsgi.url_scheme": "http"})");
  EXPECT_EQ(r.headers.get("Content-Length").value_or(""), std::to_string(r.body.size()));
  EXPECT_EQ(server.fetch("/elsewhere").status, 404);  // not under the mount
}

TEST(WsgiContainer, RequestBodyAndClose) {
  auto app = load_app("echo_body", kEchoApp);
  TestServer server(std::make_unique<Application>(std::vector<Rule>{wsgi_rule("", app)}));
  Request req;
  req.method = "POST";
  req.path = "/echo";
  req.body = std::string(300000, 'z');
  auto r = server.fetch(req);
  ASSERT_EQ(r.status, 201);
  EXPECT_EQ(r.body, req.body);
  req.path = "/lines";
  req.body = "a\nb\nlast";
  r = server.fetch(req);
  EXPECT_EQ(r.body, "3:last");
  EXPECT_EQ(server.fetch("/closed").body, "1");  // Body.close() ran once
}

TEST(WsgiContainer, WriteCallableAndStreaming) {
  auto app = load_app("echo_write", kEchoApp);
  TestServer server(std::make_unique<Application>(std::vector<Rule>{wsgi_rule("", app)}));
  auto r = server.fetch("/write");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "one,two,three");
  r = server.fetch("/stream");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body.substr(0, 6), "0;1;2;");
  EXPECT_EQ(r.body.size(), 3890u);
}

TEST(WsgiContainer, AppErrorsBecome500AndTheServerGoesOn) {
  auto app = load_app("echo_err", kEchoApp);
  TestServer server(std::make_unique<Application>(std::vector<Rule>{wsgi_rule("", app)}));
  EXPECT_EQ(server.fetch("/raise").status, 500);
  EXPECT_EQ(server.fetch("/no-start").status, 500);
  EXPECT_EQ(server.fetch("/environ").status, 200);
}

// Answers with the status given (percent-encoded, latin-1) in the query string.
const char kStatusApp[] = R"(
from urllib.parse import unquote

def application(environ, start_response):
    start_response(unquote(environ['QUERY_STRING'], encoding='latin-1'),
                   [('Content-Type', 'text/plain'), ('Content-Length', '1')])
    return [b'x']
)";

std::string status_line(TestServer& server, const std::string& query) {
  std::string raw =
      server.fetch_raw("GET /?" + query + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  return raw.substr(0, raw.find("\r\n"));
}

TEST(WsgiContainer, StatusLineCarriesTheAppsReasonPhrase) {
  auto app = load_app("status_reason", kStatusApp);
  TestServer server(std::make_unique<Application>(std::vector<Rule>{wsgi_rule("", app)}));
  EXPECT_EQ(status_line(server, "418%20I'm%20a%20teapot"), "HTTP/1.1 418 I'm a teapot");
  EXPECT_EQ(status_line(server, "299%20Kit%20Custom"), "HTTP/1.1 299 Kit Custom");
  EXPECT_EQ(status_line(server, "200%20Fine%20Thanks"), "HTTP/1.1 200 Fine Thanks");
  EXPECT_EQ(status_line(server, "200%20OK"), "HTTP/1.1 200 OK");
  EXPECT_EQ(status_line(server, "404%20Gone%09Fishing"), "HTTP/1.1 404 Gone\tFishing");
  EXPECT_EQ(status_line(server, "200%20Caf%E9"), "HTTP/1.1 200 Caf\xE9");  // obs-text
  // As given, even an odd one: clients act on the code.
  EXPECT_EQ(status_line(server, "503%20%20Two%20spaces"), "HTTP/1.1 503  Two spaces");
  EXPECT_EQ(status_line(server, "200%20"), "HTTP/1.1 200 ");  // RFC 9112 allows it empty
}

TEST(WsgiContainer, ReasonPhraseWithControlCharactersIs500) {
  auto app = load_app("status_ctl", kStatusApp);
  TestServer server(std::make_unique<Application>(std::vector<Rule>{wsgi_rule("", app)}));
  for (const char* bad : {"200%20OK%0D%0AX-Injected:%201", "200%20OK%0A", "200%20O%00K",
                          "200%20OK%01", "200%20OK%7F", "200%20OK%1B[31m"}) {
    std::string raw = server.fetch_raw("GET /?" + std::string(bad) +
                                       " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(raw.substr(0, raw.find("\r\n")), "HTTP/1.1 500 Internal Server Error") << bad;
    EXPECT_EQ(raw.find("X-Injected"), std::string::npos) << bad;
  }
  EXPECT_EQ(status_line(server, "200%20OK"), "HTTP/1.1 200 OK");  // the worker goes on
}

TEST(WsgiContainer, ServerNameAndPortNameTheListeningSocket) {
  auto app = load_app("server_facts", R"(
def application(environ, start_response):
    start_response('200 OK', [])
    return [('%s %s' % (environ['SERVER_NAME'], environ['SERVER_PORT'])).encode()]
)");
  TestServer server(std::make_unique<Application>(std::vector<Rule>{wsgi_rule("", app)}));
  std::string raw =
      server.fetch_raw("GET / HTTP/1.1\r\nHost: example.test:8080\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(raw.substr(raw.find("\r\n\r\n") + 4), "127.0.0.1 " + std::to_string(server.port()));
}

TEST(WsgiContainer, PathInfoIsLatin1Text) {
  auto app = load_app("echo_latin", kEchoApp);
  TestServer server(std::make_unique<Application>(std::vector<Rule>{wsgi_rule("", app)}));
  EXPECT_EQ(server.fetch("/latin1/caf%C3%A9").body, "/latin1/caf\xC3\xA9");
}

TEST(WsgiContainer, ImportErrorsCarryTheTraceback) {
  try {
    load_app("broken_mod", "import no_such_module_here\n");
    FAIL() << "loaded a broken app";
  } catch (const WSGIAppError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("ModuleNotFoundError"), std::string::npos) << what;
    EXPECT_NE(what.find("no_such_module_here"), std::string::npos) << what;
  }
  try {
    load_app("not_callable", "application = 42\n");
    FAIL() << "loaded a non-callable";
  } catch (const WSGIAppError& e) {
    EXPECT_NE(std::string(e.what()).find("not a WSGI callable"), std::string::npos);
  }
}

}  // namespace
}  // namespace tronada
