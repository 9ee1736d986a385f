#include "tronada/metrics/exposition.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace tronada::metrics {
namespace {

Snapshot one_route() {
  Snapshot s;
  Snapshot::Series r;
  r.route = "/api";
  r.backend = "wsgi";
  r.requests[2] = 3;
  r.requests[5] = 1;
  r.buckets[0] = 1;               // <= 50 µs
  r.buckets[kBuckets - 1] = 3;    // > 30 s
  r.duration_ns = 1'500'000'000;  // 1.5 s in all
  r.bytes_in = 10;
  r.bytes_out = 2048;
  s.series.push_back(r);
  s.connections[0] = 4;
  s.live = 1;
  s.ready = 1;
  return s;
}

bool contains(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST(MetricsExposition, PrometheusTextHasTypesSamplesAndCumulativeBuckets) {
  std::string text = render(one_route(), ProcessStats{}, true, Format::prometheus);
  EXPECT_TRUE(contains(text, "# TYPE tronada_http_requests_total counter"));
  EXPECT_TRUE(contains(
      text, "tronada_http_requests_total{route=\"/api\",backend=\"wsgi\",status=\"2xx\"} 3"));
  EXPECT_TRUE(contains(
      text, "tronada_http_requests_total{route=\"/api\",backend=\"wsgi\",status=\"4xx\"} 0"));
  // Buckets are cumulative, +Inf equals the count.
  EXPECT_TRUE(contains(text,
                       "tronada_http_request_duration_seconds_bucket{route=\"/api\",backend="
                       "\"wsgi\",le=\"5e-05\"} 1"));
  EXPECT_TRUE(contains(text,
                       "tronada_http_request_duration_seconds_bucket{route=\"/api\",backend="
                       "\"wsgi\",le=\"30.0\"} 1"));
  EXPECT_TRUE(contains(text,
                       "tronada_http_request_duration_seconds_bucket{route=\"/api\",backend="
                       "\"wsgi\",le=\"+Inf\"} 4"));
  EXPECT_TRUE(contains(
      text, "tronada_http_request_duration_seconds_count{route=\"/api\",backend=\"wsgi\"} 4"));
  EXPECT_TRUE(contains(
      text, "tronada_http_request_duration_seconds_sum{route=\"/api\",backend=\"wsgi\"} 1.5"));
  EXPECT_TRUE(contains(text, "tronada_connections_open{protocol=\"http1\"} 4"));
  EXPECT_TRUE(contains(text, "tronada_ready 1"));
  EXPECT_EQ(text.find("# EOF"), std::string::npos);
  EXPECT_EQ(text.back(), '\n');
}

TEST(MetricsExposition, OpenMetricsNamesCountersWithoutTotalAndEndsWithEof) {
  std::string text = render(one_route(), ProcessStats{}, false, Format::openmetrics);
  EXPECT_TRUE(contains(text, "# TYPE tronada_http_requests counter"));
  EXPECT_TRUE(contains(text, "# TYPE process_cpu_seconds counter"));
  EXPECT_TRUE(contains(text, "tronada_ready 0"));
  ASSERT_GE(text.size(), 6u);
  EXPECT_EQ(text.substr(text.size() - 6), "# EOF\n");
}

TEST(MetricsExposition, LabelValuesAreEscaped) {
  EXPECT_EQ(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  Snapshot s = one_route();
  s.series[0].route = "we\"ird\n";
  std::string text = render(s, ProcessStats{}, true, Format::prometheus);
  EXPECT_NE(text.find("route=\"we\\\"ird\\n\""), std::string::npos);
}

TEST(MetricsExposition, NumbersReadBackExactly) {
  EXPECT_EQ(format_number(3), "3");
  EXPECT_EQ(format_number(0.1), "0.1");
  EXPECT_EQ(format_number(5e-05), "5e-05");
  EXPECT_EQ(format_number(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(format_number(INFINITY), "+Inf");
}

TEST(MetricsExposition, WorkerRestartsByCauseAllShown) {
  Snapshot s = one_route();
  s.worker_restarts[static_cast<std::size_t>(RestartCause::signal)] = 2;
  std::string text = render(s, ProcessStats{}, true, Format::prometheus);
  EXPECT_TRUE(contains(text, "# TYPE tronada_worker_restarts_total counter"));
  EXPECT_TRUE(contains(text, "tronada_worker_restarts_total{cause=\"signal\"} 2"));
  for (std::string_view cause : kRestartCauseLabels) {
    EXPECT_NE(text.find("tronada_worker_restarts_total{cause=\"" + std::string(cause) + "\"}"),
              std::string::npos)
        << cause;
  }
  std::string om = render(s, ProcessStats{}, true, Format::openmetrics);
  EXPECT_TRUE(contains(om, "# TYPE tronada_worker_restarts counter"));
}

TEST(MetricsExposition, FastCGIUpstreamHasConnectionsButNoHealth) {
  Snapshot s = one_route();
  Snapshot::Upstream u;
  u.route = "/";
  u.upstream = "unix:/run/php.sock";
  u.tries[static_cast<std::size_t>(UpstreamOutcome::rejected)] = 3;
  u.publishers = 1;
  u.health_publishers = 0;
  u.idle = 1;
  u.busy = 2;
  s.upstreams.push_back(u);
  std::string text = render(s, ProcessStats{}, true, Format::prometheus);
  std::string base = "route=\"/\",upstream=\"unix:/run/php.sock\"";
  EXPECT_TRUE(
      contains(text, "tronada_upstream_requests_total{" + base + ",outcome=\"rejected\"} 3"));
  EXPECT_TRUE(contains(text, "tronada_upstream_connections{" + base + ",state=\"busy\"} 2"));
  EXPECT_EQ(text.find("tronada_upstream_healthy{"), std::string::npos);
}

TEST(MetricsExposition, NegotiatesOpenMetricsFromAccept) {
  EXPECT_EQ(negotiate(""), Format::prometheus);
  EXPECT_EQ(negotiate("text/plain;version=0.0.4;q=0.5,*/*;q=0.1"), Format::prometheus);
  EXPECT_EQ(negotiate("application/openmetrics-text;version=1.0.0;q=0.75,text/plain;q=0.5"),
            Format::openmetrics);
  EXPECT_NE(content_type(Format::prometheus).find("version=0.0.4"), std::string_view::npos);
}

}  // namespace
}  // namespace tronada::metrics
