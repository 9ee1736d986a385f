// AsyncHTTPClient and ConnectionPool against a scripted HTTP/1.1 server on loopback (a
// TCPServer whose replies each test writes byte for byte, so the client meets exactly
// the behaviour under test: early closes, silence, malformed responses).
#include "tronada/http/http_client.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "support/loop_check.h"
#include "tronada/async/run_sync.h"
#include "tronada/async/sleep.h"
#include "tronada/async/spawn.h"
#include "tronada/net/tcp_server.h"

using namespace tronada;
using namespace std::chrono_literals;

namespace {

/// What the script sees of one request.
struct Seen {
  std::string head;
  std::string body;
  int index = 0;  // requests before this one on the same connection
};

/// A reply: bytes to send, then whether to close. `hang` sends nothing and waits.
struct Reply {
  std::string bytes;
  bool close = false;
  bool hang = false;
};

Reply ok(std::string body, std::string extra_headers = "") {
  return {"HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
          extra_headers + "\r\n" + body};
}

class ScriptServer {
 public:
  using Script = std::function<Reply(const Seen&)>;
  explicit ScriptServer(Script script) : script_(std::move(script)) {
    server_.set_stream_handler([this](std::shared_ptr<IOStream> s) {
      ++connections;
      streams_.push_back(s);
      spawn_logged(serve(s, this), "script server");
    });
    server_.listen(0, "127.0.0.1");
    port = server_.ports().at(0);
  }
  ~ScriptServer() { stop(); }
  void stop() {
    server_.stop();
    for (auto& w : streams_) {
      if (auto s = w.lock()) s->close();
    }
    streams_.clear();
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port) + path;
  }

  int port = 0;
  int connections = 0;
  std::vector<Seen> requests;

 private:
  static Task<void> serve(std::shared_ptr<IOStream> s, ScriptServer* self) {
    try {
      for (int index = 0;; ++index) {
        Future<std::string> reading = s->read_until("\r\n\r\n", 64 * 1024);
        Seen seen;
        seen.head = co_await reading;
        seen.index = index;
        auto pos = seen.head.find("Content-Length: ");
        if (pos != std::string::npos) {
          std::size_t n = std::stoul(seen.head.substr(pos + 16));
          Future<std::string> body = s->read_bytes(n);
          seen.body = co_await body;
        } else if (seen.head.find("Transfer-Encoding: chunked") != std::string::npos) {
          for (;;) {
            Future<std::string> size_line = s->read_until("\r\n", 64);
            std::string line = co_await size_line;
            std::size_t n = std::stoul(line, nullptr, 16);
            Future<std::string> data = s->read_bytes(n + 2);
            std::string chunk = co_await data;
            if (n == 0) break;
            seen.body += chunk.substr(0, n);
          }
        }
        self->requests.push_back(seen);
        Reply reply = self->script_(seen);
        if (reply.hang) {
          Future<std::string> forever = s->read_until_close();
          co_await forever;
          co_return;
        }
        if (!reply.bytes.empty()) {
          Future<void> written = s->write(reply.bytes);
          co_await written;
        }
        if (reply.close) {
          s->close();
          co_return;
        }
      }
    } catch (...) {
    }
  }

  Script script_;
  TCPServer server_;
  std::vector<std::weak_ptr<IOStream>> streams_;
};

