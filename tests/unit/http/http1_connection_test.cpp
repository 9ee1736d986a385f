// HTTP1Connection in process: a connection on one end of a socketpair, the test playing
// the client on the other end with plain non-blocking reads and writes on the same thread.
#include "tronada/http/http1_connection.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "support/loop_check.h"
#include "tronada/async/run_sync.h"
#include "tronada/async/sleep.h"
#include "tronada/async/spawn.h"
#include "tronada/http/http_server.h"

using namespace tronada;
using namespace std::chrono_literals;

namespace {

constexpr auto kTimeout = 20s;

void set_nonblocking(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // lowercased names
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
  bool has(const std::string& name) const { return headers.count(name) != 0; }
};

// Takes one complete response off the front of `buf`; false if it is not all there yet.
// Bodies without a length run to `eof`.
bool take_response(std::string& buf, Response& out, bool eof = false, bool head = false) {
  auto end = buf.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  Response r;
  std::string head_text = buf.substr(0, end);
  std::size_t pos = head_text.find("\r\n");
  std::string status_line = head_text.substr(0, pos);
  r.status = std::atoi(status_line.c_str() + 9);
  while (pos != std::string::npos) {
    std::size_t next = head_text.find("\r\n", pos + 2);
    std::string line =
        head_text.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
    auto colon = line.find(':');
    std::string name = line.substr(0, colon);
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    r.headers[name] = value;
    pos = next;
  }
  std::size_t body_at = end + 4;
  if (head || r.status == 204 || r.status == 304 || r.status < 200) {
    buf.erase(0, body_at);
  } else if (r.has("content-length")) {
    std::size_t n = std::stoul(r.header("content-length"));
    if (buf.size() < body_at + n) return false;
    r.body = buf.substr(body_at, n);
    buf.erase(0, body_at + n);
  } else if (r.header("transfer-encoding") == "chunked") {
    std::size_t p = body_at;
    std::string body;
    for (;;) {
      auto eol = buf.find("\r\n", p);
      if (eol == std::string::npos) return false;
      std::size_t size = std::stoul(buf.substr(p, eol - p), nullptr, 16);
      if (size == 0) {
        if (buf.size() < eol + 4) return false;
        p = eol + 4;  // no trailers from our server
        break;
      }
      if (buf.size() < eol + 2 + size + 2) return false;
      body.append(buf, eol + 2, size);
      p = eol + 2 + size + 2;
    }
    r.body = std::move(body);
    buf.erase(0, p);
  } else {
    if (!eof) return false;
    r.body = buf.substr(body_at);
    buf.clear();
  }
  out = std::move(r);
  return true;
}

std::string get(const std::string& target, const std::string& extra = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: t\r\n" + extra + "\r\n";
}

std::string post(const std::string& target, const std::string& body) {
  return "POST " + target +
         " HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
         body;
}

void answer(const std::shared_ptr<HTTPServerRequest>& req, int status, const std::string& body) {
  HTTPHeaders h;
  h.add("Content-Length", std::to_string(body.size()));
  req->connection->write_response(status, h, body);
}

class Message final : public HTTPMessageDelegate {
 public:
  std::function<void()> on_finish;
  std::function<void(std::string_view)> on_data;
  std::function<void()> on_close;
  void data_received(std::string_view chunk) override {
    if (on_data) on_data(chunk);
  }
  void finish() override {
    if (on_finish) on_finish();
  }
  void on_connection_close() override {
    if (on_close) on_close();
  }
};

class Delegate final : public HTTPServerDelegate {
 public:
  std::function<RequestStart(const std::shared_ptr<HTTPServerRequest>&)> start;
  RequestStart start_request(const std::shared_ptr<HTTPServerRequest>& req) override {
    return start(req);
  }
};

class HTTP1ConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    loop_.make_current();
    // By default: record the request, answer "<path>" at once unless `hold_` is set.
    delegate_.start = [this](const std::shared_ptr<HTTPServerRequest>& req) {
      auto msg = std::make_unique<Message>();
      std::weak_ptr<HTTPServerRequest> weak = req;
      msg->on_finish = [this, weak] {
        auto r = weak.lock();
        ASSERT_TRUE(r);
        requests_.push_back(r);
        if (!hold_) answer(r, 200, r->path + (r->body.empty() ? "" : ":" + r->body));
      };
      msg->on_close = [this] { ++connection_closes_; };
      return RequestStart{std::move(msg)};
    };
  }

  void TearDown() override {
    requests_.clear();
    if (conn_) conn_->close();
    server_.reset();
    if (ctx_) run_until([&] { return ctx_->connections.empty(); });
    conn_.reset();
    ctx_.reset();
    if (peer_ >= 0) ::close(peer_);
    test_support::expect_clean_close(loop_);
  }

  void start(HTTPServerOptions options = {}, int sndbuf = 0) {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    if (sndbuf) {
      setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
      setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sndbuf, sizeof sndbuf);
    }
    peer_ = sv[1];
    set_nonblocking(peer_);
    stream_ = IOStream::from_fd(sv[0], {}, &loop_);
    ctx_ = std::make_shared<detail::HTTP1ServerContext>(loop_, options, &delegate_);
    conn_ = std::make_shared<HTTP1Connection>(stream_, ctx_);
    conn_->start();
  }

  void send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::write(peer_, data.data(), data.size());
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        run_for(1ms);
        continue;
      }
      ASSERT_GT(n, 0) << std::strerror(errno);
      data.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  // Reads what the server sent so far into received_; true once it closed.
  bool pump() {
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(peer_, buf, sizeof buf);
      if (n > 0) {
        received_.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0 || (n < 0 && errno == ECONNRESET)) {
        eof_ = true;
        return true;
      }
      return false;
    }
  }

  void run_until(const std::function<bool()>& done, Duration timeout = kTimeout) {
    run_sync(
        [&]() -> Task<void> {
          while (!done()) co_await tronada::sleep(1ms);
        },
        timeout);
  }

  // The test's end of a TCP connection to a server listening on loopback `port`.
  bool connect_peer(int port) {
    peer_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(peer_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return false;
    set_nonblocking(peer_);
    return true;
  }

  void run_for(Duration d) {
    run_sync([d]() -> Task<void> { co_await tronada::sleep(d); }, kTimeout);
  }

  Response next_response(bool head = false) {
    Response r;
    run_until([&] {
      pump();
      return take_response(received_, r, eof_, head);
    });
    return r;
  }

  bool closed_by_server() {
    run_until([&] { return pump(); });
    return eof_;
  }

  IOLoop loop_;
  Delegate delegate_;
  std::shared_ptr<IOStream> stream_;
  std::shared_ptr<detail::HTTP1ServerContext> ctx_;
  std::shared_ptr<HTTP1Connection> conn_;
  std::unique_ptr<HTTPServer> server_;
  int peer_ = -1;
  std::string received_;
  bool eof_ = false;
  bool hold_ = false;
  int connection_closes_ = 0;
  std::vector<std::shared_ptr<HTTPServerRequest>> requests_;
};

}  // namespace

