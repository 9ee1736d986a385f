// StaticFiles with its open-file cache, through a real server: what is served when files
// change within and after the revalidation interval, precompressed variants, and the
// cache's bounds.
#include "tronada/web/static_files.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "tronada/testing/test_server.h"
#include "tronada/web/static_file_handler.h"

using namespace tronada;
using namespace std::chrono_literals;
using tronada::testing::Request;
using tronada::testing::TestServer;
namespace fs = std::filesystem;

namespace {

void write_file(const fs::path& p, const std::string& data) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << data;
}

/// A response channel that cannot send files (as a third-party HTTPConnection might not):
/// StaticFiles must read them itself.
class NoFileConnection final : public HTTPConnection {
 public:
  explicit NoFileConnection(std::shared_ptr<HTTPConnection> inner) : inner_(std::move(inner)) {}
  void write_headers(int status, const HTTPHeaders& headers) override {
    inner_->write_headers(status, headers);
  }
  void write(std::string_view chunk) override { inner_->write(chunk); }
  void finish() override { inner_->finish(); }
  void abort() override { inner_->abort(); }
  Future<void> drain() override { return inner_->drain(); }
  bool closed() const override { return inner_->closed(); }
  void set_close_callback(std::function<void()> cb) override {
    inner_->set_close_callback(std::move(cb));
  }

 private:
  std::shared_ptr<HTTPConnection> inner_;
};

class NoFileStaticHandler : public StaticFileHandler {
 public:
  Task<void> get() override {
    request().connection = std::make_shared<NoFileConnection>(request().connection);
    return StaticFileHandler::get();
  }
};

class StaticFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tronada-static-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    char real[PATH_MAX];
    ASSERT_NE(realpath(tmpl, real), nullptr);
    base_ = real;
    site_ = base_ / "site";
    fs::create_directories(site_ / "sub");
    write_file(site_ / "a.txt", "version 1");
    write_file(site_ / "sub" / "b.txt", "bee");
    write_file(base_ / "secret.txt", "outside");
  }
  void TearDown() override { fs::remove_all(base_); }

  std::unique_ptr<TestServer> serve(StaticFileOptions options) {
    options.root = site_.string();
    files_ = std::make_shared<const StaticFiles>(options);
    auto app = std::make_unique<Application>(
        std::vector<Rule>{Rule("/(.*)", handler<StaticFileHandler>(files_))});
    return std::make_unique<TestServer>(std::move(app));
  }
  static std::string body(TestServer& server, const std::string& path) {
    auto r = server.fetch(path);
    return std::to_string(r.status) + " " + r.body;
  }

  fs::path base_;
  fs::path site_;
  std::shared_ptr<const StaticFiles> files_;
};

// Within the interval the cached entry answers, whatever happened to the file: that is
// what the interval trades for speed (nginx's open_file_cache_valid).
TEST_F(StaticFilesTest, WithinTheIntervalTheEntryAnswersWithoutLookingAtTheFile) {
  StaticFileOptions o;
  o.cache_valid = 1h;
  auto server = serve(o);
  EXPECT_EQ(body(*server, "/a.txt"), "200 version 1");
  write_file(site_ / "a.txt", "version 2, rewritten in place");
  EXPECT_EQ(body(*server, "/a.txt"), "200 version 1");
  write_file(site_ / "new.txt", "replacement");
  fs::rename(site_ / "new.txt", site_ / "a.txt");
  EXPECT_EQ(body(*server, "/a.txt"), "200 version 1");
  fs::resize_file(site_ / "a.txt", 2);
  EXPECT_EQ(body(*server, "/a.txt"), "200 version 1");
  fs::remove(site_ / "a.txt");
  EXPECT_EQ(body(*server, "/a.txt"), "200 version 1");
  EXPECT_EQ(files_->cache().size(), 1u);
}

