// http_test_server: an HTTPServer with routes that exercise the HTTP/1 connection, for the
// integration tests (tests/integration/test_http1.py). Not an example: every flag is a
// knob a test turns.
//
//   /                  "Hello, world"
//   /echo              method, target, version, body and header fields as JSON
//   /stream-body       streams the body (no size limit) and answers the byte count
//   /chunked?n=K       K body pieces without Content-Length (chunked, or close-delimited
//                      on HTTP/1.0); &delay=MS writes them from a timer
//   /slow?ms=M         answers after M ms from a timer
//   /big?bytes=N       N bytes written with drain() backpressure from a coroutine
//   /remote            remote_ip and protocol (see --xheaders)
//   /header-inject     tries a header value with CRLF in it: must get 500, never the header
//   /throw             the handler throws
//   /early-reply       answers 401 before reading the body (the body is not expected)
//   /status?code=N     status N with body "ok" (dropped for 204/304/HEAD); &cl=0 leaves
//                      out the Content-Length, &te=1 sets "Transfer-Encoding: chunked"
//   /bigone?bytes=N    N bytes in one write_response
//   /stats             counters: requests, close callbacks run, connections open
//
// HTTP/2 is on (prior knowledge on clear text, ALPN with --certfile/--keyfile) unless
// --no-http2. --graceful makes SIGTERM stop accepting, send GOAWAY / close idle
// connections, and exit once the open ones finished.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

#include "tronada/async/spawn.h"
#include "tronada/async/task.h"
#include "tronada/http/http_server.h"

using namespace tronada;

namespace {

struct Stats {
  std::uint64_t requests = 0;
  std::uint64_t close_callbacks = 0;
  std::uint64_t connection_closes = 0;  // HTTPMessageDelegate::on_connection_close
  std::uint64_t big_aborted = 0;
  std::uint64_t big_done = 0;
};
Stats g_stats;
HTTPServer* g_server = nullptr;

void json_string(std::string& out, std::string_view s) {
  static const char* hex = "0123456789abcdef";
  out += '"';
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c >= 0x7f) {
      out += "\\u00";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += ch;
    }
  }
  out += '"';
}

std::string query_arg(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      return eq == std::string_view::npos ? std::string() : std::string(pair.substr(eq + 1));
    }
  }
  return {};
}

std::uint64_t query_number(const HTTPServerRequest& req, std::string_view name,
                           std::uint64_t fallback) {
  std::string v = query_arg(req.query, name);
  if (v.empty()) return fallback;
  return std::strtoull(v.c_str(), nullptr, 10);
}

void respond(HTTPServerRequest& req, int status, std::string_view body,
             std::string_view type = "text/plain") {
  HTTPHeaders h;
  h.add("Content-Type", type);
  h.add("Content-Length", std::to_string(body.size()));
  req.connection->write_response(status, h, body);
}

void echo(HTTPServerRequest& req) {
  std::string out = "{\"method\": ";
  json_string(out, req.method);
  out += ", \"uri\": ";
  json_string(out, req.uri);
  out += ", \"path\": ";
  json_string(out, req.path);
  out += ", \"query\": ";
  json_string(out, req.query);
  out += ", \"version\": ";
  json_string(out, req.version);
  out += ", \"host\": ";
  json_string(out, req.host);
  out += ", \"body_length\": " + std::to_string(req.body.size());
  out += ", \"body\": ";
  json_string(out, req.body);
  out += ", \"headers\": [";
  bool first = true;
  for (const auto& f : req.headers) {
    if (!first) out += ", ";
    first = false;
    out += '[';
    json_string(out, f.name);
    out += ", ";
    json_string(out, f.value);
    out += ']';
  }
  out += "]}\n";
  respond(req, 200, out, "application/json");
}

void chunked(const std::shared_ptr<HTTPServerRequest>& req) {
  std::uint64_t n = query_number(*req, "n", 3);
  std::uint64_t delay = query_number(*req, "delay", 0);
  HTTPHeaders h;
  h.add("Content-Type", "text/plain");
  req->connection->write_headers(200, h);
  if (delay == 0) {
    for (std::uint64_t i = 0; i < n; ++i)
      req->connection->write("chunk " + std::to_string(i) + "\n");
    req->connection->finish();
    return;
  }
  // One piece per timer tick: exercises writes outside of any read callback.
  struct Writer {
    static void next(std::shared_ptr<HTTPServerRequest> req, std::uint64_t i, std::uint64_t n,
                     std::uint64_t delay) {
      if (i == n) {
        req->connection->finish();
        return;
      }
      req->connection->write("chunk " + std::to_string(i) + "\n");
      IOLoop::current().call_later(std::chrono::milliseconds(delay),
                                   [req, i, n, delay] { next(req, i + 1, n, delay); });
    }
  };
  Writer::next(req, 0, n, delay);
}