TEST_F(HTTP1ConnectionTest, AnswersAndKeepsAlive) {
  start();
  send(get("/a"));
  Response r = next_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "/a");
  EXPECT_FALSE(r.has("connection"));
  EXPECT_TRUE(r.has("date"));
  EXPECT_EQ(r.header("server"), "tronada");
  send(post("/b", "hello"));
  r = next_response();
  EXPECT_EQ(r.body, "/b:hello");
  EXPECT_EQ(requests_.size(), 2u);
  EXPECT_EQ(requests_[0]->remote_ip, "unix");
}

TEST_F(HTTP1ConnectionTest, PipelinedRequestsOneAtATimeInOrder) {
  hold_ = true;
  start();
  send(get("/1") + post("/2", "two") + get("/3"));
  run_until([&] { return requests_.size() == 1; });
  run_for(20ms);
  // The next request is not parsed before this one is answered.
  ASSERT_EQ(requests_.size(), 1u);
  auto first = requests_[0];
  answer(first, 200, "first");
  run_until([&] { return requests_.size() == 2; });
  EXPECT_EQ(requests_[1]->body, "two");
  answer(requests_[1], 201, "second");
  run_until([&] { return requests_.size() == 3; });
  answer(requests_[2], 202, "third");
  Response a = next_response(), b = next_response(), c = next_response();
  EXPECT_EQ(a.body, "first");
  EXPECT_EQ(b.status, 201);
  EXPECT_EQ(b.body, "second");
  EXPECT_EQ(c.status, 202);
  EXPECT_EQ(c.body, "third");
}

TEST_F(HTTP1ConnectionTest, ManyPipelinedRequestsAnsweredAsynchronously) {
  // Far more than one read: reading pauses while requests wait, and resumes.
  hold_ = true;
  start();
  constexpr int kN = 3000;
  std::string all;
  for (int i = 0; i < kN; ++i) {
    all += get("/r" + std::to_string(i), "X-Pad: " + std::string(100, 'p') + "\r\n");
  }
  std::size_t sent = 0;
  int answered = 0;
  int seen = 0;
  run_until([&] {
    if (sent < all.size()) {
      ssize_t n = ::write(peer_, all.data() + sent, all.size() - sent);
      if (n > 0) sent += static_cast<std::size_t>(n);
    }
    while (answered < static_cast<int>(requests_.size())) {
      auto req = requests_[static_cast<std::size_t>(answered++)];
      loop_.add_callback([req] { answer(req, 200, req->path); });
    }
    pump();
    Response r;
    while (take_response(received_, r)) {
      EXPECT_EQ(r.body, "/r" + std::to_string(seen));
      ++seen;
    }
    return seen == kN;
  });
  EXPECT_EQ(seen, kN);
}

TEST_F(HTTP1ConnectionTest, AsynchronousFinishFromATimer) {
  hold_ = true;
  start();
  send(get("/slow"));
  run_until([&] { return requests_.size() == 1; });
  auto req = requests_[0];
  loop_.call_later(30ms, [req] {
    HTTPHeaders h;
    h.add("Content-Type", "text/plain");
    req->connection->write_headers(200, h);
    req->connection->write("part one, ");
    IOLoop::current().call_later(10ms, [req] {
      req->connection->write("part two");
      req->connection->finish();
    });
  });
  Response r = next_response();
  EXPECT_EQ(r.header("transfer-encoding"), "chunked");
  EXPECT_EQ(r.body, "part one, part two");
}

