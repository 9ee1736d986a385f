#include "tronada/web/application.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tronada/async/sleep.h"
#include "tronada/testing/test_server.h"
#include "tronada/web/request_handler.h"
#include "tronada/web/response_transforms.h"

using namespace tronada;
using namespace std::chrono_literals;
using tronada::testing::Request;
using tronada::testing::TestServer;

namespace {

class HelloHandler : public RequestHandler {
 public:
  Task<void> get() override {
    write("Hello, world");
    co_return;
  }
};

class ArgsHandler : public RequestHandler {
 public:
  Task<void> get() override {
    std::string out;
    for (const auto& a : path_args()) out += "[" + a + "]";
    for (const auto& [k, v] : path_kwargs()) out += k + "=" + v + ";";
    write(out);
    co_return;
  }
};

class GreetingHandler : public RequestHandler {
 public:
  void initialize(std::string greeting) { greeting_ = std::move(greeting); }
  Task<void> get() override {
    write(greeting_ + ", " + get_argument("name", "nobody"));
    co_return;
  }
  Task<void> post() override {
    write(greeting_ + ", " + get_argument("name"));
    co_return;
  }
  std::vector<std::string> allowed_methods() const override { return {"GET", "POST"}; }

 private:
  std::string greeting_;
};

std::vector<std::string>* g_hooks = nullptr;

class HooksHandler : public RequestHandler {
 public:
  Task<void> prepare() override {
    g_hooks->push_back("prepare");
    if (get_query_argument("stop")) finish("stopped in prepare");
    co_return;
  }
  Task<void> get() override {
    g_hooks->push_back("get");
    write("ok");
    co_return;
  }
  void on_finish() override { g_hooks->push_back("on_finish"); }
};

class ThrowingHandler : public RequestHandler {
 public:
  Task<void> get() override {
    if (get_argument("kind", "") == "http") throw HTTPError(418, "teapot");
    throw std::runtime_error("secret detail");
    co_return;
  }
};

// The tour's asynchronous handler: the method returns, a timeout finishes it later.
class LaterHandler : public RequestHandler {
 public:
  Task<void> get() override {
    keep_open();
    IOLoop::current().call_later(20ms, [this] { finish("finished from a callback"); });
    co_return;
  }
};

class CoroutineHandler : public RequestHandler {
 public:
  Task<void> get() override {
    co_await sleep(10ms);
    write("slept");
  }
};

class RedirectHandler : public RequestHandler {
 public:
  Task<void> get() override {
    redirect(reverse_url("args", {"42"}), get_argument("p", "") == "1");
    co_return;
  }
};

class JsonHandler : public RequestHandler {
 public:
  Task<void> post() override {
    nlohmann::json in = json_body();
    write_json({{"got", in["value"]}, {"ok", true}});
    co_return;
  }
};

class BigHandler : public RequestHandler {
 public:
  Task<void> get() override {
    write(std::string(5000, 'a'));
    co_return;
  }
};

class FlushHandler : public RequestHandler {
 public:
  Task<void> get() override {
    for (int i = 0; i < 3; ++i) {
      write("part" + std::to_string(i) + ";");
      Future<void> flushed = flush();
      co_await flushed;
    }
  }
};

class CookieHandler : public RequestHandler {
 public:
  Task<void> get() override {
    std::string mode = get_argument("mode", "");
    if (mode == "set") {
      set_signed_cookie("user", "alice");
      set_cookie("plain", "yes");
      write("set");
    } else {
      write("user=" + get_signed_cookie("user").value_or("<none>") +
            " plain=" + get_cookie("plain").value_or("<none>"));
    }
    co_return;
  }
};

class FormHandler : public RequestHandler {
 public:
  Task<void> get() override {
    write(xsrf_form_html());
    co_return;
  }
  Task<void> post() override {
    std::string out = "name=" + get_argument("name", "");
    for (const auto& f : files("upload")) out += " file=" + f.filename + ":" + f.body;
    write(out);
    co_return;
  }
  std::vector<std::string> allowed_methods() const override { return {"GET", "POST"}; }
};

std::unique_ptr<Application> make_app(ApplicationSettings settings = {}) {
  settings.cookie_secret = "test-secret";
  return std::make_unique<Application>(
      std::vector<Rule>{
          Rule("/", handler<HelloHandler>()),
          Rule("/args/([0-9]+)", handler<ArgsHandler>(), "args"),
          Rule("/named/(?P<id>[a-z]+)/(?P<page>[0-9]+)", handler<ArgsHandler>()),
          Rule("/greet", handler<GreetingHandler>(std::string("Hi"))),
          Rule("/hooks", handler<HooksHandler>()),
          Rule("/throw", handler<ThrowingHandler>()),
          Rule("/later", handler<LaterHandler>()),
          Rule("/coro", handler<CoroutineHandler>()),
          Rule("/redirect", handler<RedirectHandler>()),
          Rule("/json", handler<JsonHandler>()),
          Rule("/big", handler<BigHandler>()),
          Rule("/flush", handler<FlushHandler>()),
          Rule("/cookie", handler<CookieHandler>()),
          Rule("/form", handler<FormHandler>()),
      },
      std::move(settings));
}

Request post(std::string path, std::string body, std::string type) {
  Request r;
  r.method = "POST";
  r.path = std::move(path);
  r.body = std::move(body);
  r.headers.add("Content-Type", std::move(type));
  return r;
}

}  // namespace

