// ProxyRoute across a config reload: what carries over from the route it replaces
// (carry_state_from), and the health check timeout's default.
#include <gtest/gtest.h>

#include "support/loop_check.h"
#include "tronada/gateway/proxy_handler.h"

using namespace tronada;
using namespace std::chrono_literals;
using test_support::expect_clean_close;

namespace {

Upstream& member(ProxyRoute& r, std::size_t i) {
  return *r.group().upstreams().at(i);
}

}  // namespace

TEST(ProxyRouteState, ReloadCarriesFailuresAndHealthByURL) {
  IOLoop loop;
  loop.make_current();
  {
    ProxyOptions checked;
    checked.health_uri = "/health";
    ProxyRoute old({"http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"}, checked);
    TimePoint now = loop.time();
    member(old, 0).health_check_down = true;
    member(old, 1).failures = 2;
    member(old, 1).first_failure = now;
    member(old, 1).down_until = now + 10s;

    // Reordered, one new, one gone: matched by URL, not position.
    ProxyRoute next({"http://127.0.0.1:4", "http://127.0.0.1:2", "http://127.0.0.1:1"}, checked);
    next.carry_state_from(old);
    EXPECT_FALSE(member(next, 0).down(now));
    EXPECT_EQ(member(next, 1).failures, 2u);
    EXPECT_EQ(member(next, 1).down_until, now + 10s);
    EXPECT_TRUE(member(next, 1).down(now));
    EXPECT_TRUE(member(next, 2).health_check_down);

    // Without active checks nothing would clear the flag: it is not carried, the
    // passive marks are.
    ProxyRoute passive({"http://127.0.0.1:1", "http://127.0.0.1:2"});
    passive.carry_state_from(old);
    EXPECT_FALSE(member(passive, 0).health_check_down);
    EXPECT_FALSE(member(passive, 0).down(now));
    EXPECT_TRUE(member(passive, 1).down(now));
  }
  expect_clean_close(loop);
}

TEST(ProxyRouteState, HealthTimeoutDefaultsToTheSmallerOfFiveSecondsAndTheInterval) {
  IOLoop loop;
  loop.make_current();
  {
    ProxyOptions o;
    o.health_uri = "/health";
    EXPECT_EQ(ProxyRoute({"http://127.0.0.1:1"}, o).health_timeout(), Duration(5s));
    o.health_interval = 1s;
    EXPECT_EQ(ProxyRoute({"http://127.0.0.1:1"}, o).health_timeout(), Duration(1s));
    o.health_timeout = 2s;
    EXPECT_EQ(ProxyRoute({"http://127.0.0.1:1"}, o).health_timeout(), Duration(2s));
    o.health_timeout = -1s;
    EXPECT_THROW(ProxyRoute({"http://127.0.0.1:1"}, o), std::invalid_argument);
    o.health_timeout = 1s;
    o.health_interval = 0s;
    EXPECT_THROW(ProxyRoute({"http://127.0.0.1:1"}, o), std::invalid_argument);
  }
  expect_clean_close(loop);
}
