#include "tronada/gateway/upstream_group.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <stdexcept>

using namespace tronada;
using namespace std::chrono_literals;

namespace {

UpstreamGroup group_of(int n, UpstreamGroupOptions options = {}) {
  std::vector<Upstream> ups;
  for (int i = 0; i < n; ++i)
    ups.push_back(parse_upstream("http://10.0.0." + std::to_string(i + 1) + ":80"));
  return UpstreamGroup(std::move(ups), options);
}

}  // namespace

TEST(UpstreamParse, HostPortAndPrefix) {
  Upstream u = parse_upstream("http://backend:8080/api/");
  EXPECT_EQ(u.endpoint.host, "backend");
  EXPECT_EQ(u.endpoint.port, 8080);
  EXPECT_EQ(u.endpoint.scheme, "http");
  EXPECT_EQ(u.path_prefix, "/api");
  EXPECT_EQ(u.host_header, "backend:8080");

  Upstream plain = parse_upstream("https://example.com");
  EXPECT_EQ(plain.endpoint.port, 443);
  EXPECT_EQ(plain.path_prefix, "");
  EXPECT_EQ(plain.host_header, "example.com");

  Upstream v6 = parse_upstream("http://[::1]:9000");
  EXPECT_EQ(v6.endpoint.host, "::1");
  EXPECT_EQ(v6.host_header, "[::1]:9000");
}

TEST(UpstreamParse, UnixSocket) {
  Upstream u = parse_upstream("unix:/run/app.sock");
  EXPECT_EQ(u.endpoint.unix_path, "/run/app.sock");
  EXPECT_EQ(u.host_header, "localhost");
}

TEST(UpstreamParse, RejectsMalformed) {
  for (const char* bad :
       {"", "backend:80", "ftp://x", "http://", "http://a:99999", "http://a/?q=1", "http://a/#f",
        "unix:relative", "unix:", "http://user:pw@a/", "http://a b/"}) {
    EXPECT_THROW(parse_upstream(bad), std::invalid_argument) << bad;
  }
}

TEST(UpstreamParse, Policies) {
  EXPECT_EQ(parse_balance_policy("round_robin"), BalancePolicy::round_robin);
  EXPECT_EQ(parse_balance_policy("least_conn"), BalancePolicy::least_conn);
  EXPECT_THROW(parse_balance_policy("random"), std::invalid_argument);
  EXPECT_THROW(UpstreamGroup({}, {}), std::invalid_argument);
}

TEST(UpstreamGroup, RoundRobinTakesTurns) {
  UpstreamGroup g = group_of(3);
  TimePoint now{};
  std::map<const Upstream*, int> count;
  for (int i = 0; i < 300; ++i) ++count[g.pick(now, {}).get()];
  ASSERT_EQ(count.size(), 3u);
  for (auto& [u, n] : count) EXPECT_EQ(n, 100);
}

TEST(UpstreamGroup, SkipsTriedAndEndsWhenAllTried) {
  UpstreamGroup g = group_of(2);
  TimePoint now{};
  auto a = g.pick(now, {});
  auto b = g.pick(now, {a});
  ASSERT_NE(b, nullptr);
  EXPECT_NE(a, b);
  EXPECT_EQ(g.pick(now, {a, b}), nullptr);
}

TEST(UpstreamGroup, LeastConnPrefersTheIdlest) {
  UpstreamGroupOptions o;
  o.policy = BalancePolicy::least_conn;
  UpstreamGroup g = group_of(3, o);
  TimePoint now{};
  auto ups = g.upstreams();
  g.begin(*ups[0]);
  g.begin(*ups[0]);
  g.begin(*ups[1]);
  EXPECT_EQ(g.pick(now, {}), ups[2]);
  g.begin(*ups[2]);
  g.begin(*ups[2]);
  EXPECT_EQ(g.pick(now, {}), ups[1]);
  g.end(*ups[0]);
  g.end(*ups[0]);
  EXPECT_EQ(g.pick(now, {}), ups[0]);
}

TEST(UpstreamGroup, FailuresMarkDownForFailTimeout) {
  UpstreamGroupOptions o;
  o.max_fails = 2;
  o.fail_timeout = 10s;
  UpstreamGroup g = group_of(2, o);
  auto ups = g.upstreams();
  TimePoint t0 = TimePoint{} + 100s;
  g.report_failure(*ups[0], t0);
  EXPECT_FALSE(ups[0]->down(t0));
  g.report_failure(*ups[0], t0 + 1s);
  EXPECT_TRUE(ups[0]->down(t0 + 1s));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(g.pick(t0 + 2s, {}), ups[1]);
  EXPECT_FALSE(ups[0]->down(t0 + 12s));
  // Failures further apart than fail_timeout do not add up.
  g.report_failure(*ups[1], t0);
  g.report_failure(*ups[1], t0 + 20s);
  EXPECT_FALSE(ups[1]->down(t0 + 20s));
}

