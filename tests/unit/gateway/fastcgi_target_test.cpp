#include "tronada/gateway/fastcgi_target.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "tronada/async/run_sync.h"
#include "tronada/gateway/fastcgi_handler.h"
#include "tronada/testing/test_server.h"
#include "tronada/web/request_handler.h"

using namespace tronada;
using namespace std::chrono_literals;

namespace {

// --- normalisation ---------------------------------------------------------------------

TEST(FastCGINormalize, RemovesDotSegmentsAndMergesSlashes) {
  const std::map<std::string, std::string> cases = {
      {"/", "/"},
      {"/a.php", "/a.php"},
      {"/a.php/", "/a.php/"},
      {"/sub/./page.php", "/sub/page.php"},
      {"/sub/x/../page.php", "/sub/page.php"},
      {"/sub//page.php", "/sub/page.php"},
      {"//a", "/a"},
      {"/sub/.", "/sub/"},
      {"/sub/x/..", "/sub/"},
      {"/sub/..", "/"},
      {"/.", "/"},
      {"/./", "/"},
      {"/a/./b/../c", "/a/c"},
      {"/a/b/../../c/", "/c/"},
      {"/x.php/.", "/x.php/"},
      {"/a//", "/a/"},
      {"/a/...", "/a/..."},  // not a dot segment
      {"/a/..b/.c", "/a/..b/.c"},
      {"/sub/%2e/page.php", "/sub/page.php"},
      {"/sub/%2E%2e/a", "/a"},
      {"/sub%2fpage.php", "/sub/page.php"},  // nginx decodes %2F too
      {"/sub/..%2fa", "/a"},
      {"/a%20b", "/a b"},
  };
  for (const auto& [in, out] : cases) {
    auto got = normalize_url_path(in);
    ASSERT_TRUE(got.has_value()) << in;
    EXPECT_EQ(*got, out) << in;
  }
}

TEST(FastCGINormalize, RefusesMalformedAndEscapingPaths) {
  for (const char* bad :
       {"", "a.php", "%2fa", "/..", "/../", "/../a", "/a/../..", "/a/../../b", "/%2e%2e/a",
        "/a/%2e%2e/..", "/..%2fa", "/./../a", "/%zz", "/%4", "/a%00.php", "/a%"}) {
    EXPECT_FALSE(normalize_url_path(bad).has_value()) << bad;
  }
}

TEST(FastCGINormalize, EveryPrefixOfAPathIsHandled) {
  // Malformed input at every length: no crash, and a result that starts with '/'.
  std::string path = "/a/./b/../%2e%2E/c%2f.php/x/%";
  for (std::size_t n = 0; n <= path.size(); ++n) {
    auto got = normalize_url_path(path.substr(0, n));
    if (got) {
      EXPECT_FALSE(got->empty());
      EXPECT_EQ((*got)[0], '/');
      EXPECT_EQ(got->find("/./"), std::string::npos);
      EXPECT_EQ(got->find("/../"), std::string::npos);
    }
  }
}

// --- Caddy's rules over a fake file system -------------------------------------------------

/// A file system of absolute paths: files, directories and symlinks (to real paths).
struct FakeFiles {
  std::map<std::string, FileInfo::Type> types;
  std::map<std::string, std::string> links;  // path -> where it really is
  // Jobs run one after another (each awaited on the loop), so a plain count will do.
  mutable int calls = 0;

