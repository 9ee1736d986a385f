// HTTP2Session in process: a session on one end of a socketpair, and nghttp2's client
// session on the other end driven by the test on the same thread, for frame-level cases.
#include "tronada/http/http2_session.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <list>
#include <map>
#include <string>
#include <vector>

#include "support/loop_check.h"
#include "tronada/async/run_sync.h"
#include "tronada/async/sleep.h"

using namespace tronada;
using namespace std::chrono_literals;

namespace {

constexpr auto kTimeout = 20s;

struct ClientStream {
  int status = 0;
  std::map<std::string, std::string> headers;
  std::string body;
  bool closed = false;
  std::uint32_t error = 0;
};

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

void answer(const std::shared_ptr<HTTPServerRequest>& req, int status, const std::string& body) {
  HTTPHeaders h;
  h.add("Content-Length", std::to_string(body.size()));
  req->connection->write_response(status, h, body);
}

class HTTP2SessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    loop_.make_current();
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
    if (session_) session_->close();
    if (ctx_) run_until([&] { return ctx_->sessions.empty(); });
    session_.reset();
    ctx_.reset();
    if (client_) nghttp2_session_del(client_);
    if (peer_ >= 0) ::close(peer_);
    test_support::expect_clean_close(loop_);
  }

  void start(HTTPServerOptions options = {}, HTTP2Options h2 = {},
             std::vector<nghttp2_settings_entry> client_settings = {},
             bool client_auto_window = true) {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    peer_ = sv[1];
    fcntl(peer_, F_SETFL, fcntl(peer_, F_GETFL) | O_NONBLOCK);
    stream_ = IOStream::from_fd(sv[0], {}, &loop_);
    ctx_ = std::make_shared<detail::HTTP2ServerContext>();
    ctx_->base = std::make_shared<detail::HTTP1ServerContext>(loop_, options, &delegate_);
    ctx_->options = h2;
    session_ = std::make_shared<HTTP2Session>(stream_, ctx_);
    session_->start();

    nghttp2_session_callbacks* cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(
        cbs, [](nghttp2_session*, const nghttp2_frame* f, const std::uint8_t* n, std::size_t nl,
                const std::uint8_t* v, std::size_t vl, std::uint8_t, void* u) {
          auto* t = static_cast<HTTP2SessionTest*>(u);
          std::string name(reinterpret_cast<const char*>(n), nl);
          std::string value(reinterpret_cast<const char*>(v), vl);
          auto& s = t->streams_[f->hd.stream_id];
          if (name == ":status") s.status = std::stoi(value);
          s.headers[name] = value;
          return 0;
        });
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
        cbs, [](nghttp2_session*, std::uint8_t, std::int32_t id, const std::uint8_t* d,
                std::size_t len, void* u) {
          static_cast<HTTP2SessionTest*>(u)->streams_[id].body.append(
              reinterpret_cast<const char*>(d), len);
          return 0;
        });
    nghttp2_session_callbacks_set_on_stream_close_callback(
        cbs, [](nghttp2_session*, std::int32_t id, std::uint32_t code, void* u) {
          auto& s = static_cast<HTTP2SessionTest*>(u)->streams_[id];
          s.closed = true;
          s.error = code;
          return 0;
        });
    nghttp2_session_callbacks_set_on_frame_recv_callback(
        cbs, [](nghttp2_session*, const nghttp2_frame* f, void* u) {
          if (f->hd.type == NGHTTP2_GOAWAY) {
            auto* t = static_cast<HTTP2SessionTest*>(u);
            t->goaway_ = true;
            t->goaway_code_ = f->goaway.error_code;
          }
          return 0;
        });
    nghttp2_option* opt;
    nghttp2_option_new(&opt);
    if (!client_auto_window) nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_session_client_new2(&client_, cbs, this, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(client_, NGHTTP2_FLAG_NONE, client_settings.data(),
                            client_settings.size());
    flush_client();
  }

  std::int32_t request(const std::string& method, const std::string& path,
                       const std::string& body = "",
                       std::vector<std::pair<std::string, std::string>> extra = {}) {
    std::vector<std::pair<std::string, std::string>> fields = {
        {":method", method}, {":path", path}, {":scheme", "http"}, {":authority", "example"}};
    for (auto& f : extra) fields.push_back(f);
    std::vector<nghttp2_nv> nva;
    for (auto& [n, v] : fields) {
      nva.push_back({reinterpret_cast<std::uint8_t*>(n.data()),
                     reinterpret_cast<std::uint8_t*>(v.data()), n.size(), v.size(),
                     NGHTTP2_NV_FLAG_NONE});
    }
    bodies_.push_back(body);
    nghttp2_data_provider prd;
    prd.source.ptr = &bodies_.back();
    prd.read_callback = [](nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t len,
                           std::uint32_t* flags, nghttp2_data_source* src, void*) -> ssize_t {
      auto* b = static_cast<std::string*>(src->ptr);
      std::size_t n = std::min(len, b->size());
      std::memcpy(buf, b->data(), n);
      b->erase(0, n);
      if (b->empty()) *flags |= NGHTTP2_DATA_FLAG_EOF;
      return static_cast<ssize_t>(n);
    };
    std::int32_t id = nghttp2_submit_request(client_, nullptr, nva.data(), nva.size(),
                                             body.empty() ? nullptr : &prd, nullptr);
    flush_client();
    return id;
  }

  void flush_client() {
    for (;;) {
      const std::uint8_t* data;
      ssize_t n = nghttp2_session_mem_send(client_, &data);
      if (n <= 0) break;
      out_.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
    }
    while (!out_.empty()) {
      ssize_t n = ::write(peer_, out_.data(), out_.size());
      if (n <= 0) break;
      out_.erase(0, static_cast<std::size_t>(n));
    }
  }

  // Moves bytes both ways; true once the server closed.
  bool pump() {
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(peer_, buf, sizeof buf);
      if (n > 0) {
        nghttp2_session_mem_recv(client_, reinterpret_cast<std::uint8_t*>(buf),
                                 static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0 || (n < 0 && errno == ECONNRESET)) eof_ = true;
      break;
    }
    flush_client();
    return eof_;
  }

  void run_until(const std::function<bool()>& done, Duration timeout = kTimeout) {
    run_sync(
        [&]() -> Task<void> {
          while (!done()) co_await tronada::sleep(1ms);
        },
        timeout);
  }

  ClientStream& wait(std::int32_t id) {
    run_until([&] {
      pump();
      return streams_[id].closed;
    });
    return streams_[id];
  }

  IOLoop loop_;
  Delegate delegate_;
  std::shared_ptr<IOStream> stream_;
  std::shared_ptr<detail::HTTP2ServerContext> ctx_;
  std::shared_ptr<HTTP2Session> session_;
  nghttp2_session* client_ = nullptr;
  int peer_ = -1;
  std::string out_;
  std::list<std::string> bodies_;
  std::map<std::int32_t, ClientStream> streams_;
  bool eof_ = false;
  bool hold_ = false;
  bool goaway_ = false;
  std::uint32_t goaway_code_ = 0;
  int connection_closes_ = 0;
  std::vector<std::shared_ptr<HTTPServerRequest>> requests_;
};

}  // namespace

