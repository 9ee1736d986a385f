// OpenFileCache: freshness, coalesced lookups, revalidation, and its bounds (entries,
// memory).
#include "tronada/web/open_file_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "support/loop_check.h"
#include "tronada/async/run_sync.h"

using namespace tronada;
using namespace std::chrono_literals;
using test_support::next_tick;

namespace {

std::shared_ptr<const CachedFile> file_of(std::size_t content_bytes, std::uint64_t inode = 1) {
  auto f = std::make_shared<CachedFile>();
  f->kind = CachedFile::Kind::file;
  f->identity.identity.inode = inode;
  f->identity.content.assign(content_bytes, 'x');
  f->identity.has_content = true;
  return f;
}

class OpenFileCacheTest : public ::testing::Test {
 protected:
  OpenFileCacheTest() { loop_.make_current(); }
  void TearDown() override { test_support::expect_clean_close(loop_); }

  std::shared_ptr<const CachedFile> load(OpenFileCache& cache, std::string_view key,
                                         OpenFileCache::Loader loader) {
    auto future = cache.load(key, std::move(loader), loop_);
    return run_sync([&]() -> Task<std::shared_ptr<const CachedFile>> { co_return co_await future; },
                    20s);
  }

  IOLoop loop_;
};

TEST_F(OpenFileCacheTest, FreshWithinValidForThenLookedUpAgain) {
  OpenFileCacheOptions o;
  o.valid_for = 1h;
  auto cache = std::make_shared<OpenFileCache>(o);
  EXPECT_EQ(cache->find("/a", loop_.time()), nullptr);
  auto f = load(*cache, "/a", [](auto&) { return file_of(10); });
  EXPECT_EQ(cache->find("/a", loop_.time()), f.get());
  // Past valid_for the entry is not trusted (but kept, for the revalidation).
  EXPECT_EQ(cache->find("/a", loop_.time() + 2h), nullptr);
  EXPECT_EQ(cache->size(), 1u);
}

TEST_F(OpenFileCacheTest, ValidForZeroLooksEveryTime) {
  OpenFileCacheOptions o;
  o.valid_for = 0ms;
  auto cache = std::make_shared<OpenFileCache>(o);
  load(*cache, "/a", [](auto&) { return file_of(10); });
  EXPECT_EQ(cache->find("/a", loop_.time()), nullptr);
}

TEST_F(OpenFileCacheTest, ConcurrentLookupsOfOnePathShareOneLoad) {
  auto cache = std::make_shared<OpenFileCache>(OpenFileCacheOptions{});
  auto calls = std::make_shared<std::atomic<int>>(0);
  auto loader = [calls](auto&) {
    ++*calls;
    return file_of(3);
  };
  std::vector<Future<std::shared_ptr<const CachedFile>>> futures;
  for (int i = 0; i < 10; ++i) futures.push_back(cache->load("/same", loader, loop_));
  auto other = cache->load("/other", loader, loop_);
  run_sync(
      [&]() -> Task<void> {
        auto first = co_await futures[0];
        for (auto& f : futures) EXPECT_EQ(co_await f, first);
        co_await other;
      },
      20s);
  EXPECT_EQ(calls->load(), 2);
}

TEST_F(OpenFileCacheTest, RevalidationKeepsOrReplacesTheEntry) {
  OpenFileCacheOptions o;
  o.valid_for = 0ms;
  auto cache = std::make_shared<OpenFileCache>(o);
  auto first = load(*cache, "/a", [](auto&) { return file_of(5, 1); });
  // The loader sees the entry it revalidates; unchanged, it hands it back.
  const CachedFile* seen = nullptr;
  auto same = load(*cache, "/a", [&](const std::shared_ptr<const CachedFile>& previous) {
    seen = previous.get();
    return previous;
  });
  EXPECT_EQ(seen, first.get());
  EXPECT_EQ(same, first);
  auto changed = load(*cache, "/a", [](auto&) { return file_of(7, 2); });
  EXPECT_NE(changed, first);
  EXPECT_EQ(cache->content_bytes(), 7u);
}

TEST_F(OpenFileCacheTest, OnlyFilesAreKept) {
  auto cache = std::make_shared<OpenFileCache>(OpenFileCacheOptions{});
  load(*cache, "/a", [](auto&) { return file_of(5); });
  // The file went away: the entry goes with it.
  auto gone = load(*cache, "/a", [](auto&) {
    auto f = std::make_shared<CachedFile>();
    f->kind = CachedFile::Kind::not_found;
    return std::shared_ptr<const CachedFile>(f);
  });
  EXPECT_EQ(gone->kind, CachedFile::Kind::not_found);
  EXPECT_EQ(cache->size(), 0u);
  EXPECT_EQ(cache->content_bytes(), 0u);
}

TEST_F(OpenFileCacheTest, LeastRecentlyUsedGoFirstPastMaxEntries) {
  OpenFileCacheOptions o;
  o.max_entries = 3;
  o.valid_for = 1h;
  auto cache = std::make_shared<OpenFileCache>(o);
  for (const char* k : {"/1", "/2", "/3"}) load(*cache, k, [](auto&) { return file_of(1); });
  ASSERT_NE(cache->find("/1", loop_.time()), nullptr);  // used: /2 is now the oldest
  load(*cache, "/4", [](auto&) { return file_of(1); });
  EXPECT_EQ(cache->size(), 3u);
  EXPECT_EQ(cache->find("/2", loop_.time()), nullptr);
  EXPECT_NE(cache->find("/1", loop_.time()), nullptr);
  EXPECT_NE(cache->find("/3", loop_.time()), nullptr);
  EXPECT_NE(cache->find("/4", loop_.time()), nullptr);
}

TEST_F(OpenFileCacheTest, ContentsStayUnderTheMemoryCap) {
  OpenFileCacheOptions o;
  o.max_memory = 1000;
  o.valid_for = 1h;
  auto cache = std::make_shared<OpenFileCache>(o);
  for (int i = 0; i < 20; ++i) {
    load(*cache, "/" + std::to_string(i), [](auto&) { return file_of(300); });
    EXPECT_LE(cache->content_bytes(), 1000u);
  }
  EXPECT_EQ(cache->size(), 3u);
  EXPECT_NE(cache->find("/19", loop_.time()), nullptr);
  EXPECT_EQ(cache->find("/0", loop_.time()), nullptr);
}

TEST_F(OpenFileCacheTest, OpenDescriptorsStayUnderTheirCap) {
  OpenFileCacheOptions o;
  o.max_open_files = 2;
  o.valid_for = 1h;
  auto cache = std::make_shared<OpenFileCache>(o);
  auto with_fd = [](auto&) {
    auto f = std::make_shared<CachedFile>();
    f->kind = CachedFile::Kind::file;
    f->identity.file = std::make_shared<OpenFile>(-1);  // stands for a descriptor
    return std::shared_ptr<const CachedFile>(f);
  };
  load(*cache, "/small", [](auto&) { return file_of(10); });
  for (const char* k : {"/1", "/2", "/3"}) load(*cache, k, with_fd);
  EXPECT_EQ(cache->open_files(), 2u);
  EXPECT_EQ(cache->find("/1", loop_.time()), nullptr);
  EXPECT_NE(cache->find("/3", loop_.time()), nullptr);
}

TEST_F(OpenFileCacheTest, DefaultDescriptorCapFollowsTheProcessLimit) {
  auto cache = std::make_shared<OpenFileCache>(OpenFileCacheOptions{});
  EXPECT_EQ(cache->open_files(), 0u);
  // Nothing to observe but that it does not throw or cap at zero: a file can be kept.
  load(*cache, "/a", [](auto&) {
    auto f = std::make_shared<CachedFile>();
    f->kind = CachedFile::Kind::file;
    f->identity.file = std::make_shared<OpenFile>(-1);
    return std::shared_ptr<const CachedFile>(f);
  });
  EXPECT_EQ(cache->open_files(), 1u);
  EXPECT_EQ(cache->size(), 1u);
}

TEST_F(OpenFileCacheTest, NoEntriesMeansNoCacheButStillOneLoad) {
  OpenFileCacheOptions o;
  o.max_entries = 0;
  auto cache = std::make_shared<OpenFileCache>(o);
  auto f = load(*cache, "/a", [](auto&) { return file_of(5); });
  EXPECT_EQ(f->kind, CachedFile::Kind::file);
  EXPECT_EQ(cache->size(), 0u);
  EXPECT_EQ(cache->find("/a", loop_.time()), nullptr);
}

TEST_F(OpenFileCacheTest, LoaderThatThrowsFailsItsWaiters) {
  auto cache = std::make_shared<OpenFileCache>(OpenFileCacheOptions{});
  auto future = cache->load(
      "/a", [](auto&) -> std::shared_ptr<const CachedFile> { throw std::runtime_error("disk"); },
      loop_);
  EXPECT_THROW(run_sync([&]() -> Task<void> { co_await future; }, 20s), std::runtime_error);
  EXPECT_EQ(cache->size(), 0u);
}

TEST_F(OpenFileCacheTest, CacheDroppedWhileALoadRunsLivesUntilItLands) {
  auto cache = std::make_shared<OpenFileCache>(OpenFileCacheOptions{});
  std::weak_ptr<OpenFileCache> weak = cache;
  auto future = cache->load(
      "/a", [](auto&) { return file_of(5); }, loop_);
  cache.reset();
  EXPECT_FALSE(weak.expired());
  run_sync([&]() -> Task<void> { co_await future; }, 20s);
  run_sync([]() -> Task<void> { co_await next_tick(); }, 20s);
  EXPECT_TRUE(weak.expired());
}

}  // namespace