TEST_F(HTTP1ConnectionTest, ClosedUnderPendingResponse) {
  hold_ = true;
  start();
  send(get("/pending"));
  run_until([&] { return requests_.size() == 1; });
  auto req = requests_[0];
  int close_callbacks = 0;
  req->connection->set_close_callback([&] { ++close_callbacks; });
  EXPECT_FALSE(req->connection->closed());
  ::close(peer_);
  peer_ = -1;
  run_until([&] { return close_callbacks == 1; });
  EXPECT_EQ(connection_closes_, 1);
  EXPECT_TRUE(req->connection->closed());
  // Later writes are harmless no-ops.
  answer(req, 200, "too late");
  req->connection->write("more");
  req->connection->finish();
  EXPECT_THROW(run_sync([&]() -> Task<void> { co_await req->connection->drain(); }),
               StreamClosedError);
  // A close callback set after the close still runs.
  int late = 0;
  req->connection->set_close_callback([&] { ++late; });
  run_until([&] { return late == 1; });
  EXPECT_EQ(close_callbacks, 1);
  EXPECT_TRUE(ctx_->connections.empty());
}

TEST_F(HTTP1ConnectionTest, StaleResponseChannelWritesNothing) {
  hold_ = true;
  start();
  send(get("/one"));
  run_until([&] { return requests_.size() == 1; });
  auto one = requests_[0];
  auto stale = one->connection;
  answer(one, 200, "one");
  EXPECT_EQ(next_response().body, "one");
  send(get("/two"));
  run_until([&] { return requests_.size() == 2; });
  auto two = requests_[1];
  EXPECT_TRUE(stale->closed());
  EXPECT_FALSE(two->connection->closed());
  HTTPHeaders h;
  h.add("Content-Length", "5");
  stale->write_headers(200, h);
  stale->write("stale");
  stale->finish();
  stale->write_response(500, h, "stale");
  run_for(20ms);
  pump();
  EXPECT_EQ(received_, "");
  answer(two, 200, "two");
  Response r = next_response();
  EXPECT_EQ(r.body, "two");
  EXPECT_EQ(received_, "");
}

TEST_F(HTTP1ConnectionTest, InvalidHeaderIsRefusedAndNothingIsWritten) {
  hold_ = true;
  start();
  send(get("/inject"));
  run_until([&] { return requests_.size() == 1; });
  auto req = requests_[0];
  HTTPHeaders bad;
  bad.add("X-Bad", "a\r\nInjected: yes");
  EXPECT_THROW(req->connection->write_headers(200, bad), std::invalid_argument);
  HTTPHeaders bad_name;
  bad_name.add("X Bad", "v");
  EXPECT_THROW(req->connection->write_response(200, bad_name, "x"), std::invalid_argument);
  HTTPHeaders bad_length;
  bad_length.add("Content-Length", "12abc");
  EXPECT_THROW(req->connection->write_headers(200, bad_length), std::invalid_argument);
  HTTPHeaders nul;
  nul.add("X-Nul", std::string("a\0b", 3));
  EXPECT_THROW(req->connection->write_headers(200, nul), std::invalid_argument);
  run_for(10ms);
  pump();
  EXPECT_EQ(received_, "");
  // The channel is still usable after a refused call.
  answer(req, 500, "refused");
  Response r = next_response();
  EXPECT_EQ(r.status, 500);
  EXPECT_FALSE(r.has("injected"));
  EXPECT_FALSE(r.has("x-bad"));
}

TEST_F(HTTP1ConnectionTest, NoBodyStatusesKeepTheConnection) {
  hold_ = true;
  start();
  for (int status : {204, 304}) {
    send(get("/s"));
    run_until([&] { return !requests_.empty(); });
    auto req = requests_.back();
    requests_.clear();
    HTTPHeaders h;
    h.add("Content-Length", "10");  // what the body would have been; none is sent
    req->connection->write_headers(status, h);
    req->connection->write("0123456789");
    req->connection->finish();
    Response r = next_response();
    EXPECT_EQ(r.status, status);
    EXPECT_FALSE(r.has("connection")) << status;
  }
  send(get("/after"));
  run_until([&] { return !requests_.empty(); });
  answer(requests_.back(), 200, "after");
  EXPECT_EQ(next_response().body, "after");
  EXPECT_FALSE(eof_);
}

TEST_F(HTTP1ConnectionTest, HeadResponseHasNoBody) {
  start();
  send("HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n" + get("/g"));
  Response h = next_response(/*head=*/true);
  EXPECT_EQ(h.header("content-length"), "2");
  Response g = next_response();
  EXPECT_EQ(g.body, "/g");
}

TEST_F(HTTP1ConnectionTest, AnswerFromStartRequestKeepsAlive) {
  delegate_.start = [this](const std::shared_ptr<HTTPServerRequest>& req) {
    answer(req, 403, "early");
    auto msg = std::make_unique<Message>();
    msg->on_finish = [this] { ++connection_closes_; };  // must not run: already answered
    return RequestStart{std::move(msg)};
  };
  start();
  send(get("/x") + get("/y"));
  Response a = next_response(), b = next_response();
  EXPECT_EQ(a.status, 403);
  EXPECT_EQ(b.status, 403);
  EXPECT_FALSE(a.has("connection"));
  EXPECT_EQ(connection_closes_, 0);
  EXPECT_FALSE(eof_);
}