TEST(UpstreamGroup, AllDownStillPicksTheFirstBack) {
  UpstreamGroup g = group_of(2);
  auto ups = g.upstreams();
  TimePoint t0 = TimePoint{} + 100s;
  g.report_failure(*ups[1], t0);
  g.report_failure(*ups[0], t0 + 1s);
  EXPECT_EQ(g.pick(t0 + 2s, {}), ups[1]);
  EXPECT_EQ(g.pick(t0 + 2s, {ups[1]}), ups[0]);
  g.report_success(*ups[0]);
  EXPECT_FALSE(ups[0]->down(t0 + 2s));
}

TEST(UpstreamGroup, HealthCheckDownIsSkipped) {
  UpstreamGroup g = group_of(2);
  auto ups = g.upstreams();
  ups[0]->health_check_down = true;
  TimePoint now{};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(g.pick(now, {}), ups[1]);
}

TEST(UpstreamGroup, MaxFailsZeroNeverMarksDown) {
  UpstreamGroupOptions o;
  o.max_fails = 0;
  UpstreamGroup g = group_of(1, o);
  TimePoint now{};
  for (int i = 0; i < 5; ++i) g.report_failure(*g.upstreams()[0], now);
  EXPECT_FALSE(g.upstreams()[0]->down(now));
}

TEST(UpstreamGroup, HostNamesAreTold) {
  EXPECT_TRUE(has_host_name(parse_upstream("http://backends.internal:8080")));
  EXPECT_FALSE(has_host_name(parse_upstream("http://10.0.0.1:8080")));
  EXPECT_FALSE(has_host_name(parse_upstream("http://[::1]:8080")));
  EXPECT_FALSE(has_host_name(parse_upstream("unix:/run/app.sock")));
}

TEST(UpstreamGroup, SetAddressesReplacesTheNamedMemberAndKeepsStayers) {
  std::vector<Upstream> sources = {parse_upstream("http://app.internal:8080/api"),
                                   parse_upstream("http://10.0.0.9:80")};
  UpstreamGroup g(std::move(sources));
  ASSERT_EQ(g.upstreams().size(), 2u);
  auto by_name = g.upstreams()[0];
  EXPECT_TRUE(by_name->address.empty());

  auto left = g.set_addresses(0, {"10.1.0.1", "10.1.0.2"});
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0], by_name);
  EXPECT_TRUE(by_name->removed);
  ASSERT_EQ(g.upstreams().size(), 3u);
  std::shared_ptr<Upstream> first;
  for (const auto& u : g.upstreams()) {
    if (u->address == "10.1.0.1") first = u;
  }
  ASSERT_TRUE(first);
  EXPECT_EQ(first->endpoint.host, "10.1.0.1");
  EXPECT_EQ(first->endpoint.port, 8080);
  EXPECT_EQ(first->host_header, "app.internal:8080");  // the name, not the address
  EXPECT_EQ(first->path_prefix, "/api");
  EXPECT_EQ(first->source, 0u);

  // An address that stays keeps its state; one that goes is drained; a new one joins.
  TimePoint now = TimePoint{} + 100s;
  g.report_failure(*first, now);
  g.begin(*first);
  left = g.set_addresses(0, {"10.1.0.1", "10.1.0.3"});
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0]->address, "10.1.0.2");
  EXPECT_TRUE(first->down(now));
  EXPECT_EQ(first->active, 1u);
  EXPECT_FALSE(first->removed);
  std::vector<std::string> now_in;
  for (const auto& u : g.upstreams()) now_in.push_back(u->address.empty() ? u->url : u->address);
  std::sort(now_in.begin(), now_in.end());
  EXPECT_EQ(now_in, (std::vector<std::string>{"10.1.0.1", "10.1.0.3", "http://10.0.0.9:80"}));

  // An empty answer changes nothing; the other source is never touched.
  EXPECT_TRUE(g.set_addresses(0, {}).empty());
  EXPECT_EQ(g.upstreams().size(), 3u);
}

TEST(UpstreamGroup, RemovedMembersAreNeverPickedAndOthersShareTheLoad) {
  UpstreamGroup g({parse_upstream("http://app.internal:80")});
  g.set_addresses(0, {"10.1.0.1", "10.1.0.2", "10.1.0.3"});
  auto held = g.pick(TimePoint{}, {});  // a request in flight keeps its upstream
  g.set_addresses(0, {"10.1.0.1", "10.1.0.2", "10.1.0.3", "10.1.0.4"});
  auto left = g.set_addresses(0, {held->address == "10.1.0.4" ? "10.1.0.1" : "10.1.0.4"});
  EXPECT_EQ(left.size(), 3u);
  EXPECT_TRUE(held->removed);
  g.end(*held);  // still valid after it left
  std::map<std::string, int> count;
  for (int i = 0; i < 10; ++i) ++count[g.pick(TimePoint{}, {})->address];
  EXPECT_EQ(count.size(), 1u);
  EXPECT_EQ(count.begin()->second, 10);
}