TEST_F(HTTP2SessionTest, AnswersRequestsWithFieldsAndBodies) {
  start();
  auto a = request("GET", "/a?x=1", "", {{"cookie", "a=1"}, {"cookie", "b=2"}, {"x-y", "z"}});
  auto b = request("POST", "/b", std::string(100000, 'p'));
  auto& ra = wait(a);
  EXPECT_EQ(ra.status, 200);
  EXPECT_EQ(ra.body, "/a");
  EXPECT_EQ(ra.error, 0u);
  EXPECT_FALSE(ra.headers["date"].empty());
  EXPECT_EQ(ra.headers["server"], "tronada");
  auto& rb = wait(b);
  EXPECT_EQ(rb.body, "/b:" + std::string(100000, 'p'));
  ASSERT_EQ(requests_.size(), 2u);
  auto& req = *requests_[0];
  EXPECT_EQ(req.version, "HTTP/2");
  EXPECT_EQ(req.method, "GET");
  EXPECT_EQ(req.query, "x=1");
  EXPECT_EQ(req.host, "example");
  EXPECT_EQ(req.headers.get("Cookie").value_or(""), "a=1; b=2");
  EXPECT_EQ(req.headers.get("X-Y").value_or(""), "z");
}

TEST_F(HTTP2SessionTest, HostFieldWinsOverAuthority) {
  start();
  // A host field among many (the fields' vector grows after it went in) and a cookie
  // added behind them all; then one with :authority alone.
  std::vector<std::pair<std::string, std::string>> fields = {{"x-a", "1"},
                                                             {"host", "host.example:8080"}};
  for (int i = 0; i < 12; ++i) fields.emplace_back("x-" + std::to_string(i), "v");
  fields.emplace_back("cookie", "c=1");
  auto a = request("GET", "/a", "", fields);
  auto b = request("GET", "/b");
  wait(a);
  wait(b);
  ASSERT_EQ(requests_.size(), 2u);
  EXPECT_EQ(requests_[0]->host, "host.example:8080");
  EXPECT_EQ(requests_[0]->host_name, "host.example");
  EXPECT_EQ(requests_[0]->headers.get("Host").value_or(""), "host.example:8080");
  EXPECT_EQ(requests_[0]->headers.get("Cookie").value_or(""), "c=1");
  EXPECT_EQ(requests_[1]->host, "example");
  EXPECT_EQ(requests_[1]->headers.get("Host").value_or(""), "example");
}