TEST_F(HTTP1ConnectionTest, AnswerBeforeBodyClosesAfterTheResponse) {
  delegate_.start = [](const std::shared_ptr<HTTPServerRequest>& req) {
    answer(req, 413, "no");
    return RequestStart{std::make_unique<Message>()};
  };
  start();
  send("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n" + std::string(1000, 'x'));
  Response r = next_response();
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.header("connection"), "close");
  // Lingering: the rest of the body is read and dropped, then the connection ends.
  send(std::string(99000, 'x'));
  EXPECT_TRUE(closed_by_server());
}

TEST_F(HTTP1ConnectionTest, HandlerExceptionGives500) {
  test_support::LogCapture logs;
  delegate_.start = [](const std::shared_ptr<HTTPServerRequest>&) {
    auto msg = std::make_unique<Message>();
    msg->on_finish = [] { throw std::runtime_error("boom"); };
    return RequestStart{std::move(msg)};
  };
  start();
  send(get("/throw"));
  Response r = next_response();
  EXPECT_EQ(r.status, 500);
  EXPECT_TRUE(closed_by_server());
  EXPECT_NE(logs.contents().find("boom"), std::string::npos);
}

TEST_F(HTTP1ConnectionTest, StartRequestExceptionGives500) {
  test_support::LogCapture logs;
  delegate_.start = [](const std::shared_ptr<HTTPServerRequest>&) -> RequestStart {
    throw std::runtime_error("no route");
  };
  start();
  send(get("/throw"));
  EXPECT_EQ(next_response().status, 500);
  EXPECT_TRUE(closed_by_server());
}

