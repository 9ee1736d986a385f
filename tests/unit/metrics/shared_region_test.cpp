#include "tronada/metrics/shared_region.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

namespace tronada::metrics {
namespace {

TEST(MetricsRouteSeries, StatusClassesAndBuckets) {
  EXPECT_EQ(status_class(200), 2u);
  EXPECT_EQ(status_class(503), 5u);
  EXPECT_EQ(status_class(99), 0u);
  EXPECT_EQ(status_class(600), 0u);
  EXPECT_EQ(duration_bucket(0), 0u);
  EXPECT_EQ(duration_bucket(50'000), 0u);  // le is inclusive
  EXPECT_EQ(duration_bucket(50'001), 1u);
  EXPECT_EQ(duration_bucket(30'000'000'000), kBuckets - 2);
  EXPECT_EQ(duration_bucket(30'000'000'001), kBuckets - 1);
}

TEST(MetricsSharedRegion, NotAttachedMeansNoSeries) {
  auto region = SharedRegion::create(2);
  EXPECT_EQ(region->series("/", "static"), nullptr);
  EXPECT_EQ(region->own(), nullptr);
}

TEST(MetricsSharedRegion, SumsWhatForkedProcessesRecordPerRoute) {
  auto region = SharedRegion::create(4);
  ASSERT_TRUE(region->attach());
  EXPECT_EQ(current(), region.get());
  RouteSeries* mine = region->series("/a", "static");
  ASSERT_NE(mine, nullptr);
  EXPECT_EQ(region->series("/a", "static"), mine);  // same labels, same counters
  mine->record(200, 1000, 0, 10);
  for (int child = 0; child < 2; ++child) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      bool ok = region->attach();
      RouteSeries* a = region->series("/a", "static");
      RouteSeries* b = region->series("/b", "proxy");
      if (!ok || !a || !b || a == mine) _exit(1);
      a->record(404, 1000, 5, 0);
      b->record(502, 2'000'000'000, 0, 0);
      _exit(0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  region->own()->ready.store(1);
  Snapshot s = region->snapshot(10'000'000'000ull);
  ASSERT_EQ(s.series.size(), 2u);
  EXPECT_EQ(s.series[0].route, "/a");
  EXPECT_EQ(s.series[0].requests[2], 1u);
  EXPECT_EQ(s.series[0].requests[4], 2u);  // the exited children's counts stay
  EXPECT_EQ(s.series[0].bytes_in, 10u);
  EXPECT_EQ(s.series[0].bytes_out, 10u);
  EXPECT_EQ(s.series[1].backend, "proxy");
  EXPECT_EQ(s.series[1].requests[5], 2u);
  EXPECT_EQ(s.series[1].buckets[duration_bucket(2'000'000'000)], 2u);
  EXPECT_EQ(s.live, 1);  // the children are gone
  EXPECT_EQ(s.ready, 1);
  region->own()->draining.store(1);
  EXPECT_EQ(region->snapshot(10'000'000'000ull).ready, 0);
  EXPECT_EQ(region->snapshot(10'000'000'000ull).draining, 1);
}

TEST(MetricsSharedRegion, LongLabelsAreCutAndStillFound) {
  auto region = SharedRegion::create(1);
  ASSERT_TRUE(region->attach());
  std::string long_route(500, 'x');
  RouteSeries* s = region->series(long_route, "static");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(region->series(long_route, "static"), s);
  EXPECT_EQ(region->snapshot(1).series[0].route.size(), kRouteLabelBytes - 1);
}

TEST(MetricsSharedRegion, WorkerRestartsAreCountedWithoutASlot) {
  auto region = SharedRegion::create(2);  // the master: never attached
  region->count_worker_restart(RestartCause::signal);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    region->count_worker_restart(RestartCause::max_requests);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  Snapshot s = region->snapshot(1);
  EXPECT_EQ(s.worker_restarts[static_cast<std::size_t>(RestartCause::signal)], 1u);
  EXPECT_EQ(s.worker_restarts[static_cast<std::size_t>(RestartCause::max_requests)], 1u);
  EXPECT_EQ(s.worker_restarts[static_cast<std::size_t>(RestartCause::exit)], 0u);
}

TEST(MetricsSharedRegion, UpstreamHealthOnlyFromPublishersThatTrackIt) {
  auto region = SharedRegion::create(1);
  ASSERT_TRUE(region->attach());
  UpstreamSeries* proxy = region->upstream_series("/", "http://a");
  UpstreamSeries* fastcgi = region->upstream_series("/php", "unix:/run/php.sock");
  ASSERT_NE(proxy, nullptr);
  ASSERT_NE(fastcgi, nullptr);
  proxy->members.store(1);
  proxy->published.store(1);
  fastcgi->idle.store(2);  // a FastCGI pool: no members, no health
  fastcgi->record_try(UpstreamOutcome::rejected);
  fastcgi->published.store(1);
  Snapshot s = region->snapshot(10'000'000'000ull);
  ASSERT_EQ(s.upstreams.size(), 2u);
  EXPECT_EQ(s.upstreams[0].health_publishers, 1);
  EXPECT_EQ(s.upstreams[1].publishers, 1);
  EXPECT_EQ(s.upstreams[1].health_publishers, 0);
  EXPECT_EQ(s.upstreams[1].idle, 2);
  EXPECT_EQ(s.upstreams[1].tries[static_cast<std::size_t>(UpstreamOutcome::rejected)], 1u);
}

TEST(MetricsSharedRegion, FullDirectoryGivesNullptr) {
  auto region = SharedRegion::create(1);
  ASSERT_TRUE(region->attach());
  for (std::size_t i = 0; i < kMaxSeries; ++i) {
    ASSERT_NE(region->series("/" + std::to_string(i), "static"), nullptr);
  }
  EXPECT_EQ(region->series("/one-too-many", "static"), nullptr);
}

}  // namespace
}  // namespace tronada::metrics