void slow(const std::shared_ptr<HTTPServerRequest>& req) {
  std::uint64_t ms = query_number(*req, "ms", 100);
  req->connection->set_close_callback([] { ++g_stats.close_callbacks; });
  IOLoop::current().call_later(std::chrono::milliseconds(ms), [req, ms] {
    // After a close these are no-ops; the test checks nothing crashes.
    respond(*req, 200, "slept " + std::to_string(ms) + "\n");
  });
}

Task<void> big(std::shared_ptr<HTTPServerRequest> req) {
  std::uint64_t total = query_number(*req, "bytes", 1 << 20);
  auto conn = req->connection;
  HTTPHeaders h;
  h.add("Content-Type", "application/octet-stream");
  h.add("Content-Length", std::to_string(total));
  conn->write_headers(200, h);
  std::string block(64 * 1024, 'x');
  for (std::size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>('a' + i % 26);
  std::uint64_t sent = 0;
  try {
    while (sent < total) {
      std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(block.size(), total - sent));
      conn->write(std::string_view(block).substr(0, n));
      sent += n;
      co_await conn->drain();
    }
    conn->finish();
    ++g_stats.big_done;
  } catch (const StreamClosedError&) {
    ++g_stats.big_aborted;
  }
}

void header_inject(HTTPServerRequest& req) {
  HTTPHeaders h;
  h.add("Content-Length", "2");
  h.add("X-Bad", "a\r\nInjected: yes");
  try {
    req.connection->write_response(200, h, "ok");
  } catch (const std::invalid_argument&) {
    respond(req, 500, "refused\n");
  }
}

void status(HTTPServerRequest& req) {
  int code = static_cast<int>(query_number(req, "code", 200));
  HTTPHeaders h;
  h.add("Content-Type", "text/plain");
  if (query_number(req, "cl", 1)) h.add("Content-Length", "2");
  if (query_number(req, "te", 0)) h.add("Transfer-Encoding", "chunked");
  req.connection->write_headers(code, h);
  req.connection->write("o");
  req.connection->write("k");
  req.connection->finish();
}

void bigone(HTTPServerRequest& req) {
  std::uint64_t n = query_number(req, "bytes", 1 << 20);
  std::string body(static_cast<std::size_t>(n), 'b');
  respond(req, 200, body, "application/octet-stream");
}

void stats(HTTPServerRequest& req) {
  std::string out = "{\"requests\": " + std::to_string(g_stats.requests) +
                    ", \"close_callbacks\": " + std::to_string(g_stats.close_callbacks) +
                    ", \"connection_closes\": " + std::to_string(g_stats.connection_closes) +
                    ", \"big_aborted\": " + std::to_string(g_stats.big_aborted) +
                    ", \"big_done\": " + std::to_string(g_stats.big_done) +
                    ", \"open_connections\": " + std::to_string(g_server->open_connections()) +
                    "}\n";
  respond(req, 200, out, "application/json");
}

void dispatch(const std::shared_ptr<HTTPServerRequest>& req) {
  ++g_stats.requests;
  const std::string& p = req->path;
  if (p == "/") {
    respond(*req, 200, "Hello, world");
  } else if (p == "/echo") {
    echo(*req);
  } else if (p == "/chunked") {
    chunked(req);
  } else if (p == "/slow") {
    slow(req);
  } else if (p == "/big") {
    spawn_logged(big(req), "/big");
  } else if (p == "/remote") {
    respond(*req, 200, req->remote_ip + " " + req->protocol + "\n");
  } else if (p == "/header-inject") {
    header_inject(*req);
  } else if (p == "/throw") {
    throw std::runtime_error("handler failed on purpose");
  } else if (p == "/status") {
    status(*req);
  } else if (p == "/bigone") {
    bigone(*req);
  } else if (p == "/stats") {
    stats(*req);
  } else {
    respond(*req, 404, "Not Found\n");
  }
}

class BufferedMessage final : public HTTPMessageDelegate {
 public:
  explicit BufferedMessage(std::shared_ptr<HTTPServerRequest> req) : req_(std::move(req)) {}
  void finish() override { dispatch(req_); }
  void on_connection_close() override { ++g_stats.connection_closes; }

 private:
  std::shared_ptr<HTTPServerRequest> req_;
};

class CountingMessage final : public HTTPMessageDelegate {
 public:
  explicit CountingMessage(std::shared_ptr<HTTPServerRequest> req) : req_(std::move(req)) {}
  void data_received(std::string_view chunk) override {
    count_ += chunk.size();
    ++pieces_;
  }
  void finish() override {
    ++g_stats.requests;
    respond(*req_, 200, std::to_string(count_) + "\n");
  }
  void on_connection_close() override { ++g_stats.connection_closes; }

 private:
  std::shared_ptr<HTTPServerRequest> req_;
  std::uint64_t count_ = 0;
  std::uint64_t pieces_ = 0;
};