std::string gzip(const std::string& data) {
  z_stream zs{};
  deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(compressBound(data.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

class HTTPClientTest : public ::testing::Test {
 protected:
  HTTPClientTest() { loop.make_current(); }
  void TearDown() override {
    // Let closes and their callbacks run before checking that nothing is left open.
    run_sync([]() -> Task<void> {
      for (int i = 0; i < 5; ++i) {
        Future<void> tick = test_support::next_tick();
        co_await tick;
      }
    });
    test_support::expect_clean_close(loop);
  }

  template <typename F>
  auto run(F&& f) {
    return run_sync(std::forward<F>(f), std::chrono::seconds(20));
  }

  IOLoop loop;
};

std::string error_of(const Future<HTTPResponse>& f) {
  try {
    f.result();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// Waits (up to a second) until the pool has closed every idle connection to `e`.
Task<void> until_no_idle(ConnectionPool& pool, const Endpoint& e) {
  for (int i = 0; i < 100 && pool.idle_count(e) > 0; ++i) {
    Future<void> s = sleep(10ms);
    co_await s;
  }
}

}  // namespace

TEST_F(HTTPClientTest, KeepAliveReusesOneConnection) {
  ScriptServer server([](const Seen& s) { return ok("n" + std::to_string(s.index)); });
  {
    AsyncHTTPClient client;
    std::vector<std::string> bodies = run([&]() -> Task<std::vector<std::string>> {
      std::vector<std::string> out;
      for (int i = 0; i < 3; ++i) {
        Future<HTTPResponse> f = client.fetch(server.url("/x"));
        HTTPResponse r = co_await f;
        out.push_back(r.body);
      }
      co_return out;
    });
    EXPECT_EQ(bodies, (std::vector<std::string>{"n0", "n1", "n2"}));
    EXPECT_EQ(server.connections, 1);
    EXPECT_EQ(client.pool().stats().opened, 1u);
    EXPECT_EQ(client.pool().stats().reused, 2u);
    EXPECT_EQ(client.pool().stats().idle, 1u);
    EXPECT_NE(server.requests[0].head.find("GET /x HTTP/1.1\r\n"), std::string::npos);
    EXPECT_NE(server.requests[0].head.find("Host: 127.0.0.1:"), std::string::npos);
  }
  server.stop();
}

TEST_F(HTTPClientTest, ConnectionCloseIsNotReused) {
  ScriptServer server([](const Seen&) { return ok("bye", "Connection: close\r\n"); });
  {
    AsyncHTTPClient client;
    run([&]() -> Task<void> {
      for (int i = 0; i < 2; ++i) {
        Future<HTTPResponse> f = client.fetch(server.url("/"));
        co_await f;
      }
    });
    EXPECT_EQ(server.connections, 2);
    EXPECT_EQ(client.pool().stats().idle, 0u);
  }
  server.stop();
}

TEST_F(HTTPClientTest, StaleKeptAliveConnectionIsRetriedOnceForIdempotentRequests) {
  // Every connection answers one request and then closes without saying so: the second
  // request on it meets a closed connection, as when a server's keep-alive timeout
  // fires just as we reuse the connection.
  ScriptServer server([](const Seen& s) {
    if (s.index > 0) return Reply{"", true};
    return ok("fresh");
  });
  {
    AsyncHTTPClient client;
    auto codes = run([&]() -> Task<std::vector<int>> {
      std::vector<int> out;
      for (int i = 0; i < 3; ++i) {
        Future<HTTPResponse> f = client.fetch(server.url("/"));
        HTTPResponse r = co_await f;
        out.push_back(r.code);
      }
      co_return out;
    });
    EXPECT_EQ(codes, (std::vector<int>{200, 200, 200}));
    EXPECT_EQ(server.connections, 3);

    // Not for POST: it may have had effects.
    auto post = run([&]() -> Task<std::string> {
      HTTPRequest r(server.url("/"), "POST");
      r.body = "x";
      Future<HTTPResponse> f = client.fetch(std::move(r));
      try {
        co_await f;
      } catch (const HTTPStreamClosedError& e) {
        co_return std::string(e.what());
      }
      co_return std::string("no error");
    });
    EXPECT_NE(post.find("closed before the response"), std::string::npos) << post;
  }
  server.stop();
}

TEST_F(HTTPClientTest, IdleConnectionClosedByServerIsDropped) {
  ScriptServer server([](const Seen&) { return Reply{ok("x").bytes, true}; });
  {
    AsyncHTTPClient client;
    run([&]() -> Task<void> {
      Future<HTTPResponse> f = client.fetch(server.url("/"));
      co_await f;
      for (int i = 0; i < 100 && client.pool().stats().idle > 0; ++i) {
        Future<void> s = sleep(10ms);
        co_await s;
      }
    });
    EXPECT_EQ(client.pool().stats().idle, 0u);
  }
  server.stop();
}

TEST_F(HTTPClientTest, PoolQueuesWaitersInOrderAndTimesThemOut) {
  ScriptServer server([](const Seen&) { return ok(""); });
  ConnectionPoolOptions options;
  options.max_per_endpoint = 1;
  options.max_waiters = 2;
  ConnectionPool pool(options);
  Endpoint e{"http", "127.0.0.1", server.port, "", nullptr, ""};
  auto log = run([&]() -> Task<std::vector<std::string>> {
    std::vector<std::string> out;
    Future<PooledConnection> first = pool.acquire(e, 5s);
    PooledConnection a = co_await first;
    Future<PooledConnection> second = pool.acquire(e, 5s);
    Future<PooledConnection> third = pool.acquire(e, 50ms);
    Future<PooledConnection> fourth = pool.acquire(e, 5s);
    out.push_back(fourth.has_exception() ? "fourth full" : "fourth queued");
    out.push_back("waiting " + std::to_string(pool.stats().waiting));
    try {
      co_await third;
    } catch (const TimeoutError&) {
      out.push_back("third timed out");
    }
    IOStream* raw = &a.stream();
    a.release();
    PooledConnection b = co_await second;
    out.push_back(&b.stream() == raw && b.reused() ? "second reused" : "second other");
    b.discard();
    co_return out;
  });
  EXPECT_EQ(log, (std::vector<std::string>{"fourth full", "waiting 2", "third timed out",
                                           "second reused"}));
  EXPECT_EQ(pool.stats().checked_out, 0u);
  EXPECT_EQ(pool.stats().waiting, 0u);
  pool.close();
  server.stop();
}

TEST_F(HTTPClientTest, PoolEvictsIdleConnectionsForOtherEndpointsAtTheTotalLimit) {
  ScriptServer one([](const Seen&) { return ok(""); });
  ScriptServer two([](const Seen&) { return ok(""); });
  ConnectionPoolOptions options;
  options.max_total = 1;
  ConnectionPool pool(options);
  Endpoint e1{"http", "127.0.0.1", one.port, "", nullptr, ""};
  Endpoint e2{"http", "127.0.0.1", two.port, "", nullptr, ""};
  run([&]() -> Task<void> {
    Future<PooledConnection> f1 = pool.acquire(e1, 5s);
    PooledConnection c1 = co_await f1;
    c1.release();
    Future<PooledConnection> f2 = pool.acquire(e2, 5s);
    PooledConnection c2 = co_await f2;
    c2.release();
  });
  EXPECT_EQ(pool.idle_count(e1), 0u);
  EXPECT_EQ(pool.idle_count(e2), 1u);
  EXPECT_EQ(pool.stats().opened, 2u);
  pool.close();
  one.stop();
  two.stop();
}

TEST_F(HTTPClientTest, PoolIdleTimeoutClosesConnections) {
  ScriptServer server([](const Seen&) { return ok(""); });
  ConnectionPoolOptions options;
  options.idle_timeout = 20ms;
  ConnectionPool pool(options);
  Endpoint e{"http", "127.0.0.1", server.port, "", nullptr, ""};
  run([&]() -> Task<void> {
    Future<PooledConnection> f = pool.acquire(e, 5s);
    PooledConnection c = co_await f;
    c.release();
    co_await until_no_idle(pool, e);
  });
  EXPECT_EQ(pool.idle_count(e), 0u);
  pool.close();
  server.stop();
}

// Idle timeouts share one timer: each connection still closes its own idle_timeout
// after it was parked, not when the first or the last one parked expires.
TEST_F(HTTPClientTest, PoolIdleTimeoutCountsFromEachConnectionsRelease) {
  ScriptServer server([](const Seen&) { return ok(""); });
  ConnectionPoolOptions options;
  options.idle_timeout = 400ms;
  ConnectionPool pool(options);
  Endpoint e{"http", "127.0.0.1", server.port, "", nullptr, ""};
  std::size_t idle_between = 0;
  run([&]() -> Task<void> {
    Future<PooledConnection> f1 = pool.acquire(e, 5s);
    PooledConnection c1 = co_await f1;
    Future<PooledConnection> f2 = pool.acquire(e, 5s);
    PooledConnection c2 = co_await f2;
    c1.release();
    Future<void> gap = sleep(250ms);
    co_await gap;
    c2.release();
    // c1's deadline passed 50 ms ago, c2's is 200 ms away.
    Future<void> past_first = sleep(200ms);
    co_await past_first;
    idle_between = pool.idle_count(e);
    co_await until_no_idle(pool, e);
  });
  EXPECT_EQ(idle_between, 1u);
  EXPECT_EQ(pool.idle_count(e), 0u);
  EXPECT_EQ(pool.stats().opened, 2u);
  pool.close();
  server.stop();
}

// Taking the only idle connection leaves the sweep timer armed for its old deadline:
// when it fires, the connection released again since must stay, and close its own
// idle_timeout after that release.
TEST_F(HTTPClientTest, PoolIdleTimeoutOfAConnectionTakenAndReleasedAgain) {
  ScriptServer server([](const Seen&) { return ok(""); });
  ConnectionPoolOptions options;
  options.idle_timeout = 300ms;
  ConnectionPool pool(options);
  Endpoint e{"http", "127.0.0.1", server.port, "", nullptr, ""};
  std::size_t idle_after_old_deadline = 0;
  run([&]() -> Task<void> {
    Future<PooledConnection> f1 = pool.acquire(e, 5s);
    PooledConnection c1 = co_await f1;
    c1.release();  // the sweep is due 300 ms from here
    Future<void> gap = sleep(200ms);
    co_await gap;
    Future<PooledConnection> f2 = pool.acquire(e, 5s);
    PooledConnection c2 = co_await f2;  // the same connection, from the idle list
    c2.release();                       // due 300 ms from here, 200 ms after the sweep
    Future<void> past_old = sleep(170ms);
    co_await past_old;
    idle_after_old_deadline = pool.idle_count(e);
    co_await until_no_idle(pool, e);
  });
  EXPECT_EQ(idle_after_old_deadline, 1u);
  EXPECT_EQ(pool.idle_count(e), 0u);
  EXPECT_EQ(pool.stats().opened, 1u);
  EXPECT_EQ(pool.stats().reused, 1u);
  pool.close();
  server.stop();
}

TEST_F(HTTPClientTest, RequestTimeoutAgainstASilentServer) {
  ScriptServer server([](const Seen&) { return Reply{"", false, true}; });
  {
    AsyncHTTPClient client;
    auto error = run([&]() -> Task<std::string> {
      HTTPRequest r(server.url("/"));
      r.request_timeout = 100ms;
      Future<HTTPResponse> f = client.fetch(std::move(r));
      try {
        co_await f;
      } catch (const HTTPTimeoutError& e) {
        co_return std::string(e.what()) + " code " + std::to_string(e.code);
      }
      co_return std::string("no timeout");
    });
    EXPECT_NE(error.find("Timeout during request"), std::string::npos) << error;
    EXPECT_NE(error.find("code 599"), std::string::npos);
  }
  server.stop();
}

TEST_F(HTTPClientTest, ChunkedGzipAndStreamingBodies) {
  std::string text(100000, 'z');
  for (std::size_t i = 0; i < text.size(); i += 7) text[i] = static_cast<char>('a' + i % 26);
  std::string packed = gzip(text);
  ScriptServer server([&](const Seen& s) {
    if (s.head.starts_with("GET /chunked")) {
      return Reply{
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
          "1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nTrailer: x\r\n\r\n"};
    }
    if (s.head.starts_with("GET /gzip")) {
      bool wants = s.head.find("Accept-Encoding: gzip") != std::string::npos;
      return ok(packed, wants ? "Content-Encoding: gzip\r\n" : "");
    }
    return Reply{"HTTP/1.1 200 OK\r\n\r\nuntil close", true};
  });
  {
    AsyncHTTPClient client;
    run([&]() -> Task<void> {
      Future<HTTPResponse> f1 = client.fetch(server.url("/chunked"));
      HTTPResponse chunked = co_await f1;
      EXPECT_EQ(chunked.body, "hello world");

      Future<HTTPResponse> f2 = client.fetch(server.url("/gzip"));
      HTTPResponse unpacked = co_await f2;
      EXPECT_EQ(unpacked.body, text);
      EXPECT_FALSE(unpacked.headers.contains("Content-Encoding"));
      EXPECT_EQ(unpacked.headers.get("X-Consumed-Content-Encoding").value_or(""), "gzip");

      HTTPRequest raw(server.url("/gzip"));
      raw.decompress_response = false;
      Future<HTTPResponse> f3 = client.fetch(std::move(raw));
      HTTPResponse identity = co_await f3;
      EXPECT_EQ(identity.body, packed);

      std::string streamed;
      int pieces = 0;
      std::vector<std::string> header_lines;
      HTTPRequest s(server.url("/gzip"));
      s.streaming_callback = [&](std::string_view p) {
        streamed.append(p);
        ++pieces;
      };
      s.header_callback = [&](std::string_view line) { header_lines.emplace_back(line); };
      Future<HTTPResponse> f4 = client.fetch(std::move(s));
      HTTPResponse r4 = co_await f4;
      EXPECT_TRUE(r4.body.empty());
      EXPECT_EQ(streamed, text);
      EXPECT_GT(pieces, 1);
      EXPECT_GE(header_lines.size(), 3u);
      if (!header_lines.empty()) {
        EXPECT_EQ(header_lines.front(), "HTTP/1.1 200 OK\r\n");
        EXPECT_EQ(header_lines.back(), "\r\n");
      }

      HTTPRequest small(server.url("/gzip"));
      small.max_body_size = 1000;
      Future<HTTPResponse> f5 = client.fetch(std::move(small));
      try {
        co_await f5;
        ADD_FAILURE() << "no max_body_size error";
      } catch (const HTTPClientError& e) {
        EXPECT_NE(std::string(e.what()).find("max_body_size"), std::string::npos);
      }

      Future<HTTPResponse> f6 = client.fetch(server.url("/close"));
      HTTPResponse closed = co_await f6;
      EXPECT_EQ(closed.body, "until close");
    });
  }
  server.stop();
}

TEST_F(HTTPClientTest, HeadAndBodilessStatusesDoNotWaitForABody) {
  ScriptServer server([](const Seen& s) {
    if (s.head.starts_with("HEAD")) return Reply{"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"};
    if (s.head.starts_with("GET /204")) return Reply{"HTTP/1.1 204 No Content\r\n\r\n"};
    if (s.head.starts_with("GET /304"))
      return Reply{"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"};
    return Reply{"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"};
  });
  {
    AsyncHTTPClient client;
    auto codes = run([&]() -> Task<std::vector<int>> {
      std::vector<int> out;
      Future<HTTPResponse> h = client.fetch(HTTPRequest(server.url("/"), "HEAD"));
      HTTPResponse head = co_await h;
      out.push_back(head.code);
      Future<HTTPResponse> a = client.fetch(server.url("/204"));
      out.push_back((co_await a).code);
      Future<HTTPResponse> b = client.fetch(server.url("/304"), false);
      out.push_back((co_await b).code);
      Future<HTTPResponse> c = client.fetch(server.url("/continue"));
      HTTPResponse cont = co_await c;
      out.push_back(cont.body == "ok" ? cont.code : -1);
      co_return out;
    });
    EXPECT_EQ(codes, (std::vector<int>{200, 204, 304, 200}));
    EXPECT_EQ(server.connections, 1);
  }
  server.stop();
}

TEST_F(HTTPClientTest, RedirectsChangeMethodAsTheStatusSays) {
  ScriptServer server([](const Seen& s) {
    auto target = [](const char* code, const char* to) {
      return Reply{std::string("HTTP/1.1 ") + code + " Moved\r\nLocation: " + to +
                   "\r\nContent-Length: 0\r\n\r\n"};
    };
    if (s.head.starts_with("POST /302")) return target("302", "/landing");
    if (s.head.starts_with("POST /307")) return target("307", "landing");
    if (s.head.starts_with("GET /loop")) return target("301", "/loop");
    std::string method = s.head.substr(0, s.head.find(' '));
    return ok(method + " " + s.body);
  });
  {
    AsyncHTTPClient client;
    run([&]() -> Task<void> {
      HTTPRequest r302(server.url("/302"), "POST");
      r302.body = "data";
      Future<HTTPResponse> a = client.fetch(std::move(r302));
      HTTPResponse moved = co_await a;
      EXPECT_EQ(moved.body, "GET ");
      EXPECT_EQ(moved.effective_url, server.url("/landing"));

      HTTPRequest r307(server.url("/307"), "POST");
      r307.body = "data";
      Future<HTTPResponse> b = client.fetch(std::move(r307));
      EXPECT_EQ((co_await b).body, "POST data");

      HTTPRequest no_follow(server.url("/loop"));
      no_follow.follow_redirects = false;
      Future<HTTPResponse> c = client.fetch(std::move(no_follow), false);
      HTTPResponse three = co_await c;
      EXPECT_EQ(three.code, 301);
      EXPECT_TRUE(three.error);

      HTTPRequest looping(server.url("/loop"));
      looping.max_redirects = 3;
      Future<HTTPResponse> d = client.fetch(std::move(looping));
      try {
        co_await d;
        ADD_FAILURE() << "no error after max_redirects";
      } catch (const HTTPClientError& e) {
        EXPECT_EQ(e.code, 301);
        EXPECT_TRUE(e.response && e.response->code == 301);
      }
    });
    int loops = 0;
    for (const auto& r : server.requests) loops += r.head.starts_with("GET /loop");
    EXPECT_EQ(loops, 1 + 4);
  }
  server.stop();
}

TEST_F(HTTPClientTest, MalformedResponsesGiveClearErrors) {
  ScriptServer server([](const Seen& s) {
    if (s.head.starts_with("GET /status")) return Reply{"HTTP/1.1 abc OK\r\n\r\n", true};
    if (s.head.starts_with("GET /chunk"))
      return Reply{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", true};
    if (s.head.starts_with("GET /cut"))
      return Reply{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", true};
    return Reply{"HTTP/1.1 200 OK\r\nX-Big: " + std::string(100000, 'b') + "\r\n\r\n", true};
  });
  {
    AsyncHTTPClient client;
    auto errors = run([&]() -> Task<std::vector<std::string>> {
      std::vector<std::string> out;
      for (const char* path : {"/status", "/chunk", "/cut", "/headers"}) {
        Future<HTTPResponse> f = client.fetch(server.url(path));
        try {
          co_await f;
          out.push_back("ok");
        } catch (const HTTPClientError& e) {
          out.push_back(std::to_string(e.code) + " " + e.what());
        }
      }
      co_return out;
    });
    ASSERT_EQ(errors.size(), 4u);
    EXPECT_NE(errors[0].find("599 HTTP 599: malformed HTTP response"), std::string::npos)
        << errors[0];
    EXPECT_NE(errors[1].find("malformed HTTP response"), std::string::npos) << errors[1];
    EXPECT_NE(errors[2].find("closed before the response was complete"), std::string::npos)
        << errors[2];
    EXPECT_NE(errors[3].find("malformed HTTP response"), std::string::npos) << errors[3];
  }
  server.stop();
}

TEST_F(HTTPClientTest, RequestBodiesWithLengthOrChunkedProducer) {
  ScriptServer server([](const Seen& s) {
    bool chunked = s.head.find("Transfer-Encoding: chunked") != std::string::npos;
    return ok(std::string(chunked ? "chunked:" : "length:") + s.body);
  });
  {
    AsyncHTTPClient client;
    run([&]() -> Task<void> {
      HTTPRequest fixed(server.url("/"), "PUT");
      fixed.body = "payload";
      Future<HTTPResponse> a = client.fetch(std::move(fixed));
      EXPECT_EQ((co_await a).body, "length:payload");

      HTTPRequest streamed(server.url("/"), "POST");
      streamed.body_producer = [](BodyWriter write) -> Future<void> {
        return spawn([](BodyWriter w) -> Task<void> {
          for (const char* piece : {"one,", "two,", "three"}) {
            Future<void> sent = w(piece);
            co_await sent;
          }
        }(std::move(write)));
      };
      Future<HTTPResponse> b = client.fetch(std::move(streamed));
      EXPECT_EQ((co_await b).body, "chunked:one,two,three");
    });
    EXPECT_EQ(server.connections, 1);
  }
  server.stop();
}

TEST_F(HTTPClientTest, CallbackFormAndRaiseError) {
  ScriptServer server([](const Seen& s) {
    if (s.head.starts_with("GET /missing"))
      return Reply{"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope"};
    return ok("fine");
  });
  {
    AsyncHTTPClient client;
    std::vector<std::string> seen;
    run([&]() -> Task<void> {
      Promise<void> done;
      int left = 2;
      for (const char* path : {"/", "/missing"}) {
        client.fetch(HTTPRequest(server.url(path)), [&, done](HTTPResponse r) mutable {
          seen.push_back(std::to_string(r.code) + " " + r.body + (r.error ? " error" : ""));
          if (--left == 0) done.set_result();
        });
      }
      Future<void> all = done.get_future();
      co_await all;
      Future<HTTPResponse> raised = client.fetch(server.url("/missing"));
      try {
        co_await raised;
      } catch (const HTTPClientError& e) {
        seen.push_back(std::string("raised ") + std::to_string(e.code) + " " + e.response->body);
      }
    });
    std::sort(seen.begin(), seen.end() - 1);
    EXPECT_EQ(seen, (std::vector<std::string>{"200 fine", "404 nope error", "raised 404 nope"}));
  }
  server.stop();
}

TEST_F(HTTPClientTest, ConnectionRefusedAndBadURLs) {
  int port;
  {
    ScriptServer closed([](const Seen&) { return ok(""); });
    port = closed.port;
  }
  AsyncHTTPClient client;
  auto errors = run([&]() -> Task<std::vector<std::string>> {
    std::vector<std::string> out;
    Future<HTTPResponse> refused = client.fetch("http://127.0.0.1:" + std::to_string(port) + "/");
    Future<HTTPResponse> bad = client.fetch("nonsense");
    try {
      co_await refused;
    } catch (const std::system_error& e) {
      out.push_back(e.what());
    }
    out.push_back(error_of(bad));
    HTTPResponse cb;
    Promise<void> p;
    client.fetch(HTTPRequest("http://127.0.0.1:" + std::to_string(port) + "/"),
                 [&cb, p](HTTPResponse r) mutable {
                   cb = std::move(r);
                   p.set_result();
                 });
    Future<void> got = p.get_future();
    co_await got;
    out.push_back(std::to_string(cb.code) + (cb.error ? " error" : ""));
    co_return out;
  });
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_NE(errors[0].find("refused"), std::string::npos) << errors[0];
  EXPECT_NE(errors[1].find("invalid URL"), std::string::npos) << errors[1];
  EXPECT_EQ(errors[2], "599 error");
}

TEST_F(HTTPClientTest, QueueBeyondMaxClients) {
  ScriptServer server([](const Seen& s) { return ok(s.head.substr(4, s.head.find(' ', 4) - 4)); });
  {
    AsyncHTTPClientOptions options;
    options.max_clients = 2;
    AsyncHTTPClient client(options);
    auto bodies = run([&]() -> Task<std::vector<std::string>> {
      std::vector<Future<HTTPResponse>> futures;
      for (int i = 0; i < 6; ++i)
        futures.push_back(client.fetch(server.url("/" + std::to_string(i))));
      std::vector<std::string> out;
      for (auto& f : futures) out.push_back((co_await f).body);
      co_return out;
    });
    EXPECT_EQ(bodies, (std::vector<std::string>{"/0", "/1", "/2", "/3", "/4", "/5"}));
    EXPECT_LE(server.connections, 2);
  }
  server.stop();
}

TEST_F(HTTPClientTest, PoolDroppedConnectionsFreeTheirSlotAndFreshAcquiresSkipIdle) {
  ScriptServer server([](const Seen&) { return ok(""); });
  ConnectionPoolOptions options;
  options.max_per_endpoint = 1;
  ConnectionPool pool(options);
  Endpoint e{"http", "127.0.0.1", server.port, "", nullptr, ""};
  auto log = run([&]() -> Task<std::vector<std::string>> {
    std::vector<std::string> out;
    Future<PooledConnection> first = pool.acquire(e, 5s);
    Future<PooledConnection> second = pool.acquire(e, 5s);
    {
      PooledConnection a = co_await first;  // dropped unreleased: closed, slot freed
    }
    PooledConnection b = co_await second;
    out.push_back(b.reused() ? "second reused" : "second fresh");
    b.release();
    out.push_back("idle " + std::to_string(pool.idle_count(e)));
    // reuse_idle false (the stale-connection retry) opens a new connection, closing
    // the idle one to stay within max_per_endpoint.
    Future<PooledConnection> third = pool.acquire(e, 5s, false);
    PooledConnection c = co_await third;
    out.push_back(c.reused() ? "third reused" : "third fresh");
    out.push_back("idle " + std::to_string(pool.idle_count(e)));
    c.release();
    co_return out;
  });
  EXPECT_EQ(log, (std::vector<std::string>{"second fresh", "idle 1", "third fresh", "idle 0"}));
  EXPECT_EQ(pool.stats().opened, 3u);
  EXPECT_EQ(server.connections, 3);
  pool.close();
  server.stop();
}