TEST(Application, HelloWorld) {
  TestServer server(make_app());
  auto r = server.fetch("/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "Hello, world");
  EXPECT_EQ(r.headers.get("Content-Type").value_or(""), "text/html; charset=UTF-8");
}

TEST(Application, NotFoundAndMethodNotAllowed) {
  TestServer server(make_app());
  EXPECT_EQ(server.fetch("/nope").status, 404);
  auto r = server.fetch(post("/", "", "text/plain"));
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.headers.get("Allow").value_or(""), "GET, HEAD");
  Request del;
  del.method = "DELETE";
  del.path = "/greet";
  r = server.fetch(del);
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.headers.get("Allow").value_or(""), "GET, POST");
}

TEST(Application, PositionalAndNamedCaptures) {
  TestServer server(make_app());
  EXPECT_EQ(server.fetch("/args/123").body, "[123]");
  EXPECT_EQ(server.fetch("/args/12x").status, 404);
  EXPECT_EQ(server.fetch("/named/abc/7").body, "id=abc;page=7;");
}

TEST(Application, InitializeArgumentsAndQueryArguments) {
  TestServer server(make_app());
  EXPECT_EQ(server.fetch("/greet?name=Ana").body, "Hi, Ana");
  EXPECT_EQ(server.fetch("/greet").body, "Hi, nobody");
  EXPECT_EQ(server.fetch(post("/greet", "name=Bo+Li", "application/x-www-form-urlencoded")).body,
            "Hi, Bo Li");
  // A missing required argument is a 400, not a 500.
  EXPECT_EQ(server.fetch(post("/greet", "", "application/x-www-form-urlencoded")).status, 400);
}

TEST(Application, HookOrder) {
  std::vector<std::string> hooks;
  g_hooks = &hooks;
  TestServer server(make_app());
  EXPECT_EQ(server.fetch("/hooks").body, "ok");
  EXPECT_EQ(hooks, (std::vector<std::string>{"prepare", "get", "on_finish"}));
  hooks.clear();
  EXPECT_EQ(server.fetch("/hooks?stop=1").body, "stopped in prepare");
  EXPECT_EQ(hooks, (std::vector<std::string>{"prepare", "on_finish"}));
  g_hooks = nullptr;
}

TEST(Application, ErrorsHideDetailsUnlessDebug) {
  {
    TestServer server(make_app());
    auto r = server.fetch("/throw");
    EXPECT_EQ(r.status, 500);
    EXPECT_EQ(r.body.find("secret detail"), std::string::npos);
    EXPECT_EQ(server.fetch("/throw?kind=http").status, 418);
  }
  {
    ApplicationSettings s;
    s.debug = true;
    TestServer server(make_app(s));
    auto r = server.fetch("/throw");
    EXPECT_EQ(r.status, 500);
    EXPECT_NE(r.body.find("secret detail"), std::string::npos);
  }
}

TEST(Application, AsynchronousAndCoroutineHandlers) {
  TestServer server(make_app());
  EXPECT_EQ(server.fetch("/later").body, "finished from a callback");
  EXPECT_EQ(server.fetch("/coro").body, "slept");
}

TEST(Application, RedirectAndReverseUrl) {
  TestServer server(make_app());
  EXPECT_EQ(server.app().reverse_url("args", {"7"}), "/args/7");
  auto r = server.fetch("/redirect");
  EXPECT_EQ(r.status, 302);
  EXPECT_EQ(r.headers.get("Location").value_or(""), "/args/42");
  EXPECT_EQ(server.fetch("/redirect?p=1").status, 301);
}

