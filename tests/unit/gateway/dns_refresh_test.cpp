#include "tronada/gateway/dns_refresh.h"

#include <gtest/gtest.h>

#include <stdexcept>

using namespace tronada;
using namespace std::chrono_literals;

namespace {

using Strings = std::vector<std::string>;

DnsRefresh::Options options(Duration interval) {
  DnsRefresh::Options o;
  o.interval = interval;
  o.min_interval = 1s;
  o.retry_interval = 5s;
  o.log_every = 60s;
  return o;
}

}  // namespace

TEST(DnsRefresh, FirstAnswerAddsEverythingSortedAndDeduplicated) {
  DnsRefresh r(options(30s));
  TimePoint t0{};
  EXPECT_FALSE(r.has_answer());
  auto change = r.answer_received({"10.0.0.3", "10.0.0.1", "10.0.0.3"}, 300s, t0);
  EXPECT_EQ(change.added, (Strings{"10.0.0.1", "10.0.0.3"}));
  EXPECT_TRUE(change.removed.empty());
  EXPECT_TRUE(r.has_answer());
  EXPECT_EQ(r.addresses(), (Strings{"10.0.0.1", "10.0.0.3"}));
}

TEST(DnsRefresh, LaterAnswersReportWhatCameAndWent) {
  DnsRefresh r(options(30s));
  TimePoint t0{};
  r.answer_received({"a", "b", "c"}, std::nullopt, t0);
  auto change = r.answer_received({"d", "b", "c"}, std::nullopt, t0 + 30s);
  EXPECT_EQ(change.added, Strings{"d"});
  EXPECT_EQ(change.removed, Strings{"a"});
  EXPECT_TRUE(r.answer_received({"c", "b", "d"}, std::nullopt, t0 + 60s).empty());
  EXPECT_EQ(r.addresses(), (Strings{"b", "c", "d"}));
}

TEST(DnsRefresh, NextLookupIsTheShorterOfIntervalAndTtlWithAFloor) {
  DnsRefresh r(options(30s));
  TimePoint t0{};
  r.answer_received({"a"}, 300s, t0);
  EXPECT_EQ(r.next_lookup(), t0 + 30s);  // the interval bounds a long TTL
  r.answer_received({"a"}, 7s, t0);
  EXPECT_EQ(r.next_lookup(), t0 + 7s);  // a short TTL wins
  r.answer_received({"a"}, 0s, t0);
  EXPECT_EQ(r.next_lookup(), t0 + 1s);  // but never below the floor
  r.answer_received({"a"}, std::nullopt, t0);
  EXPECT_EQ(r.next_lookup(), t0 + 30s);  // no TTL known: the interval
}

TEST(DnsRefresh, FailureKeepsTheLastGoodSetAndRetriesSooner) {
  DnsRefresh r(options(30s));
  TimePoint t0{};
  r.answer_received({"a", "b"}, std::nullopt, t0);
  EXPECT_TRUE(r.lookup_failed("timeout", t0 + 30s));
  EXPECT_EQ(r.addresses(), (Strings{"a", "b"}));
  EXPECT_EQ(r.next_lookup(), t0 + 35s);  // retry_interval, shorter than the interval
  EXPECT_EQ(r.failures(), 1u);
  EXPECT_EQ(r.last_error(), "timeout");
  // An interval shorter than the retry: the interval.
  DnsRefresh quick(options(2s));
  quick.lookup_failed("refused", t0);
  EXPECT_EQ(quick.next_lookup(), t0 + 2s);
}

TEST(DnsRefresh, AnEmptyAnswerIsAFailure) {
  DnsRefresh r(options(30s));
  TimePoint t0{};
  r.answer_received({"a"}, std::nullopt, t0);
  auto change = r.answer_received({}, std::nullopt, t0 + 30s);
  EXPECT_TRUE(change.empty());
  EXPECT_EQ(r.addresses(), Strings{"a"});
  EXPECT_EQ(r.failures(), 1u);
}

TEST(DnsRefresh, FailuresAreLoggedAtMostOncePerPeriod) {
  DnsRefresh r(options(1s));
  TimePoint t0{};
  EXPECT_TRUE(r.lookup_failed("x", t0));
  int logged = 0;
  for (int i = 1; i < 60; ++i) logged += r.lookup_failed("x", t0 + std::chrono::seconds(i));
  EXPECT_EQ(logged, 0);
  EXPECT_TRUE(r.lookup_failed("x", t0 + 60s));
  EXPECT_EQ(r.suppressed_failures(), 59u);
  // A good answer ends the run: it is reported as a recovery, and the next failure is
  // logged at once.
  r.answer_received({"a"}, std::nullopt, t0 + 61s);
  EXPECT_TRUE(r.recovered());
  EXPECT_EQ(r.failures(), 0u);
  r.answer_received({"a"}, std::nullopt, t0 + 62s);
  EXPECT_FALSE(r.recovered());
  EXPECT_TRUE(r.lookup_failed("x", t0 + 63s));
}

TEST(DnsRefresh, RejectsANonPositiveInterval) {
  EXPECT_THROW(DnsRefresh(options(0s)), std::invalid_argument);
}