// With an interval of 0 every request looks: each change is seen at once.
TEST_F(StaticFilesTest, IntervalZeroSeesEveryChangeAtOnce) {
  StaticFileOptions o;
  o.cache_valid = 0ms;
  auto server = serve(o);
  EXPECT_EQ(body(*server, "/a.txt"), "200 version 1");
  EXPECT_EQ(body(*server, "/a.txt"), "200 version 1");  // unchanged: the entry is kept
  write_file(site_ / "a.txt", "version 2, rewritten in place");
  EXPECT_EQ(body(*server, "/a.txt"), "200 version 2, rewritten in place");
  write_file(site_ / "new.txt", "replacement");
  fs::rename(site_ / "new.txt", site_ / "a.txt");
  EXPECT_EQ(body(*server, "/a.txt"), "200 replacement");
  fs::resize_file(site_ / "a.txt", 4);
  EXPECT_EQ(body(*server, "/a.txt"), "200 repl");
  fs::remove(site_ / "a.txt");
  EXPECT_EQ(body(*server, "/a.txt"), "404 not found\n");
  EXPECT_EQ(files_->cache().size(), 0u);
}

TEST_F(StaticFilesTest, SameSizeRewriteWithTheOldMtimeIsStillSeen) {
  StaticFileOptions o;
  o.cache_valid = 0ms;
  auto server = serve(o);
  EXPECT_EQ(body(*server, "/a.txt"), "200 version 1");
  auto mtime = fs::last_write_time(site_ / "a.txt");
  write_file(site_ / "a.txt", "version 9");
  fs::last_write_time(site_ / "a.txt", mtime);  // only ctime tells
  EXPECT_EQ(body(*server, "/a.txt"), "200 version 9");
}

TEST_F(StaticFilesTest, DirectoryTurnedIntoASymlinkOutOfTheRoot) {
  StaticFileOptions o;
  o.cache_valid = 0ms;
  auto server = serve(o);
  EXPECT_EQ(body(*server, "/sub/b.txt"), "200 bee");
  fs::create_directories(base_ / "elsewhere");
  write_file(base_ / "elsewhere" / "b.txt", "not yours");
  fs::rename(site_ / "sub", base_ / "old-sub");
  fs::create_symlink(base_ / "elsewhere", site_ / "sub");
  EXPECT_EQ(server->fetch("/sub/b.txt").status, 403);
}

TEST_F(StaticFilesTest, LargeFilesComeFromTheOpenFile) {
  StaticFileOptions o;
  o.cache_valid = 1h;
  o.cache_file_size = 1024;
  auto server = serve(o);
  std::string big(300000, 'q');
  for (std::size_t i = 0; i < big.size(); i += 997) big[i] = static_cast<char>('a' + i % 26);
  write_file(site_ / "big.bin", big);
  auto r = server->fetch("/big.bin");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.body == big);
  EXPECT_EQ(files_->cache().content_bytes(), 0u);  // kept open, not in memory
  Request range;
  range.path = "/big.bin";
  range.headers.add("Range", "bytes=1000-200999");
  r = server->fetch(range);
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.headers.get("Content-Range").value_or(""), "bytes 1000-200999/300000");
  EXPECT_TRUE(r.body == big.substr(1000, 200000));
}

TEST_F(StaticFilesTest, ConnectionsWithoutWriteFileGetLargeFilesReadForThem) {
  StaticFileOptions o;
  o.root = site_.string();
  o.cache_valid = 1h;
  o.cache_file_size = 1024;
  o.chunk_size = 7000;
  files_ = std::make_shared<const StaticFiles>(o);
  TestServer server(std::make_unique<Application>(
      std::vector<Rule>{Rule("/(.*)", handler<NoFileStaticHandler>(files_))}));
  std::string big(50000, 'q');
  for (std::size_t i = 0; i < big.size(); i += 7) big[i] = static_cast<char>('a' + i % 26);
  write_file(site_ / "big.bin", big);
  for (int round = 0; round < 2; ++round) {  // a miss, then a fresh entry
    auto r = server.fetch("/big.bin");
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.body == big);
    Request range;
    range.path = "/big.bin";
    range.headers.add("Range", "bytes=100-20099");
    r = server.fetch(range);
    EXPECT_EQ(r.status, 206);
    EXPECT_TRUE(r.body == big.substr(100, 20000));
  }
  EXPECT_EQ(body(server, "/a.txt"), "200 version 1");
}