TEST_F(HTTP2SessionTest, StreamsAnswerOutOfOrder) {
  hold_ = true;
  start();
  std::vector<std::int32_t> ids = {request("GET", "/1"), request("GET", "/2"),
                                   request("GET", "/3")};
  run_until([&] {
    pump();
    return requests_.size() == 3;
  });
  for (int i = 2; i >= 0; --i) answer(requests_[i], 200, "r" + std::to_string(i));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(wait(ids[i]).body, "r" + std::to_string(i));
}

TEST_F(HTTP2SessionTest, HeadAnd204HaveNoBody) {
  hold_ = true;
  start();
  auto h = request("HEAD", "/h");
  auto n = request("GET", "/n");
  run_until([&] {
    pump();
    return requests_.size() == 2;
  });
  answer(requests_[0], 200, "dropped");
  HTTPHeaders none;
  requests_[1]->connection->write_headers(204, none);
  requests_[1]->connection->write("dropped too");
  requests_[1]->connection->finish();
  EXPECT_EQ(wait(h).body, "");
  EXPECT_EQ(wait(h).headers["content-length"], "7");
  EXPECT_EQ(wait(n).status, 204);
  EXPECT_EQ(wait(n).body, "");
}

TEST_F(HTTP2SessionTest, ConnectionSpecificAndInjectedFieldsAreRefused) {
  hold_ = true;
  start();
  auto id = request("GET", "/");
  run_until([&] {
    pump();
    return requests_.size() == 1;
  });
  HTTPHeaders bad;
  bad.add("X-Bad", "a\r\nInjected: yes");
  EXPECT_THROW(requests_[0]->connection->write_headers(200, bad), std::invalid_argument);
  HTTPHeaders h;
  h.add("Connection", "keep-alive");
  h.add("Transfer-Encoding", "chunked");
  h.add("X-Ok", "1");
  requests_[0]->connection->write_headers(200, h);
  requests_[0]->connection->write("abc");
  requests_[0]->connection->finish();
  auto& r = wait(id);
  EXPECT_EQ(r.error, 0u);  // nghttp2 would reset a response with connection fields
  EXPECT_EQ(r.body, "abc");
  EXPECT_EQ(r.headers["x-ok"], "1");
  EXPECT_EQ(r.headers.count("connection"), 0u);
}

