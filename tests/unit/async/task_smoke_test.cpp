#include <gtest/gtest.h>

#include "tronada/async/executor.h"
#include "tronada/async/gather.h"
#include "tronada/async/run_sync.h"
#include "tronada/async/sleep.h"
#include "tronada/async/with_timeout.h"

using namespace tronada;
using namespace std::chrono_literals;

namespace {
Task<int> add_later(int a, int b) {
  co_await sleep(1ms);
  co_return a + b;
}
}  // namespace

TEST(TaskSmoke, RunSyncGatherTimeoutExecutor) {
  IOLoop loop;
  loop.make_current();
  int v = run_sync([]() -> Task<int> {
    auto [a, b] = co_await gather(add_later(1, 2), add_later(3, 4));
    int c = co_await run_in_executor([] { return 5; });
    try {
      co_await with_timeout(1ms, sleep(1s));
      co_return -1;
    } catch (const TimeoutError&) {
    }
    co_return a + b + c;
  });
  EXPECT_EQ(v, 15);
}