TEST_F(HTTP1ConnectionTest, StreamedBodyReachesDataReceived) {
  std::string got;
  delegate_.start = [&](const std::shared_ptr<HTTPServerRequest>& req) {
    auto msg = std::make_unique<Message>();
    msg->on_data = [&](std::string_view chunk) { got.append(chunk); };
    std::weak_ptr<HTTPServerRequest> weak = req;
    msg->on_finish = [&, weak] { answer(weak.lock(), 200, std::to_string(got.size())); };
    RequestStart s{std::move(msg)};
    s.stream_body = true;
    s.max_body_size = 0;
    return s;
  };
  start();
  std::string body(3 * 1024 * 1024, 'b');  // over the default 1 MiB limit
  send("POST /s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
  for (std::size_t i = 0; i < body.size(); i += 100000) {
    std::string piece = body.substr(i, 100000);
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
    send(std::string(size) + piece + "\r\n");
  }
  send("0\r\n\r\n");
  Response r = next_response();
  EXPECT_EQ(r.body, std::to_string(body.size()));
  EXPECT_EQ(got, body);
}

TEST_F(HTTP1ConnectionTest, ExpectContinue) {
  start();
  send("POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
  run_until([&] {
    pump();
    return received_.find("\r\n\r\n") != std::string::npos;
  });
  EXPECT_EQ(received_, "HTTP/1.1 100 Continue\r\n\r\n");
  received_.clear();
  send("abc");
  EXPECT_EQ(next_response().body, "/e:abc");
}

TEST_F(HTTP1ConnectionTest, ExpectContinueOverLimitGets413Only) {
  start();
  send("POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 5000000\r\nExpect: 100-continue\r\n\r\n");
  Response r = next_response();
  EXPECT_EQ(r.status, 413);
  EXPECT_TRUE(closed_by_server());
}

TEST_F(HTTP1ConnectionTest, MalformedRequestGets400AndClose) {
  start();
  send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n");
  Response r = next_response();
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.header("connection"), "close");
  EXPECT_TRUE(closed_by_server());
}

TEST_F(HTTP1ConnectionTest, HeaderTimeoutSends408EvenAfterAPipelinedRequest) {
  HTTPServerOptions o;
  o.header_timeout = 100ms;
  o.idle_timeout = 10s;
  start(o);
  // A whole request and the start of another: the second is held to the header timeout,
  // not the (longer) idle timeout.
  send(get("/a") + "GET /b HTTP/1.1\r\nHost: t\r\n");
  EXPECT_EQ(next_response().body, "/a");
  auto t0 = Clock::now();
  Response r = next_response();
  EXPECT_EQ(r.status, 408);
  EXPECT_LT(Clock::now() - t0, 5s);
  EXPECT_TRUE(closed_by_server());
}

TEST_F(HTTP1ConnectionTest, IdleTimeoutClosesQuietly) {
  HTTPServerOptions o;
  o.idle_timeout = 50ms;
  start(o);
  send(get("/a"));
  EXPECT_EQ(next_response().body, "/a");
  EXPECT_TRUE(closed_by_server());
  EXPECT_EQ(received_, "");
}

TEST_F(HTTP1ConnectionTest, ZeroTimeoutsAreDisabled) {
  HTTPServerOptions o;
  o.idle_timeout = Duration::zero();
  o.header_timeout = Duration::zero();
  start(o);
  send("GET / HTTP/1.1\r\n");
  run_for(50ms);
  EXPECT_FALSE(pump());
  send("Host: t\r\n\r\n");
  EXPECT_EQ(next_response().body, "/");
  run_for(50ms);
  EXPECT_FALSE(pump());
}

TEST_F(HTTP1ConnectionTest, BodyTimeoutAfterHeadersWritten) {
  HTTPServerOptions o;
  o.body_timeout = 50ms;
  std::shared_ptr<HTTPServerRequest> held;
  int closes = 0;
  delegate_.start = [&](const std::shared_ptr<HTTPServerRequest>& req) {
    held = req;
    HTTPHeaders h;
    req->connection->write_headers(200, h);  // chunked, started before the body
    req->connection->set_close_callback([&] { ++closes; });
    auto msg = std::make_unique<Message>();
    msg->on_data = [](std::string_view) {};
    RequestStart s{std::move(msg)};
    s.stream_body = true;
    return s;
  };
  start(o);
  send("POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n12345");
  EXPECT_TRUE(closed_by_server());
  // The response had begun: no 408 after it, only the close.
  EXPECT_EQ(received_.find("408"), std::string::npos);
  EXPECT_EQ(closes, 1);
  held.reset();
}

TEST_F(HTTP1ConnectionTest, WriteTimeoutCutsAClientThatNeverReads) {
  HTTPServerOptions o;
  o.write_timeout = 100ms;
  hold_ = true;
  start(o, 16 * 1024);
  send(get("/big"));
  run_until([&] { return requests_.size() == 1; });
  auto req = requests_[0];
  bool aborted = false;
  spawn_logged([](std::shared_ptr<HTTPServerRequest> req, bool& aborted) -> Task<void> {
    HTTPHeaders h;
    h.add("Content-Length", std::to_string(1ull << 30));
    req->connection->write_headers(200, h);
    std::string block(256 * 1024, 'z');
    try {
      for (;;) {
        req->connection->write(block);
        co_await req->connection->drain();
      }
    } catch (const StreamClosedError&) {
      aborted = true;
    }
  }(req, aborted));
  run_until([&] { return aborted; });
  EXPECT_TRUE(req->connection->closed());
}

TEST_F(HTTP1ConnectionTest, WriteTimeoutSparesASlowReaderAfterFinish) {
  // The whole response is queued at once and the request finished: the idle timeout
  // must not cut it while the client still takes bytes.
  HTTPServerOptions o;
  o.write_timeout = 300ms;
  o.idle_timeout = 50ms;
  delegate_.start = [](const std::shared_ptr<HTTPServerRequest>& req) {
    auto msg = std::make_unique<Message>();
    std::weak_ptr<HTTPServerRequest> weak = req;
    msg->on_finish = [weak] { answer(weak.lock(), 200, std::string(2 * 1024 * 1024, 'q')); };
    return RequestStart{std::move(msg)};
  };
  start(o, 16 * 1024);
  send(get("/big"));
  // Read slowly: 16 KiB every 5 ms, about 0.7 s in all, far beyond the idle timeout.
  Response r;
  TimePoint last_read{};
  run_until([&] {
    if (Clock::now() - last_read < 5ms) return false;
    last_read = Clock::now();
    char buf[16384];
    ssize_t n = ::read(peer_, buf, sizeof buf);
    if (n > 0) received_.append(buf, static_cast<std::size_t>(n));
    if (n == 0) eof_ = true;
    return take_response(received_, r, eof_) || eof_;
  });
  EXPECT_EQ(r.body.size(), 2u * 1024 * 1024);
}

TEST_F(HTTP1ConnectionTest, ServerDestructionClosesConnections) {
  hold_ = true;
  server_ = std::make_unique<HTTPServer>(delegate_);
  server_->listen(0, "127.0.0.1");
  int port = server_->ports().at(0);
  ASSERT_TRUE(connect_peer(port));
  send(get("/held"));
  run_until([&] { return requests_.size() == 1; });
  EXPECT_EQ(requests_[0]->remote_ip, "127.0.0.1");
  EXPECT_EQ(server_->open_connections(), 1u);
  int closes = 0;
  requests_[0]->connection->set_close_callback([&] { ++closes; });
  server_.reset();
  run_until([&] { return closes == 1; });
  EXPECT_TRUE(closed_by_server());
  answer(requests_[0], 200, "late");  // no-op, no crash
}

TEST_F(HTTP1ConnectionTest, CloseAllConnectionsLetsTheCurrentResponseFinish) {
  hold_ = true;
  server_ = std::make_unique<HTTPServer>(delegate_);
  server_->listen(0, "127.0.0.1");
  int port = server_->ports().at(0);
  ASSERT_TRUE(connect_peer(port));
  send(get("/busy"));
  run_until([&] { return requests_.size() == 1; });
  server_->close_all_connections();
  answer(requests_[0], 200, "done");
  Response r = next_response();
  EXPECT_EQ(r.body, "done");
  EXPECT_EQ(r.header("connection"), "close");
  EXPECT_TRUE(closed_by_server());
}

// A stop (a reload, an upgrade's drain) that comes between a client's connect and its
// first request: the request is answered, then the connection closes. With HTTP/2 on,
// the connection is still being sniffed for the preface when the stop comes; without,
// it is an idle HTTP/1 connection that has served nothing.
class CloseAllBeforeFirstRequest : public HTTP1ConnectionTest,
                                   public ::testing::WithParamInterface<bool> {};

TEST_P(CloseAllBeforeFirstRequest, AnswersItThenCloses) {
  server_ = std::make_unique<HTTPServer>(delegate_);
  if (!GetParam()) server_->disable_http2();
  server_->listen(0, "127.0.0.1");
  int port = server_->ports().at(0);
  ASSERT_TRUE(connect_peer(port));
  run_for(50ms);  // the server accepts the connection, with nothing sent yet
  EXPECT_EQ(server_->open_connections(), 1u);  // counted while its protocol is unknown
  server_->close_all_connections();
  send(get("/late"));
  Response r = next_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("connection"), "close");
  EXPECT_TRUE(closed_by_server());
}
INSTANTIATE_TEST_SUITE_P(HTTP1ConnectionTest, CloseAllBeforeFirstRequest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "http2_on" : "http1_only"; });