  FileInfo operator()(const std::string& path) const {
    ++calls;
    FileInfo f;
    std::string real = path;
    if (auto l = links.find(path); l != links.end()) real = l->second;
    auto t = types.find(real);
    if (t == types.end()) return f;
    f.type = t->second;
    f.real_path = real;
    return f;
  }
};

FastCGIConfig site_config() {
  FastCGIConfig c;
  c.root = "/srv/site";
  return c;
}

FakeFiles site_files() {
  FakeFiles fs;
  using T = FileInfo::Type;
  fs.types = {{"/srv/site", T::directory},         {"/srv/site/index.php", T::file},
              {"/srv/site/env.php", T::file},      {"/srv/site/style.css", T::file},
              {"/srv/site/sub", T::directory},     {"/srv/site/sub/index.php", T::file},
              {"/srv/site/sub/page.php", T::file}, {"/srv/site/plain", T::directory},
              {"/etc/evil.php", T::file},          {"/etc", T::directory}};
  fs.links = {{"/srv/site/link.php", "/etc/evil.php"}, {"/srv/site/outside", "/etc"}};
  return fs;
}

FastCGITarget resolve(const std::string& path) {
  FakeFiles fs = site_files();
  return resolve_fastcgi_target(site_config(), path, std::cref(fs));
}

TEST(FastCGITargetRules, ScriptsAndPathInfo) {
  auto t = resolve("/env.php/");
  EXPECT_EQ(t.kind, FastCGITarget::Kind::script);
  EXPECT_EQ(t.script_name, "/env.php");
  EXPECT_EQ(t.path_info, "/");
  EXPECT_EQ(t.script_filename, "/srv/site/env.php");

  t = resolve("/env.php/a/./b/../c");
  EXPECT_EQ(t.script_name, "/env.php");
  EXPECT_EQ(t.path_info, "/a/c");

  t = resolve("/sub/x/../page.php");
  EXPECT_EQ(t.kind, FastCGITarget::Kind::script);
  EXPECT_EQ(t.script_name, "/sub/page.php");
  EXPECT_EQ(t.path, "/sub/page.php");

  EXPECT_EQ(resolve("/ENV.PHP").kind, FastCGITarget::Kind::script);  // split is case-blind...
  EXPECT_EQ(resolve("/ENV.PHP").script_name, "/index.php");          // ...the file system is not
}

TEST(FastCGITargetRules, FilesDirectoriesAndTheFrontController) {
  EXPECT_EQ(resolve("/style.css").kind, FastCGITarget::Kind::file);
  EXPECT_EQ(resolve("/sub").kind, FastCGITarget::Kind::redirect_slash);
  EXPECT_EQ(resolve("/sub/x/..").script_name, "/sub/index.php");
  EXPECT_EQ(resolve("/sub/.").script_name, "/sub/index.php");
  EXPECT_EQ(resolve("/plain/").kind, FastCGITarget::Kind::file);  // no index.php: StaticFiles
  auto t = resolve("/blog/post/1");
  EXPECT_EQ(t.kind, FastCGITarget::Kind::script);
  EXPECT_EQ(t.script_name, "/index.php");
  EXPECT_EQ(t.path_info, "");
  EXPECT_EQ(resolve("/").script_name, "/index.php");
  EXPECT_EQ(resolve("/missing.php").script_name, "/index.php");
}

TEST(FastCGITargetRules, NothingOutsideTheRoot) {
  // A symlink out of the root is neither run nor served; the front controller answers.
  EXPECT_EQ(resolve("/link.php").script_name, "/index.php");
  EXPECT_EQ(resolve("/outside/evil.php").script_name, "/index.php");
  EXPECT_EQ(resolve("/outside/").script_name, "/index.php");
  EXPECT_EQ(resolve("/a\\..\\env.php").kind, FastCGITarget::Kind::not_found);
  for (const char* p : {"/../etc/evil.php", "/sub/../../etc/evil.php", "/%2e%2e/etc", "/%zz"}) {
    EXPECT_EQ(resolve(p).kind, FastCGITarget::Kind::bad_request) << p;
  }
}

TEST(FastCGITargetRules, WithoutTryFiles) {
  FastCGIConfig c = site_config();
  c.try_files = false;
  FakeFiles fs = site_files();
  EXPECT_EQ(resolve_fastcgi_target(c, "/env.php/x", std::cref(fs)).kind,
            FastCGITarget::Kind::script);
  EXPECT_EQ(resolve_fastcgi_target(c, "/missing.php", std::cref(fs)).kind,
            FastCGITarget::Kind::not_found);
  EXPECT_EQ(resolve_fastcgi_target(c, "/style.css", std::cref(fs)).kind,
            FastCGITarget::Kind::not_found);
}

// --- the resolver: off the loop, cached ------------------------------------------------

class FastCGIResolverTest : public ::testing::Test {
 protected:
  void SetUp() override { loop_.make_current(); }

  FastCGITarget run(FastCGIResolver& resolver, std::string path) {
    auto config = std::make_shared<const FastCGIConfig>(site_config());
    return run_sync(
        [&]() -> Task<FastCGITarget> {
          Future<FastCGITarget> f = resolver.resolve(config, path);
          co_return co_await f;
        },
        30s);
  }

