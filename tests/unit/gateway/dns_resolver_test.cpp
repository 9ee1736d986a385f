#include "tronada/gateway/dns_resolver.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>

#include "support/loop_check.h"

using namespace tronada;
using namespace std::chrono_literals;
using test_support::expect_clean_close;

namespace {

/// Runs `loop` until `answer` is set or 10 s pass.
void run_until(IOLoop& loop, const std::optional<DnsAnswer>& answer) {
  auto deadline = loop.call_later(10s, [&] { loop.stop(); });
  std::function<void()> poll = [&] {
    if (answer) return loop.stop();
    loop.call_later(1ms, poll);
  };
  loop.add_callback(poll);
  loop.start();
  loop.remove_timeout(deadline);
}

}  // namespace

TEST(DnsResolver, ValidatesServers) {
  for (const char* good : {"", "127.0.0.1", "127.0.0.1:5353", "10.0.0.2,10.0.0.3:53", "::1",
                           "[::1]:53", "[fd00::53]"}) {
    EXPECT_NO_THROW(DnsResolver::validate_servers(good)) << good;
  }
  for (const char* bad : {"dns.example", "127.0.0.1:0", "127.0.0.1:99999", "127.0.0.1:x", "[::1",
                          "[::1]x", "127.0.0.1,", "127.0.0.1:"}) {
    EXPECT_THROW(DnsResolver::validate_servers(bad), std::invalid_argument) << bad;
  }
}

TEST(DnsResolver, AnswersFromEtcHostsAndLiteralsLater) {
  IOLoop loop;
  loop.make_current();
  {
    // Nothing listens on the discard port: a name in /etc/hosts must not need it.
    auto resolver = DnsResolver::create("127.0.0.1:9", &loop);
    std::optional<DnsAnswer> local, literal;
    bool inside = true;
    resolver->resolve("localhost", [&](DnsAnswer a) {
      EXPECT_FALSE(inside);
      local = std::move(a);
    });
    resolver->resolve("127.0.0.7", [&](DnsAnswer a) {
      EXPECT_FALSE(inside);
      literal = std::move(a);
    });
    inside = false;
    run_until(loop, local);
    run_until(loop, literal);
    ASSERT_TRUE(local);
    EXPECT_EQ(local->error, "");
    EXPECT_NE(std::find(local->addresses.begin(), local->addresses.end(), "127.0.0.1"),
              local->addresses.end());
    ASSERT_TRUE(literal);
    EXPECT_EQ(literal->addresses, std::vector<std::string>{"127.0.0.7"});
  }
  expect_clean_close(loop);
}

TEST(DnsResolver, AnUnreachableServerIsAnError) {
  IOLoop loop;
  loop.make_current();
  {
    auto resolver = DnsResolver::create("127.0.0.1:9", &loop);
    std::optional<DnsAnswer> answer;
    resolver->resolve("upstream.tronada-test.invalid", [&](DnsAnswer a) { answer = std::move(a); });
    run_until(loop, answer);
    ASSERT_TRUE(answer);
    EXPECT_NE(answer->error, "");
    EXPECT_TRUE(answer->addresses.empty());
  }
  expect_clean_close(loop);
}

TEST(DnsResolver, CloseDropsPendingLookups) {
  IOLoop loop;
  loop.make_current();
  {
    auto resolver = DnsResolver::create("127.0.0.1:9", &loop);
    bool called = false;
    resolver->resolve("upstream.tronada-test.invalid", [&](DnsAnswer) { called = true; });
    resolver->close();
    resolver->close();
    bool ran = false;
    loop.call_later(50ms, [&] {
      ran = true;
      loop.stop();
    });
    loop.start();
    EXPECT_TRUE(ran);
    EXPECT_FALSE(called);
  }
  expect_clean_close(loop);
}