TEST(HTTPServerRequest, ParsesTargetsAndBuildsFullUrl) {
  HTTPServerRequest r;
  r.method = "GET";
  r.uri = "/a/b?x=1&y=2";
  r.headers.add("Host", "example.com:8080");
  ASSERT_TRUE(r.parse_target());
  EXPECT_EQ(r.path, "/a/b");
  EXPECT_EQ(r.query, "x=1&y=2");
  EXPECT_EQ(r.host_name, "example.com");
  EXPECT_EQ(r.full_url(), "http://example.com:8080/a/b?x=1&y=2");

  HTTPServerRequest a;
  a.method = "GET";
  a.uri = "http://other.org/p?q";
  a.headers.add("Host", "ignored");
  ASSERT_TRUE(a.parse_target());
  EXPECT_EQ(a.host, "other.org");
  EXPECT_EQ(a.path, "/p");
  EXPECT_EQ(a.query, "q");
  EXPECT_EQ(a.full_url(), "http://other.org/p?q");

  HTTPServerRequest v6;
  v6.method = "GET";
  v6.uri = "http://[::1]:99";
  ASSERT_TRUE(v6.parse_target());
  EXPECT_EQ(v6.path, "/");
  EXPECT_EQ(v6.host_name, "[::1]");

  HTTPServerRequest c;
  c.method = "CONNECT";
  c.uri = "example.com:443";
  ASSERT_TRUE(c.parse_target());
  EXPECT_EQ(c.host, "example.com:443");
  EXPECT_EQ(c.host_name, "example.com");
  EXPECT_EQ(c.path, "");

  HTTPServerRequest star;
  star.method = "OPTIONS";
  star.uri = "*";
  ASSERT_TRUE(star.parse_target());
  EXPECT_EQ(star.path, "*");

  HTTPServerRequest bad;
  bad.method = "GET";
  bad.uri = "nonsense";
  EXPECT_FALSE(bad.parse_target());
}

TEST(TimeoutList, ZeroDurationEntryReArmedFromItsCallbackDoesNotSpin) {
  IOLoop loop;
  loop.make_current();
  {
    TimeoutList list(loop, Duration::zero());
    struct State {
      TimeoutList* list;
      TimeoutEntry* entry;
      int fired = 0;
    } state{&list, nullptr};
    TimeoutEntry entry(
        [](void* p) {
          auto* s = static_cast<State*>(p);
          if (++s->fired < 3) s->list->arm(*s->entry);
        },
        &state);
    state.entry = &entry;
    list.arm(entry);
    run_sync([&]() -> Task<void> {
      while (state.fired < 3) co_await tronada::sleep(1ms);
    });
    EXPECT_EQ(state.fired, 3);
    EXPECT_FALSE(entry.armed());
  }
  test_support::expect_clean_close(loop);
}

TEST(TimeoutList, EntriesFireInOrderAndDisarmedOnesDoNot) {
  IOLoop loop;
  loop.make_current();
  {
    TimeoutList list(loop, 20ms);
    std::vector<int> fired;
    struct Ctx {
      std::vector<int>* fired;
      int id;
    };
    Ctx c1{&fired, 1}, c2{&fired, 2}, c3{&fired, 3};
    auto fire = [](void* p) {
      auto* c = static_cast<Ctx*>(p);
      c->fired->push_back(c->id);
    };
    TimeoutEntry e1(fire, &c1), e2(fire, &c2), e3(fire, &c3);
    list.arm(e1);
    list.arm(e2);
    list.arm(e3);
    e2.disarm();
    list.arm(e1);  // re-armed: now after e3
    run_sync([&]() -> Task<void> {
      while (fired.size() < 2) co_await tronada::sleep(1ms);
      co_await tronada::sleep(30ms);
    });
    EXPECT_EQ(fired, (std::vector<int>{3, 1}));
    EXPECT_TRUE(list.empty());
  }
  test_support::expect_clean_close(loop);
}