TEST(Application, JsonBodies) {
  TestServer server(make_app());
  auto r = server.fetch(post("/json", R"({"value": 5})", "application/json"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(nlohmann::json::parse(r.body), nlohmann::json({{"got", 5}, {"ok", true}}));
  EXPECT_EQ(r.headers.get("Content-Type").value_or(""), "application/json; charset=UTF-8");
  EXPECT_EQ(server.fetch(post("/json", "{nope", "application/json")).status, 400);
}

TEST(Application, EtagAndNotModified) {
  TestServer server(make_app());
  auto r = server.fetch("/");
  auto etag = std::string(r.headers.get("ETag").value_or(""));
  ASSERT_FALSE(etag.empty());
  Request again;
  again.headers.add("If-None-Match", etag);
  auto r2 = server.fetch(again);
  EXPECT_EQ(r2.status, 304);
  EXPECT_EQ(r2.body, "");
}

TEST(Application, GzipWhenAccepted) {
  ApplicationSettings s;
  s.compress_response = true;
  TestServer server(make_app(s));
  Request req;
  req.path = "/big";
  req.headers.add("Accept-Encoding", "gzip, deflate");
  auto r = server.fetch(req);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.get("Content-Encoding").value_or(""), "gzip");
  EXPECT_LT(r.body.size(), 5000u);
  EXPECT_NE(r.headers.get_joined("Vary").value_or("").find("Accept-Encoding"), std::string::npos);
  auto plain = server.fetch("/big");
  EXPECT_FALSE(plain.headers.contains("Content-Encoding"));
  EXPECT_EQ(plain.body.size(), 5000u);
}

TEST(Application, FlushStreamsInPieces) {
  TestServer server(make_app());
  auto r = server.fetch("/flush");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "part0;part1;part2;");
  EXPECT_EQ(r.headers.get("Transfer-Encoding").value_or(""), "chunked");
}

TEST(Application, SignedCookiesRoundTripAndRejectTampering) {
  TestServer server(make_app());
  auto set = server.fetch("/cookie?mode=set");
  auto cookies = set.headers.get_all("Set-Cookie");
  ASSERT_EQ(cookies.size(), 2u);
  std::string user_cookie(cookies[0].substr(0, cookies[0].find(';')));
  std::string plain_cookie(cookies[1].substr(0, cookies[1].find(';')));
  Request get;
  get.path = "/cookie";
  get.headers.add("Cookie", user_cookie + "; " + plain_cookie);
  EXPECT_EQ(server.fetch(get).body, "user=alice plain=yes");
  // Tamper with the value part: the signature no longer matches.
  std::string tampered = user_cookie;
  tampered[tampered.size() - 3] = tampered[tampered.size() - 3] == 'a' ? 'b' : 'a';
  Request bad;
  bad.path = "/cookie";
  bad.headers.add("Cookie", tampered);
  EXPECT_EQ(server.fetch(bad).body, "user=<none> plain=<none>");
}

TEST(Application, XsrfAcceptAndReject) {
  ApplicationSettings s;
  s.xsrf_cookies = true;
  TestServer server(make_app(s));
  auto page = server.fetch("/form");
  auto cookie = page.headers.get("Set-Cookie").value_or("");
  std::string xsrf_cookie(cookie.substr(0, cookie.find(';')));
  std::string token = xsrf_cookie.substr(xsrf_cookie.find('=') + 1);
  // Without a token: 403.
  EXPECT_EQ(server.fetch(post("/form", "name=x", "application/x-www-form-urlencoded")).status, 403);
  // Form field.
  auto ok = post("/form", "name=x&_xsrf=" + token, "application/x-www-form-urlencoded");
  ok.headers.add("Cookie", xsrf_cookie);
  EXPECT_EQ(server.fetch(ok).status, 200);
  // Header.
  auto hdr = post("/form", "name=x", "application/x-www-form-urlencoded");
  hdr.headers.add("Cookie", xsrf_cookie);
  hdr.headers.add("X-XSRFToken", token);
  EXPECT_EQ(server.fetch(hdr).status, 200);
  // Wrong token.
  auto wrong = post("/form", "name=x&_xsrf=2|00|11|22", "application/x-www-form-urlencoded");
  wrong.headers.add("Cookie", xsrf_cookie);
  EXPECT_EQ(server.fetch(wrong).status, 403);
}