class TestDelegate final : public HTTPServerDelegate {
 public:
  RequestStart start_request(const std::shared_ptr<HTTPServerRequest>& req) override {
    if (req->path == "/stream-body") {
      RequestStart s{std::make_unique<CountingMessage>(req)};
      s.stream_body = true;
      s.max_body_size = 0;
      return s;
    }
    if (req->path == "/early-reply") {
      // Answered from start_request, before any body byte is read.
      ++g_stats.requests;
      respond(*req, 401, "no\n");
      return RequestStart{std::make_unique<BufferedMessage>(req)};
    }
    return RequestStart{std::make_unique<BufferedMessage>(req)};
  }
};

[[noreturn]] void usage(const char* argv0, int code) {
  std::fprintf(code ? stderr : stdout,
               "usage: %s [--port N] [--address A] [--idle-timeout MS] [--header-timeout MS]\n"
               "  [--body-timeout MS] [--write-timeout MS] [--max-body BYTES]\n"
               "  [--max-header-bytes BYTES] [--max-request-line BYTES]\n"
               "  [--max-connections N] [--xheaders] [--no-keep-alive]\n"
               "  [--certfile PEM --keyfile PEM] [--no-http2] [--max-streams N] [--graceful]\n",
               argv0);
  std::exit(code);
}

}  // namespace

int main(int argc, char** argv) {
  int port = 8888;
  std::string address = "127.0.0.1";
  std::string certfile, keyfile;
  bool http2 = true, graceful = false;
  HTTP2Options h2opts;
  HTTPServerOptions options;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", argv[i]);
        std::exit(2);
      }
      return argv[++i];
    };
    auto number = [&]() -> std::uint64_t {
      const char* v = value();
      char* end = nullptr;
      unsigned long long n = std::strtoull(v, &end, 10);
      if (*v == '\0' || *end != '\0') {
        std::fprintf(stderr, "%s: not a number: %s\n", argv[i - 1], v);
        std::exit(2);
      }
      return n;
    };
    auto ms = [&] { return std::chrono::milliseconds(number()); };
    if (arg == "--port") {
      port = static_cast<int>(number());
    } else if (arg == "--address") {
      address = value();
    } else if (arg == "--idle-timeout") {
      options.idle_timeout = ms();
    } else if (arg == "--header-timeout") {
      options.header_timeout = ms();
    } else if (arg == "--body-timeout") {
      options.body_timeout = ms();
    } else if (arg == "--write-timeout") {
      options.write_timeout = ms();
    } else if (arg == "--max-body") {
      options.limits.max_body_bytes = number();
    } else if (arg == "--max-header-bytes") {
      options.limits.max_header_bytes = static_cast<std::size_t>(number());
    } else if (arg == "--max-request-line") {
      options.limits.max_request_line = static_cast<std::size_t>(number());
    } else if (arg == "--max-connections") {
      options.max_connections = static_cast<std::size_t>(number());
    } else if (arg == "--xheaders") {
      options.xheaders = true;
    } else if (arg == "--no-keep-alive") {
      options.keep_alive = false;
    } else if (arg == "--certfile") {
      certfile = value();
    } else if (arg == "--keyfile") {
      keyfile = value();
    } else if (arg == "--no-http2") {
      http2 = false;
    } else if (arg == "--max-streams") {
      h2opts.max_concurrent_streams = static_cast<std::uint32_t>(number());
    } else if (arg == "--graceful") {
      graceful = true;
    } else if (arg == "--help" || arg == "-h") {
      usage(argv[0], 0);
    } else {
      std::fprintf(stderr, "unknown argument: %s\n", argv[i]);
      usage(argv[0], 2);
    }
  }

  IOLoop& loop = IOLoop::current();
  TestDelegate delegate;
  HTTPServer server(delegate, options);
  g_server = &server;
  if (!http2) server.disable_http2();
  server.set_http2_options(h2opts);
  if (!certfile.empty()) {
    SSLServerConfig tls;
    tls.cert_file = certfile;
    tls.key_file = keyfile;
    server.set_ssl_config(tls);
  }
  server.listen(port, address);
  std::printf("listening on %s://%s:%d/\n", certfile.empty() ? "http" : "https", address.c_str(),
              server.ports().at(0));
  std::fflush(stdout);
  loop.add_signal_handler(SIGINT, [&] { loop.stop(); });
  std::function<void()> wait_idle = [&] {
    if (server.open_connections() == 0) {
      loop.stop();
    } else {
      loop.call_later(std::chrono::milliseconds(20), wait_idle);
    }
  };
  loop.add_signal_handler(SIGTERM, [&] {
    if (!graceful) {
      loop.stop();
      return;
    }
    server.stop();
    server.close_all_connections();
    wait_idle();
  });
  loop.start();
  g_server = nullptr;
  return 0;
}