  IOLoop loop_;
};

TEST_F(FastCGIResolverTest, AsksTheFileSystemOffTheLoopThread) {
  auto fs = std::make_shared<FakeFiles>(site_files());
  std::mutex m;
  std::vector<std::thread::id> threads;
  FastCGIResolver::Options o;
  o.ttl = Duration::zero();
  o.lookup = [fs, &m, &threads](const std::string& p) {
    std::lock_guard<std::mutex> lock(m);
    threads.push_back(std::this_thread::get_id());
    return (*fs)(p);
  };
  FastCGIResolver resolver(o);
  EXPECT_EQ(run(resolver, "/env.php/").path_info, "/");
  ASSERT_FALSE(threads.empty());
  for (auto id : threads) EXPECT_NE(id, std::this_thread::get_id());
}

TEST_F(FastCGIResolverTest, CachesForTheTTLOnly) {
  auto fs = std::make_shared<FakeFiles>(site_files());
  FastCGIResolver::Options o;
  o.ttl = std::chrono::hours(1);
  o.lookup = [fs](const std::string& p) { return (*fs)(p); };
  FastCGIResolver cached(o);
  EXPECT_EQ(run(cached, "/sub/page.php").script_name, "/sub/page.php");
  int calls = fs->calls;
  // The same normalised path: from the cache, at once, without the file system.
  auto config = std::make_shared<const FastCGIConfig>(site_config());
  Future<FastCGITarget> again = cached.resolve(config, "/sub/./page.php");
  ASSERT_TRUE(again.done());
  EXPECT_EQ(again.result().script_name, "/sub/page.php");
  EXPECT_EQ(fs->calls, calls);
  cached.clear();
  EXPECT_EQ(run(cached, "/sub/page.php").script_name, "/sub/page.php");
  EXPECT_GT(fs->calls, calls);

  o.ttl = Duration::zero();
  FastCGIResolver uncached(o);
  calls = fs->calls;
  run(uncached, "/sub/page.php");
  run(uncached, "/sub/page.php");
  EXPECT_GE(fs->calls, calls + 2);
}

TEST_F(FastCGIResolverTest, MalformedPathsNeverReachTheFileSystem) {
  auto fs = std::make_shared<FakeFiles>(site_files());
  FastCGIResolver::Options o;
  o.lookup = [fs](const std::string& p) { return (*fs)(p); };
  FastCGIResolver resolver(o);
  auto config = std::make_shared<const FastCGIConfig>(site_config());
  Future<FastCGITarget> f = resolver.resolve(config, "/../etc/passwd");
  ASSERT_TRUE(f.done());
  EXPECT_EQ(f.result().kind, FastCGITarget::Kind::bad_request);
  EXPECT_EQ(fs->calls, 0);
}

TEST_F(FastCGIResolverTest, AFailingFileSystemServesNothing) {
  FastCGIResolver::Options o;
  o.lookup = [](const std::string&) -> FileInfo { throw std::runtime_error("EIO"); };
  FastCGIResolver resolver(o);
  EXPECT_EQ(run(resolver, "/env.php").kind, FastCGITarget::Kind::not_found);
}

// --- the handler keeps the loop serving while a lookup is slow --------------------------

/// A lookup that blocks until released, as on a stalled network file system.
struct Gate {
  std::mutex m;
  std::condition_variable cv;
  bool entered = false;
  bool released = false;
  std::thread::id thread;

  FileInfo wait(const std::string&) {
    std::unique_lock<std::mutex> lock(m);
    entered = true;
    thread = std::this_thread::get_id();
    cv.notify_all();
    // Bounded, so a regression fails the test instead of hanging it.
    cv.wait_for(lock, 10s, [this] { return released; });
    return {};
  }
  bool has_entered() {
    std::lock_guard<std::mutex> lock(m);
    return entered;
  }
  void release() {
    std::lock_guard<std::mutex> lock(m);
    released = true;
    cv.notify_all();
  }
};

class Hello : public RequestHandler {
 public:
  Task<void> get() override {
    write("hello");
    co_return;
  }
};

/// GET `path` on a blocking socket, reading until the server closes.
std::string blocking_get(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{20, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if (::send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return out;
}

TEST(FastCGIHandlerResolution, TheLoopServesOtherRequestsWhileALookupIsSlow) {
  auto gate = std::make_shared<Gate>();
  auto app = std::make_unique<Application>();
  tronada::testing::TestServer server(std::move(app));
  auto config = std::make_shared<FastCGIConfig>(site_config());
  config->pool = std::make_shared<fastcgi::Pool>(fastcgi::Address::parse("unix:/nonexistent"));
  FastCGIResolver::Options o;
  o.lookup = [gate](const std::string& p) { return gate->wait(p); };
  config->resolver = std::make_shared<FastCGIResolver>(o);
  std::shared_ptr<const FastCGIConfig> shared = config;
  server.app().add_handlers(
      ".*", {Rule("/hello", handler<Hello>()), Rule("/.*", handler<FastCGIHandler>(shared))});

  std::atomic<bool> answered{false};
  std::string answer;
  std::thread client([&] {
    answer = blocking_get(server.port(), "/slow.php");
    answered = true;
  });
  // A failed assertion returns early: the gate opens and the client is waited for.
  struct Join {
    Gate& gate;
    std::thread& thread;
    ~Join() {
      gate.release();
      if (thread.joinable()) thread.join();
    }
  } join{*gate, client};
  // Run the loop (through requests of its own) until the slow request reached the lookup.
  auto deadline = Clock::now() + 20s;
  while (!gate->has_entered() && Clock::now() < deadline) {
    ASSERT_EQ(server.fetch("/hello").status, 200);
  }
  ASSERT_TRUE(gate->has_entered());
  // The lookup is stuck on another thread; the loop goes on answering.
  for (int i = 0; i < 3; ++i) {
    auto r = server.fetch(tronada::testing::Request{.path = "/hello"}, 5s);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "hello");
  }
  EXPECT_FALSE(answered);
  EXPECT_NE(gate->thread, std::this_thread::get_id());
  gate->release();
  // Nothing exists in this file system: the slow request ends in 404.
  while (!answered && Clock::now() < deadline) server.fetch("/hello");
  ASSERT_TRUE(answered);
  client.join();
  EXPECT_EQ(answer.rfind("HTTP/1.1 404", 0), 0u) << answer.substr(0, 200);
}

}  // namespace