TEST_F(HTTP2SessionTest, ResetStopsTheHandlersOutput) {
  hold_ = true;
  start();
  auto id = request("GET", "/big");
  run_until([&] {
    pump();
    return requests_.size() == 1;
  });
  auto conn = requests_[0]->connection;
  bool close_cb = false;
  conn->set_close_callback([&] { close_cb = true; });
  HTTPHeaders h;
  conn->write_headers(200, h);
  conn->write(std::string(1 << 20, 'x'));  // far more than the 64 KiB window
  Future<void> drained = conn->drain();
  EXPECT_FALSE(drained.done());
  nghttp2_submit_rst_stream(client_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
  flush_client();
  run_until([&] {
    pump();
    return close_cb;
  });
  EXPECT_TRUE(conn->closed());
  EXPECT_EQ(connection_closes_, 1);
  run_until([&] { return drained.done(); });
  EXPECT_THROW(drained.result(), StreamClosedError);
  conn->write("ignored");  // no-ops now
  conn->finish();
  // The connection goes on.
  hold_ = false;
  EXPECT_EQ(wait(request("GET", "/next")).body, "/next");
}

TEST_F(HTTP2SessionTest, DrainWaitsUntilTheClientTakesTheBody) {
  hold_ = true;
  start();
  auto id = request("GET", "/");
  run_until([&] {
    pump();
    return requests_.size() == 1;
  });
  auto conn = requests_[0]->connection;
  conn->write_headers(200, HTTPHeaders());
  conn->write(std::string(1 << 20, 'y'));
  // The client's 64 KiB windows hold most of it back until the client reads.
  Future<void> drained = conn->drain();
  EXPECT_FALSE(drained.done());
  run_until([&] {
    pump();
    return drained.done();
  });
  conn->finish();
  EXPECT_EQ(wait(id).body.size(), std::size_t{1} << 20);
}

TEST_F(HTTP2SessionTest, RapidResetsGetGoaway) {
  hold_ = true;
  HTTP2Options h2;
  h2.max_resets_per_interval = 10;
  start({}, h2);
  for (int i = 0; i < 30; ++i) {
    auto id = request("GET", "/slow");
    nghttp2_submit_rst_stream(client_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
  }
  flush_client();
  run_until([&] { return pump(); });
  EXPECT_TRUE(goaway_);
  EXPECT_EQ(goaway_code_, static_cast<std::uint32_t>(NGHTTP2_ENHANCE_YOUR_CALM));
}

TEST_F(HTTP2SessionTest, OversizedHeaderListGets431) {
  HTTPServerOptions o;
  o.limits.max_header_bytes = 4096;
  start(o);
  auto id = request("GET", "/", "", {{"x-big", std::string(5000, 'v')}});
  EXPECT_EQ(wait(id).status, 431);
  EXPECT_TRUE(requests_.empty());
  EXPECT_EQ(wait(request("GET", "/ok")).status, 200);
}

TEST_F(HTTP2SessionTest, BodyOverTheLimitGets413) {
  HTTPServerOptions o;
  o.limits.max_body_bytes = 1000;
  start(o);
  auto id = request("POST", "/", std::string(5000, 'b'));
  EXPECT_EQ(wait(id).status, 413);
  EXPECT_TRUE(requests_.empty());
}

TEST_F(HTTP2SessionTest, GracefulShutdownFinishesStreamsInFlight) {
  hold_ = true;
  start();
  auto id = request("GET", "/slow");
  run_until([&] {
    pump();
    return requests_.size() == 1;
  });
  session_->close_when_idle();
  run_until([&] {
    pump();
    return goaway_;
  });
  EXPECT_EQ(goaway_code_, 0u);
  EXPECT_FALSE(eof_);
  answer(requests_[0], 200, "done");
  EXPECT_EQ(wait(id).body, "done");
  run_until([&] { return pump(); });
  EXPECT_TRUE(eof_);
}

TEST_F(HTTP2SessionTest, IdleTimeoutSendsGoaway) {
  HTTPServerOptions o;
  o.idle_timeout = 50ms;
  start(o);
  EXPECT_EQ(wait(request("GET", "/")).status, 200);
  run_until([&] { return pump(); });
  EXPECT_TRUE(goaway_);
  EXPECT_EQ(goaway_code_, 0u);
}

TEST_F(HTTP2SessionTest, IdleTimeoutWaitsWhileAStreamIsOpen) {
  hold_ = true;
  HTTPServerOptions o;
  o.idle_timeout = 50ms;
  start(o);
  auto id = request("GET", "/slow");
  run_until([&] {
    pump();
    return requests_.size() == 1;
  });
  // Four idle timeouts pass with the stream open and unanswered: no GOAWAY.
  TimePoint until = Clock::now() + 200ms;
  run_until([&] {
    pump();
    return Clock::now() > until;
  });
  EXPECT_FALSE(goaway_);
  requests_[0]->connection->write_whole_response(200, {}, "late");
  EXPECT_EQ(wait(id).body, "late");
  // The last stream closed: now the connection is idle.
  run_until([&] { return pump(); });
  EXPECT_TRUE(goaway_);
  EXPECT_EQ(goaway_code_, 0u);
}

TEST_F(HTTP2SessionTest, PausedBodyHoldsThePeerBackByItsWindow) {
  std::size_t received = 0;
  std::shared_ptr<HTTPServerRequest> paused;
  bool finished = false;
  delegate_.start = [&](const std::shared_ptr<HTTPServerRequest>& req) {
    auto msg = std::make_unique<Message>();
    msg->on_data = [&, req](std::string_view chunk) {
      received += chunk.size();
      if (!paused) {
        paused = req;
        req->connection->pause_reading();
      }
    };
    msg->on_finish = [&, req] {
      finished = true;
      answer(req, 200, std::to_string(received));
    };
    RequestStart s{std::move(msg)};
    s.stream_body = true;
    s.max_body_size = 0;
    return s;
  };
  start();
  auto id = request("POST", "/up", std::string(2 << 20, 'u'));
  run_until([&] {
    pump();
    return paused != nullptr;
  });
  for (int i = 0; i < 50; ++i) {
    pump();
    run_until([] { return true; });
  }
  // Nothing more reached the handler, and the client could send at most one window.
  std::size_t while_paused = received;
  EXPECT_FALSE(finished);
  EXPECT_LE(nghttp2_session_get_stream_remote_window_size(client_, id), 256 * 1024);
  paused->connection->resume_reading();
  auto& r = wait(id);
  EXPECT_TRUE(finished);
  EXPECT_EQ(r.body, std::to_string(2 << 20));
  EXPECT_LT(while_paused, std::size_t{2} << 20);
}

TEST_F(HTTP2SessionTest, WholeResponseFromViewsAndInjectionRefused) {
  hold_ = true;
  start();
  auto ok = request("GET", "/ok");
  auto head = request("HEAD", "/head");
  run_until([&] {
    pump();
    return requests_.size() == 2;
  });
  HeaderRef bad[] = {{"X-Bad", "a\r\nInjected: yes"}};
  EXPECT_THROW(requests_[0]->connection->write_whole_response(200, bad, "x"),
               std::invalid_argument);
  // Long names and values are checked a word (a vector) at a time: a bad byte anywhere,
  // in the overlapping last block too, is still found.
  HeaderRef bad_long_value[] = {{"X-Long", "0123456789abcdef012345\nInjected"}};
  EXPECT_THROW(requests_[0]->connection->write_whole_response(200, bad_long_value, "x"),
               std::invalid_argument);
  HeaderRef bad_long_name[] = {{"X-Long-Name-With Space", "v"}};
  EXPECT_THROW(requests_[0]->connection->write_whole_response(200, bad_long_name, "x"),
               std::invalid_argument);
  HeaderRef fields[] = {{"Content-Type", "text/plain"},
                        {"Connection", "keep-alive"},
                        {"Content-Length", "5"},
                        {"X-Mixed-Case", "v"},
                        {"X_Other~Token!Chars", "a value longer than sixteen bytes"}};
  requests_[0]->connection->write_whole_response(206, fields, "hello");
  // Written whole: a second answer is a logic error, not a second HEADERS.
  EXPECT_THROW(requests_[0]->connection->write_whole_response(200, fields, "again"),
               std::logic_error);
  requests_[1]->connection->write_whole_response(200, fields, "hello");
  auto& r = wait(ok);
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.error, 0u);
  EXPECT_EQ(r.body, "hello");
  EXPECT_EQ(r.headers["content-type"], "text/plain");
  EXPECT_EQ(r.headers["x-mixed-case"], "v");
  EXPECT_EQ(r.headers["x_other~token!chars"], "a value longer than sixteen bytes");
  EXPECT_EQ(r.headers.count("connection"), 0u);
  EXPECT_FALSE(r.headers["date"].empty());
  EXPECT_EQ(r.headers["server"], "tronada");
  auto& h = wait(head);
  EXPECT_EQ(h.body, "");
  EXPECT_EQ(h.headers["content-length"], "5");
}

TEST_F(HTTP2SessionTest, CheckedFieldsAreLowercasedAsOthers) {
  hold_ = true;
  start();
  auto ok = request("GET", "/ok");
  run_until([&] {
    pump();
    return requests_.size() == 1;
  });
  // Vouched for by the sender: lowercased a word at a time without the checks. Letters
  // at both ends of a word, other token characters, names shorter than a word and
  // longer than two.
  HeaderRef fields[] = {{"Content-Type", "text/plain", true},
                        {"A", "1", true},
                        {"ZZ-Top", "2", true},
                        {"AbcdefgH", "3", true},
                        {"XyZ", "5", true},
                        {"Q-Abcdef", "6", true},
                        {"ABCDEFGHI", "7", true},
                        {"X-Some~Token!Chars_Az", "4", true},
                        {"ETag", "\"abc\"", true},
                        {"Last-Modified", "Mon, 07 Dec 2026 10:00:00 GMT", true}};
  requests_[0]->connection->write_whole_response(200, fields, "hello");
  auto& r = wait(ok);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-type"], "text/plain");
  EXPECT_EQ(r.headers["a"], "1");
  EXPECT_EQ(r.headers["zz-top"], "2");
  EXPECT_EQ(r.headers["abcdefgh"], "3");
  EXPECT_EQ(r.headers["xyz"], "5");
  EXPECT_EQ(r.headers["q-abcdef"], "6");
  EXPECT_EQ(r.headers["abcdefghi"], "7");
  EXPECT_EQ(r.headers["x-some~token!chars_az"], "4");
  EXPECT_EQ(r.headers["etag"], "\"abc\"");
  EXPECT_EQ(r.headers["last-modified"], "Mon, 07 Dec 2026 10:00:00 GMT");
}

TEST_F(HTTP2SessionTest, FileRegionsGoOutInOrderWithTheBody) {
  hold_ = true;
  start();
  auto id = request("GET", "/file");
  auto cut = request("GET", "/cut");
  run_until([&] {
    pump();
    return requests_.size() == 2;
  });
  std::string data(100000, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i % 23);
  std::FILE* f = std::tmpfile();
  std::fwrite(data.data(), 1, data.size(), f);
  std::fflush(f);
  auto file = std::make_shared<OpenFile>(::dup(fileno(f)));
  std::fclose(f);
  auto& conn = *requests_[0]->connection;
  ASSERT_TRUE(conn.can_write_file());
  HTTPHeaders h;
  conn.write_headers(200, h);
  conn.write("<");
  conn.write_file({file, 10, 50000});
  conn.write("|");
  conn.write_file({file, 90000, 10000});
  conn.write(">");
  conn.finish();
  // A file that ends before its region: the stream is reset, not left waiting.
  auto& short_conn = *requests_[1]->connection;
  short_conn.write_headers(200, h);
  short_conn.write_file({file, 99000, 5000});
  short_conn.finish();
  auto& r = wait(id);
  EXPECT_EQ(r.error, 0u);
  EXPECT_TRUE(r.body == "<" + data.substr(10, 50000) + "|" + data.substr(90000) + ">");
  auto& c = wait(cut);
  EXPECT_NE(c.error, 0u);
  EXPECT_EQ(c.body, data.substr(99000));
  run_until([&] {
    pump();
    return file.use_count() == 1;
  });
}
