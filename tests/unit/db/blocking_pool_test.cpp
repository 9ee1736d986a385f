// BlockingPool with SqliteDatabase: blocking calls on the executor, awaited from the loop.
#include "tronada/db/blocking_pool.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "db/db_fixture.h"
#include "tronada/async/gather.h"
#include "tronada/db/sqlite_database.h"

using namespace tronada;
using namespace tronada::db;
using namespace tronada::test_support;
using namespace std::chrono_literals;

namespace {

class BlockingPoolTest : public LoopTest {
 protected:
  BlockingPoolTest() {
    char tmpl[] = "/tmp/tronada-sqlite-XXXXXX";
    dir = mkdtemp(tmpl);
    path = dir + "/test.db";
  }
  ~BlockingPoolTest() override { std::filesystem::remove_all(dir); }
  std::string dir;
  std::string path;
};

Task<std::int64_t> insert(BlockingPool<SqliteDatabase>& pool, int i) {
  Task<std::int64_t> t = pool.run([i](SqliteDatabase& db) {
    db.execute("INSERT INTO entries (title, score) VALUES (?, ?)",
               {"entry " + std::to_string(i), 1.5 * i});
    return db.last_insert_rowid();
  });
  co_return co_await std::move(t);
}

}  // namespace

TEST_F(BlockingPoolTest, SqliteQueriesRunOnTheExecutorAndComeBackTyped) {
  std::string p = path;
  BlockingPool<SqliteDatabase> pool([p] { return std::make_unique<SqliteDatabase>(p); }, 2);
  run([&]() -> Task<void> {
    std::thread::id loop_thread = std::this_thread::get_id();
    Task<bool> setup = pool.run([loop_thread](SqliteDatabase& db) {
      db.execute_script(
          "PRAGMA journal_mode=WAL;"
          "CREATE TABLE entries (id INTEGER PRIMARY KEY, title TEXT NOT NULL UNIQUE, score REAL, "
          "body BLOB)");
      return std::this_thread::get_id() != loop_thread;
    });
    EXPECT_TRUE(co_await std::move(setup)) << "the blocking call ran on the loop thread";
    std::vector<Task<std::int64_t>> inserts;
    for (int i = 0; i < 20; ++i) inserts.push_back(insert(pool, i));
    std::vector<std::int64_t> ids = co_await gather(std::move(inserts));
    EXPECT_EQ(ids.size(), 20u);
    EXPECT_LE(pool.idle(), 2u);

    std::string hostile = "x'); DROP TABLE entries; --";
    Task<std::vector<SqliteRow>> q = pool.run([hostile](SqliteDatabase& db) {
      db.execute("INSERT INTO entries (title, score, body) VALUES (?, ?, ?)",
                 {hostile, nullptr, SqliteBlob{std::string("\0\xff", 2)}});
      return db.query(
          "SELECT id, title, score, body FROM entries WHERE title = ? OR title = ? ORDER BY id",
          {hostile, "entry 0"});
    });
    std::vector<SqliteRow> rows = co_await std::move(q);
    EXPECT_EQ(rows.size(), 2u);
    if (rows.size() == 2) {
      EXPECT_EQ(rows[0].get<std::string>("title"), "entry 0");
      EXPECT_EQ(rows[0].get<double>("score"), 0.0);
      EXPECT_EQ(rows[1].get<std::string>("title"), hostile);
      EXPECT_EQ(rows[1].get<std::optional<double>>("score"), std::nullopt);
      EXPECT_EQ(rows[1].get<SqliteBlob>("body").data, std::string("\0\xff", 2));
    }

    // Driver errors come back as exceptions with SQLite's message.
    Task<std::int64_t> dup = pool.run([](SqliteDatabase& db) {
      return db.execute("INSERT INTO entries (title) VALUES (?)", {"entry 1"});
    });
    try {
      co_await std::move(dup);
      ADD_FAILURE() << "a UNIQUE violation must throw";
    } catch (const SqliteError& e) {
      EXPECT_NE(std::string(e.what()).find("UNIQUE constraint failed: entries.title"),
                std::string::npos)
          << e.what();
    }
    Task<std::int64_t> syntax = pool.run([](SqliteDatabase& db) { return db.execute("SELEC 1"); });
    EXPECT_THROW(co_await std::move(syntax), SqliteError);
  });
}

TEST_F(BlockingPoolTest, TheLoopRunsWhileABlockingCallSleeps) {
  std::string p = path;
  BlockingPool<SqliteDatabase> pool([p] { return std::make_unique<SqliteDatabase>(p); }, 1);
  run([&]() -> Task<void> {
    Future<int> blocking = spawn(pool.run([](SqliteDatabase&) {
      ::usleep(400'000);  // a driver stuck in a blocking call
      return 7;
    }));
    int ticks = 0;
    while (!blocking.done()) {
      Future<void> tick = sleep(20ms);
      co_await tick;
      ++ticks;
    }
    EXPECT_GE(ticks, 3) << "the loop stalled during the blocking call";
    EXPECT_EQ(blocking.result(), 7);
  });
}

TEST_F(BlockingPoolTest, CallersBeyondTheSizeWaitAndTimeOut) {
  std::string p = path;
  BlockingPool<SqliteDatabase> pool([p] { return std::make_unique<SqliteDatabase>(p); }, 1, 100ms);
  run([&]() -> Task<void> {
    Future<int> busy = spawn(pool.run([](SqliteDatabase&) {
      ::usleep(500'000);
      return 1;
    }));
    Future<int> waiting = spawn(pool.run([](SqliteDatabase&) { return 2; }));
    EXPECT_THROW(co_await waiting, TimeoutError);
    EXPECT_EQ(co_await busy, 1);
    Task<int> after = pool.run([](SqliteDatabase&) { return 3; });
    EXPECT_EQ(co_await std::move(after), 3);
    // A connection that cannot be made fails the call with the driver's message.
    BlockingPool<SqliteDatabase> broken(
        [] { return std::make_unique<SqliteDatabase>("/nonexistent/dir/x.db"); }, 1);
    Task<int> never = broken.run([](SqliteDatabase&) { return 0; });
    try {
      co_await std::move(never);
      ADD_FAILURE();
    } catch (const SqliteError& e) {
      EXPECT_NE(std::string(e.what()).find("cannot open"), std::string::npos) << e.what();
    }
  });
}
