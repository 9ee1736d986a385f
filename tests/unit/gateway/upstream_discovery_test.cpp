#include "tronada/gateway/upstream_discovery.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "support/loop_check.h"

using namespace tronada;
using namespace std::chrono_literals;
using test_support::expect_clean_close;

// Names from /etc/hosts (read first, as getaddrinfo does) and a DNS server that is not
// there (the discard port): the real dnsmasq runs in tests/integration/test_dns_upstreams.py.

TEST(UpstreamDiscovery, ReportsTheFirstAnswerAndSettlesOnFailureToo) {
  IOLoop loop;
  loop.make_current();
  {
    std::vector<std::pair<std::size_t, std::vector<std::string>>> changes;
    DiscoveryOptions options;
    options.interval = 1s;
    options.resolver = "127.0.0.1:9";
    UpstreamDiscovery discovery(
        {"localhost", "upstream.tronada-test.invalid"}, options,
        [&](std::size_t i, const std::vector<std::string>& a) { changes.emplace_back(i, a); });
    EXPECT_FALSE(discovery.settled());
    discovery.start();
    discovery.start();  // idempotent
    Future<void> settled = discovery.wait_settled(10s);
    settled.add_done_callback([&] { loop.stop(); });
    loop.start();
    ASSERT_TRUE(settled.done());
    EXPECT_TRUE(discovery.settled());
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_EQ(changes[0].first, 0u);
    EXPECT_EQ(changes[0].second, std::vector<std::string>{"127.0.0.1"});
    EXPECT_TRUE(discovery.addresses(1).empty());
    EXPECT_EQ(discovery.stats().lookups, 1u);
    EXPECT_EQ(discovery.stats().failures, 1u);
    EXPECT_EQ(discovery.stats().changes, 1u);
  }
  expect_clean_close(loop);
}

TEST(UpstreamDiscovery, NoNamesIsSettledAtOnceAndBadOptionsThrow) {
  IOLoop loop;
  loop.make_current();
  {
    UpstreamDiscovery none({}, {}, [](std::size_t, const std::vector<std::string>&) {});
    EXPECT_TRUE(none.settled());
    DiscoveryOptions zero;
    zero.interval = 0s;
    EXPECT_THROW(UpstreamDiscovery({"a"}, zero, nullptr), std::invalid_argument);
    DiscoveryOptions bad;
    bad.resolver = "dns.example";
    EXPECT_THROW(UpstreamDiscovery({"a"}, bad, nullptr), std::invalid_argument);
  }
  expect_clean_close(loop);
}