namespace {

std::string upgrade_request(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n";
}

// Takes over a detached stream: echoes what arrives, upper-cased, so the test can tell.
void echo_on(const std::shared_ptr<IOStream>& stream) {
  std::weak_ptr<IOStream> weak = stream;
  stream->set_data_handler([weak](std::string_view data) {
    std::string up(data);
    for (auto& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (auto s = weak.lock()) s->write(up, [] {});
  });
}

}  // namespace

TEST_F(HTTP1ConnectionTest, UpgradeDetachedFromFinishTakesLeftoverBytes) {
  std::shared_ptr<IOStream> taken;
  std::string leftover;
  delegate_.start = [&](const std::shared_ptr<HTTPServerRequest>& req) {
    auto msg = std::make_unique<Message>();
    std::weak_ptr<HTTPServerRequest> weak = req;
    msg->on_finish = [&, weak] {
      auto r = weak.lock();
      HTTPHeaders h;
      h.add("Upgrade", "echo");
      h.add("Connection", "Upgrade");
      r->connection->write_headers(101, h);
      DetachedConnection d = r->connection->detach();
      EXPECT_TRUE(r->connection->closed());
      taken = d.stream;
      leftover = d.leftover;
      echo_on(taken);
    };
    return RequestStart{std::move(msg)};
  };
  start();
  send(upgrade_request("/u") + "first bytes");
  run_until([&] {
    pump();
    return received_.find("\r\n\r\n") != std::string::npos;
  });
  EXPECT_EQ(received_.substr(0, 34), "HTTP/1.1 101 Switching Protocols\r\n");
  EXPECT_NE(received_.find("Upgrade: echo\r\n"), std::string::npos);
  EXPECT_EQ(received_.find("Content-Length"), std::string::npos);
  EXPECT_EQ(received_.find("Transfer-Encoding"), std::string::npos);
  EXPECT_EQ(leftover, "first bytes");
  EXPECT_TRUE(ctx_->connections.empty());
  received_.erase(0, received_.find("\r\n\r\n") + 4);
  send("hello");
  run_until([&] {
    pump();
    return received_ == "HELLO";
  });
  // The HTTP/1 connection no longer touches the stream: closing it leaves ours open.
  conn_->close();
  EXPECT_FALSE(taken->closed());
  taken->close();
  run_until([&] { return pump(); });
}

TEST_F(HTTP1ConnectionTest, UpgradeDetachedLaterTakesWhatArrivedMeanwhile) {
  hold_ = true;
  start();
  send(upgrade_request("/u") + "ab");
  run_until([&] { return requests_.size() == 1; });
  send("cd");
  run_for(20ms);
  HTTPHeaders h;
  h.add("Upgrade", "echo");
  requests_[0]->connection->write_headers(101, h);
  DetachedConnection d = requests_[0]->connection->detach();
  EXPECT_EQ(d.leftover, "abcd");
  // A second detach, or writes through the old channel, do nothing harmful.
  EXPECT_THROW(requests_[0]->connection->detach(), std::logic_error);
  requests_[0]->connection->write(std::string_view("ignored"));
  echo_on(d.stream);
  send("xy");
  run_until([&] {
    pump();
    return received_.size() >= 2 && received_.substr(received_.size() - 2) == "XY";
  });
  EXPECT_EQ(received_.find("ignored"), std::string::npos);
  d.stream->close();
  run_until([&] { return pump(); });
}

TEST_F(HTTP1ConnectionTest, DeclinedUpgradeStaysHTTP1) {
  start();
  send(upgrade_request("/u") + get("/next"));
  Response a = next_response();
  Response b = next_response();
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.body, "/u");
  EXPECT_EQ(b.body, "/next");
  EXPECT_FALSE(eof_);
}

TEST_F(HTTP1ConnectionTest, DetachRefusedForAnOrdinaryResponse) {
  hold_ = true;
  start();
  send(upgrade_request("/u"));
  run_until([&] { return requests_.size() == 1; });
  HTTPHeaders h;
  h.add("Transfer-Encoding", "chunked");
  requests_[0]->connection->write_headers(200, h);
  EXPECT_THROW(requests_[0]->connection->detach(), std::logic_error);
  requests_[0]->connection->finish();
  Response r = next_response();
  EXPECT_EQ(r.status, 200);
}

TEST_F(HTTP1ConnectionTest, PausedBodyStopsDataAndBodyTimeout) {
  std::string got;
  int calls_while_paused = 0;
  bool paused = false, paused_once = false;
  std::shared_ptr<HTTPServerRequest> current;
  delegate_.start = [&](const std::shared_ptr<HTTPServerRequest>& req) {
    current = req;
    auto msg = std::make_unique<Message>();
    msg->on_data = [&](std::string_view chunk) {
      if (paused) ++calls_while_paused;
      got.append(chunk);
      if (!paused_once) {
        paused = paused_once = true;
        current->connection->pause_reading();
      }
    };
    msg->on_finish = [&] { answer(current, 200, std::to_string(got.size())); };
    RequestStart s{std::move(msg)};
    s.stream_body = true;
    s.max_body_size = 0;
    return s;
  };
  HTTPServerOptions options;
  options.body_timeout = 100ms;
  start(options);
  std::string body(300000, 'p');
  send("POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) +
       "\r\n\r\n");
  send(body.substr(0, 1000));
  run_until([&] { return paused; });
  std::size_t at_pause = got.size();
  std::size_t written = 1000;
  auto write_some = [&] {
    while (written < body.size()) {
      ssize_t n = ::write(peer_, body.data() + written, body.size() - written);
      if (n <= 0) break;  // the socket buffer is full: that is the point
      written += static_cast<std::size_t>(n);
    }
  };
  // Longer than the body timeout: paused, it does not run.
  for (int i = 0; i < 10; ++i) {
    write_some();
    run_for(30ms);
  }
  EXPECT_EQ(calls_while_paused, 0);
  EXPECT_EQ(got.size(), at_pause);
  pump();
  EXPECT_FALSE(eof_);
  paused = false;
  current->connection->resume_reading();
  Response r;
  run_until([&] {
    write_some();
    pump();
    return take_response(received_, r, eof_);
  });
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, std::to_string(body.size()));
}