TEST_F(StaticFilesTest, EverySpellingOfAPathSharesOneEntry) {
  StaticFileOptions o;
  o.cache_valid = 1h;
  o.cache_file_size = 4;
  auto server = serve(o);
  for (const char* path : {"/a.txt", "//a.txt", "/./a.txt", "/%61.txt", "/sub/../a.txt"}) {
    auto r = server->fetch(path);
    if (std::string_view(path).find("..") != std::string_view::npos) {
      EXPECT_EQ(r.status, 404);  // refused, as always
      continue;
    }
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_EQ(r.body, "version 1") << path;
  }
  EXPECT_EQ(files_->cache().size(), 1u);
  EXPECT_EQ(files_->cache().open_files(), 1u);  // larger than cache_file_size: kept open
  // Once in the cache, the other spellings are answered from it too.
  fs::remove(site_ / "a.txt");
  EXPECT_EQ(body(*server, "//a.txt"), "200 version 1");
  EXPECT_EQ(body(*server, "/%61.txt"), "200 version 1");
}

TEST_F(StaticFilesTest, FilesKeptInMemoryHoldNoDescriptor) {
  StaticFileOptions o;
  o.cache_valid = 1h;
  auto server = serve(o);
  EXPECT_EQ(body(*server, "/a.txt"), "200 version 1");
  EXPECT_EQ(body(*server, "/sub/b.txt"), "200 bee");
  EXPECT_EQ(files_->cache().size(), 2u);
  EXPECT_EQ(files_->cache().open_files(), 0u);
}

TEST_F(StaticFilesTest, TheCacheKeepsFileContentsUnderItsMemoryCap) {
  StaticFileOptions o;
  o.cache_valid = 1h;
  o.cache_memory = 10000;
  auto server = serve(o);
  for (int i = 0; i < 20; ++i) {
    std::string name = "f" + std::to_string(i) + ".txt";
    write_file(site_ / name, std::string(3000, static_cast<char>('a' + i)));
    auto r = server->fetch("/" + name);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, std::string(3000, static_cast<char>('a' + i)));
    EXPECT_LE(files_->cache().content_bytes(), 10000u);
  }
  EXPECT_EQ(files_->cache().content_bytes(), 9000u);
  // A file bigger than the cap is served from its descriptor, never kept in memory.
  write_file(site_ / "huge.txt", std::string(20000, 'h'));
  EXPECT_EQ(server->fetch("/huge.txt").body, std::string(20000, 'h'));
  EXPECT_LE(files_->cache().content_bytes(), 10000u);
}

TEST_F(StaticFilesTest, PrecompressedVariants) {
  write_file(site_ / "app.js", "console.log('plain')");
  write_file(site_ / "app.js.br", "BROTLI");
  write_file(site_ / "app.js.gz", "GZIP");
  StaticFileOptions o;
  o.precompressed = true;
  auto server = serve(o);
  auto fetch = [&](const char* accept) {
    Request r;
    r.path = "/app.js";
    if (accept) r.headers.add("Accept-Encoding", accept);
    return server->fetch(r);
  };
  auto plain = fetch(nullptr);
  EXPECT_EQ(plain.body, "console.log('plain')");
  EXPECT_FALSE(plain.headers.get("Content-Encoding"));
  EXPECT_EQ(plain.headers.get("Vary").value_or(""), "Accept-Encoding");
  EXPECT_EQ(plain.headers.get("Content-Type").value_or(""), "text/javascript; charset=utf-8");

  auto br = fetch("gzip, deflate, br");
  EXPECT_EQ(br.body, "BROTLI");
  EXPECT_EQ(br.headers.get("Content-Encoding").value_or(""), "br");
  EXPECT_EQ(br.headers.get("Vary").value_or(""), "Accept-Encoding");
  EXPECT_EQ(br.headers.get("Content-Type").value_or(""), "text/javascript; charset=utf-8");

  auto gz = fetch("gzip;q=0.8, br;q=0");
  EXPECT_EQ(gz.body, "GZIP");
  EXPECT_EQ(gz.headers.get("Content-Encoding").value_or(""), "gzip");
  EXPECT_EQ(fetch("x-gzip").body, "GZIP");
  EXPECT_EQ(fetch("*").body, "BROTLI");
  EXPECT_EQ(fetch("*;q=0").body, "console.log('plain')");
  EXPECT_EQ(fetch("identity").body, "console.log('plain')");

  // Three representations, three validators; each revalidates against its own.
  std::string e1(plain.headers.get("ETag").value_or(""));
  std::string e2(br.headers.get("ETag").value_or(""));
  std::string e3(gz.headers.get("ETag").value_or(""));
  EXPECT_NE(e1, e2);
  EXPECT_NE(e1, e3);
  EXPECT_NE(e2, e3);
  Request cond;
  cond.path = "/app.js";
  cond.headers.add("Accept-Encoding", "br");
  cond.headers.add("If-None-Match", e2);
  EXPECT_EQ(server->fetch(cond).status, 304);
  cond.headers.set("If-None-Match", e1);
  EXPECT_EQ(server->fetch(cond).status, 200);

  // A file without siblings says nothing about Accept-Encoding.
  auto other = server->fetch("/a.txt");
  EXPECT_FALSE(other.headers.get("Vary"));
}

