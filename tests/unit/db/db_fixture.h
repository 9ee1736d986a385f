// The fixture of the server-backed database tests: a loop of its own and a real server,
// and the test skipped (not failed) when the server's binaries are not installed.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "db/db_test_servers.h"
#include "support/loop_check.h"
#include "tronada/async/run_sync.h"
#include "tronada/async/sleep.h"

namespace tronada::test_support {

/// Runs every test body with a 60 s bound and ends by checking that the loop closes clean.
class LoopTest : public ::testing::Test {
 protected:
  LoopTest() { loop.make_current(); }
  void TearDown() override {
    // Let closes, cancel requests on the executor and their callbacks finish first.
    // Cancel requests run PQcancel on the executor: wait for those work requests too.
    run_sync([this]() -> Task<void> {
      for (int i = 0; i < 500 && loop.uv()->active_reqs.count > 0; ++i) {
        Future<void> pause = sleep(std::chrono::milliseconds(10));
        co_await pause;
      }
      for (int i = 0; i < 5; ++i) {
        Future<void> tick = next_tick();
        co_await tick;
      }
    });
    expect_clean_close(loop);
  }

  template <typename F>
  auto run(F&& f) {
    return run_sync(std::forward<F>(f), std::chrono::seconds(60));
  }

  IOLoop loop;
};

class PgTest : public LoopTest {
 protected:
  void SetUp() override {
    if (!PgTestServer::available()) GTEST_SKIP() << "postgresql is not installed";
    server = std::make_unique<PgTestServer>();
  }
  std::unique_ptr<PgTestServer> server;
};

class RedisTest : public LoopTest {
 protected:
  void SetUp() override {
    if (!RedisTestServer::available()) GTEST_SKIP() << "redis-server is not installed";
    server = std::make_unique<RedisTestServer>();
  }
  std::unique_ptr<RedisTestServer> server;
};

/// The message of the exception `f` failed with ("" if it did not fail).
template <typename Fut>
std::string error_of(const Fut& f) {
  try {
    f.result();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace tronada::test_support