TEST_F(HTTP1ConnectionTest, FileRegionsFramedAsAnyBody) {
  hold_ = true;
  start();
  std::string data(200000, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i % 19);
  std::FILE* f = std::tmpfile();
  std::fwrite(data.data(), 1, data.size(), f);
  std::fflush(f);
  auto file = std::make_shared<OpenFile>(::dup(fileno(f)));
  std::fclose(f);

  // Chunked: each region is a chunk, in order with the bytes around it.
  send(get("/chunked"));
  run_until([&] { return requests_.size() == 1; });
  auto& chunked = *requests_[0]->connection;
  ASSERT_TRUE(chunked.can_write_file());
  chunked.write_head(200, std::vector<HeaderRef>{{"X-Kind", "chunked"}});
  chunked.write("<");
  chunked.write_file({file, 5, 100000});
  chunked.write(">");
  chunked.finish();
  Response r = next_response();
  EXPECT_EQ(r.header("transfer-encoding"), "chunked");
  EXPECT_EQ(r.header("x-kind"), "chunked");
  EXPECT_TRUE(r.body == "<" + data.substr(5, 100000) + ">");

  // With a Content-Length, and HEAD (no body at all).
  send(get("/fixed"));
  run_until([&] { return requests_.size() == 2; });
  auto& fixed = *requests_[1]->connection;
  fixed.write_head(200, std::vector<HeaderRef>{{"Content-Length", "200000"}});
  fixed.write_file({file, 0, data.size()});
  fixed.finish();
  r = next_response();
  EXPECT_TRUE(r.body == data);
  send("HEAD /head HTTP/1.1\r\nHost: x\r\n\r\n");
  run_until([&] { return requests_.size() == 3; });
  auto& head = *requests_[2]->connection;
  head.write_head(200, std::vector<HeaderRef>{{"Content-Length", "200000"}});
  head.write_file({file, 0, data.size()});
  head.finish();
  r = next_response(true);
  EXPECT_EQ(r.header("content-length"), "200000");
  EXPECT_EQ(r.body, "");

  // A file that ends before its region: the connection closes, short.
  send(get("/cut"));
  run_until([&] { return requests_.size() == 4; });
  auto& cut = *requests_[3]->connection;
  cut.write_head(200, std::vector<HeaderRef>{{"Content-Length", "5000"}});
  cut.write_file({file, data.size() - 1000, 5000});
  cut.finish();
  EXPECT_TRUE(closed_by_server());
  EXPECT_EQ(received_.substr(received_.size() - 1000), data.substr(data.size() - 1000));
  run_until([&] { return file.use_count() == 1; });
}

TEST_F(HTTP1ConnectionTest, WholeResponseFromViewsRefusesInjection) {
  hold_ = true;
  start();
  send(get("/"));
  run_until([&] { return requests_.size() == 1; });
  auto& conn = *requests_[0]->connection;
  std::vector<HeaderRef> bad{{"X-Bad", "a\r\nInjected: yes"}};
  EXPECT_THROW(conn.write_whole_response(200, bad, "x"), std::invalid_argument);
  conn.write_whole_response(203, std::vector<HeaderRef>{{"Content-Length", "2"}, {"X-A", "b"}},
                            "ok");
  Response r = next_response();
  EXPECT_EQ(r.status, 203);
  EXPECT_EQ(r.header("x-a"), "b");
  EXPECT_EQ(r.body, "ok");
  EXPECT_TRUE(r.has("date"));
}

TEST_F(HTTP1ConnectionTest, LingeringCloseWaitsForAFileBeingSent) {
  // Answered before the request body came: the connection sends the response, shuts
  // down its side and lingers. The shutdown must wait for the file too, not only for
  // what libuv holds, or the file is cut short.
  std::string data(1 << 20, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i % 17);
  std::FILE* f = std::tmpfile();
  std::fwrite(data.data(), 1, data.size(), f);
  std::fflush(f);
  auto file = std::make_shared<OpenFile>(::dup(fileno(f)));
  std::fclose(f);
  delegate_.start = [&](const std::shared_ptr<HTTPServerRequest>& req) {
    auto& conn = *req->connection;
    conn.write_head(200, std::vector<HeaderRef>{{"Content-Length", std::to_string(data.size())}});
    conn.write_file({file, 0, data.size()});
    conn.finish();
    return RequestStart{std::make_unique<Message>()};
  };
  start({}, 64 * 1024);
  send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n");
  Response r = next_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("connection"), "close");
  EXPECT_TRUE(r.body == data);
  EXPECT_TRUE(closed_by_server());
}