TEST_F(StaticFilesTest, MalformedAcceptEncodingIsReadSafely) {
  write_file(site_ / "app.js", "plain");
  write_file(site_ / "app.js.br", "BROTLI");
  StaticFileOptions o;
  o.precompressed = true;
  auto server = serve(o);
  struct Case {
    const char* accept;
    const char* body;
  };
  for (Case c :
       {Case{"", "plain"}, Case{",,,", "plain"}, Case{";;;", "plain"}, Case{"br;", "BROTLI"},
        Case{"br;q=", "plain"}, Case{"br;q=abc", "plain"}, Case{"br ; q = 1", "BROTLI"},
        Case{"BR", "BROTLI"}, Case{"brotli", "plain"}, Case{" , br , ", "BROTLI"},
        Case{"br;q=0, br;q=1", "BROTLI"}, Case{"gzip;q=1;br", "plain"}}) {
    Request r;
    r.path = "/app.js";
    r.headers.add("Accept-Encoding", c.accept);
    auto got = server->fetch(r);
    EXPECT_EQ(got.status, 200) << c.accept;
    EXPECT_EQ(got.body, c.body) << "Accept-Encoding: " << c.accept;
  }
  Request big;
  big.path = "/app.js";
  big.headers.add("Accept-Encoding", std::string(30000, ',') + "br");
  EXPECT_EQ(server->fetch(big).body, "BROTLI");
}

TEST_F(StaticFilesTest, PrecompressedIsOffByDefault) {
  write_file(site_ / "app.js", "plain");
  write_file(site_ / "app.js.gz", "GZIP");
  auto server = serve({});
  Request r;
  r.path = "/app.js";
  r.headers.add("Accept-Encoding", "gzip");
  auto got = server->fetch(r);
  EXPECT_EQ(got.body, "plain");
  EXPECT_FALSE(got.headers.get("Vary"));
}

TEST_F(StaticFilesTest, TraversalAndSymlinkRulesHoldFromTheCache) {
  fs::create_symlink(base_ / "secret.txt", site_ / "escape.txt");
  fs::create_symlink(site_ / "sub" / "b.txt", site_ / "inside.txt");
  StaticFileOptions o;
  o.cache_valid = 1h;
  auto server = serve(o);
  for (int round = 0; round < 2; ++round) {  // a miss, then what the cache says
    EXPECT_EQ(server->fetch("/escape.txt").status, 403);
    EXPECT_EQ(body(*server, "/inside.txt"), "200 bee");
    for (const char* path : {"/../secret.txt", "/%2e%2e/secret.txt", "/sub/..%2f..%2fsecret.txt",
                             "/%00a.txt", "/..%5csecret.txt"}) {
      auto r = server->fetch(path);
      EXPECT_TRUE(r.status == 400 || r.status == 403 || r.status == 404) << path;
      EXPECT_EQ(r.body.find("outside"), std::string::npos) << path;
    }
  }
}

}  // namespace