TEST(Application, MultipartUpload) {
  TestServer server(make_app());
  std::string body =
      "--XyZ\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nAna\r\n"
      "--XyZ\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"a.txt\"\r\n"
      "Content-Type: text/plain\r\n\r\nfile body\r\n--XyZ--\r\n";
  auto r = server.fetch(post("/form", body, "multipart/form-data; boundary=XyZ"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "name=Ana file=a.txt:file body");
}

TEST(Application, StaticFilesThroughTheApplication) {
  auto dir =
      std::filesystem::temp_directory_path() / ("tronada-static-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "app.css") << "body{}";
  ApplicationSettings s;
  s.static_path = dir.string();
  TestServer server(make_app(s));
  auto r = server.fetch("/static/app.css");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "body{}");
  EXPECT_EQ(r.headers.get("Content-Type").value_or(""), "text/css; charset=utf-8");
  EXPECT_EQ(server.fetch("/static/../etc/passwd").status, 404);
  EXPECT_NE(server.app().static_url("app.css").find("/static/app.css?v="), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(Application, HostMatching) {
  auto app = make_app();
  class Api : public RequestHandler {
   public:
    Task<void> get() override {
      write("api host");
      co_return;
    }
  };
  app->add_handlers("api\\.example\\.com", {Rule("/", handler<Api>())});
  TestServer server(std::move(app));
  Request r;
  r.headers.add("Host", "api.example.com:8080");
  EXPECT_EQ(server.fetch(r).body, "api host");
  EXPECT_EQ(server.fetch("/").body, "Hello, world");
}

namespace {

Request options_asterisk() {
  Request r;
  r.method = "OPTIONS";
  r.path = "*";
  return r;
}

// Answers OPTIONS (on any path) with what it saw: a rule that takes "*" gets the request.
class OptionsEcho : public RequestHandler {
 public:
  Task<void> options() override {
    write("options for " + request().path);
    co_return;
  }
  std::vector<std::string> allowed_methods() const override { return {"OPTIONS"}; }
};

}  // namespace

TEST(Application, OptionsAsteriskIsAnsweredForTheServer) {
  // RFC 9110 section 9.3.7: a request about the server, not a resource; no rule has "*".
  ApplicationSettings settings;
  settings.default_handler = handler<HelloHandler>();  // for paths, not for the server
  TestServer server(make_app(std::move(settings)));
  auto r = server.fetch(options_asterisk());
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.get("Allow").value_or(""), "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS");
  EXPECT_EQ(r.headers.get("Content-Length").value_or(""), "0");
  EXPECT_FALSE(r.headers.contains("Content-Type"));
  EXPECT_EQ(r.body, "");
  // OPTIONS on a resource is still the resource's: HelloHandler has no options().
  Request on_path = options_asterisk();
  on_path.path = "/";
  EXPECT_EQ(server.fetch(on_path).status, 405);
  // And "*" on any other method is a bad request before it reaches the application.
  std::string raw = server.fetch_raw("GET * HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(raw.rfind("HTTP/1.1 400 ", 0), 0u) << raw;
}

TEST(Application, OptionsAsteriskGoesToARuleThatMatchesIt) {
  TestServer server(std::make_unique<Application>(std::vector<Rule>{
      Rule("/x", handler<HelloHandler>()), Rule("(?:/.*|\\*)", handler<OptionsEcho>())}));
  auto r = server.fetch(options_asterisk());
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "options for *");
}

TEST(Rule, PathPrefixShapesMatchAsTheirRegexWould) {
  // `PREFIX.*`, `PREFIX(.*)` and `PREFIX(?:/(.*))?` are matched without the regex engine: every
  // path must get the verdict and the argument std::regex gives.
  const std::vector<std::string> patterns = {
      "/api/(.*)", "/api(?:/(.*))?", "/(.*)", "/a\\.b(?:/(.*))?", "/a\\+b/(.*)$", "/.*", "/api/.*"};
  const std::vector<std::string> paths = {
      "/",      "",       "/api",      "/api/",      "/api/x", "/api/x/y",
      "/apix",  "/ap",    "/api/a\nb", "/api/a\rb",  "/a.b",   "/a.b/",
      "/a.b/c", "/aXb/c", "/a+b/",     "/a+b/q?x=1", "//api/", "/api//x"};
  auto noop = [] { return std::unique_ptr<RequestHandler>(); };
  for (const auto& pattern : patterns) {
    Rule rule(pattern, noop);
    std::string body = pattern.back() == '$' ? pattern.substr(0, pattern.size() - 1) : pattern;
    std::regex reference(body, std::regex::ECMAScript);
    for (const auto& path : paths) {
      std::smatch m;
      bool want = std::regex_match(path, m, reference);
      auto got = rule.match(path);
      ASSERT_EQ(got.has_value(), want) << pattern << " on " << path;
      if (!want) continue;
      ASSERT_EQ(got->args.size(), m.size() - 1) << pattern << " on " << path;
      if (m.size() > 1) {
        EXPECT_EQ(got->args[0], m[1].matched ? m[1].str() : std::string())
            << pattern << " on " << path;
      }
      EXPECT_TRUE(got->kwargs.empty());
    }
  }
}
