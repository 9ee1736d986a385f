// redis::Client and redis::Subscriber against a real redis-server that the test starts:
// commands, error replies, pipelining, pub/sub, and reconnecting after a restart.
#include "tronada/db/redis_client.h"

#include <gtest/gtest.h>

#include "db/db_fixture.h"
#include "tronada/async/event.h"
#include "tronada/db/redis_subscriber.h"

using namespace tronada;
using namespace tronada::test_support;
using namespace std::chrono_literals;

namespace {
class RedisClientTest : public RedisTest {
 protected:
  redis::ConnectOptions options() const { return {.port = server->port()}; }
};
}  // namespace

TEST_F(RedisClientTest, CommandsRepliesAndErrors) {
  redis::Client redis(options());
  run([&]() -> Task<void> {
    std::string binary("a\0b\r\n$3\r\n", 9);  // binary-safe: no format string anywhere
    Future<redis::Reply> set = redis.cmd("SET", "k", binary);
    redis::Reply ok = co_await set;
    EXPECT_EQ(ok.type, redis::Reply::Type::status);
    EXPECT_EQ(ok.str, "OK");
    Future<redis::Reply> get = redis.cmd("GET", "k");
    redis::Reply got = co_await get;
    EXPECT_EQ(got.type, redis::Reply::Type::string);
    EXPECT_EQ(got.str, binary);
    Future<redis::Reply> missing = redis.cmd("GET", "nope");
    redis::Reply nil = co_await missing;
    EXPECT_TRUE(nil.is_nil());
    EXPECT_EQ(nil.value(), std::nullopt);
    Future<redis::Reply> incr = redis.cmd("INCRBY", "n", 41);
    redis::Reply n = co_await incr;
    EXPECT_EQ(n.integer, 41);
    Future<redis::Reply> push = redis.cmd("RPUSH", "list", "x", "y", 3);
    co_await push;
    Future<redis::Reply> range = redis.cmd("LRANGE", "list", 0, -1);
    redis::Reply list = co_await range;
    EXPECT_EQ(list.type, redis::Reply::Type::array);
    EXPECT_EQ(list.elements.size(), 3u);
    if (list.elements.size() == 3) {
      EXPECT_EQ(list.elements[2].str, "3");
    }

    Future<redis::Reply> wrong = redis.cmd("INCR", "list");
    try {
      co_await wrong;
      ADD_FAILURE() << "an error reply must throw";
    } catch (const redis::ServerError& e) {
      EXPECT_NE(std::string(e.what()).find("WRONGTYPE"), std::string::npos) << e.what();
    }
    Future<redis::Reply> unknown = redis.cmd("NOSUCHCOMMAND");
    EXPECT_THROW(co_await unknown, redis::ServerError);
    EXPECT_TRUE(redis.connected());
  });
  redis.close();
}

TEST_F(RedisClientTest, PipelineSendsABatchAndKeepsErrorsPerCommand) {
  redis::Client redis(options());
  run([&]() -> Task<void> {
    std::vector<std::vector<std::string>> batch;
    for (int i = 0; i < 500; ++i) batch.push_back({"INCR", "counter"});
    batch.push_back({"HSET", "counter", "f", "v"});  // wrong type: an error among replies
    batch.push_back({"GET", "counter"});
    Future<std::vector<redis::Reply>> f = redis.pipeline(batch);
    std::vector<redis::Reply> replies = co_await f;
    EXPECT_EQ(replies.size(), 502u);
    if (replies.size() != 502) co_return;
    EXPECT_EQ(replies[0].integer, 1);
    EXPECT_EQ(replies[499].integer, 500);
    EXPECT_TRUE(replies[500].is_error());
    EXPECT_EQ(replies[501].str, "500");
    // Commands issued without awaiting share the pipeline and answer in order.
    std::vector<Future<redis::Reply>> loose;
    for (int i = 0; i < 100; ++i) loose.push_back(redis.cmd("INCR", "loose"));
    for (int i = 0; i < 100; ++i) {
      redis::Reply r = co_await loose[i];
      EXPECT_EQ(r.integer, i + 1);
    }
  });
  redis.close();
}

TEST_F(RedisClientTest, PubSubDeliversMessagesAndResubscribesAfterRestart) {
  redis::Client redis(options());
  redis::Subscriber sub(options());
  run([&]() -> Task<void> {
    std::vector<std::string> got;
    Event arrived;
    auto handler = [&](const std::string& channel, const std::string& message) {
      got.push_back(channel + ":" + message);
      arrived.set();
    };
    Future<void> s1 = sub.subscribe("news", handler);
    co_await s1;
    Future<void> s2 = sub.psubscribe("metrics.*", handler);
    co_await s2;
    Future<redis::Reply> p1 = redis.cmd("PUBLISH", "news", "hello");
    redis::Reply receivers = co_await p1;
    EXPECT_EQ(receivers.integer, 1);
    Future<redis::Reply> p2 = redis.cmd("PUBLISH", "metrics.cpu", "42");
    co_await p2;
    while (got.size() < 2) {
      arrived.clear();
      Future<void> w = arrived.wait(10s);
      co_await w;
    }
    EXPECT_EQ(got, (std::vector<std::string>{"news:hello", "metrics.cpu:42"}));

    // The server goes away: commands fail, then the client and subscriber come back.
    Event reconnected;
    sub.set_reconnect_handler([&] { reconnected.set(); });
    server->kill();
    Future<redis::Reply> down = redis.cmd("PING");
    EXPECT_THROW(co_await down, redis::ConnectionError);
    server->start();
    Future<void> back = reconnected.wait(20s);
    co_await back;
    Future<redis::Reply> ping = redis.cmd("PING");
    redis::Reply pong = co_await ping;
    EXPECT_EQ(pong.str, "PONG");
    got.clear();
    arrived.clear();
    Future<redis::Reply> p3 = redis.cmd("PUBLISH", "news", "again");
    co_await p3;
    Future<void> w = arrived.wait(10s);
    co_await w;
    EXPECT_EQ(got, std::vector<std::string>{"news:again"});

    sub.unsubscribe("news");
    Future<void> settle = sleep(100ms);
    co_await settle;
    Future<redis::Reply> p4 = redis.cmd("PUBLISH", "news", "unheard");
    redis::Reply none = co_await p4;
    EXPECT_EQ(none.integer, 0);
  });
  sub.close();
  redis.close();
}

TEST_F(RedisClientTest, RefusedConnectionAndTimeouts) {
  redis::Client refused({.port = 1});
  redis::Client slow({.port = server->port(), .command_timeout = 200ms});
  run([&]() -> Task<void> {
    Future<redis::Reply> f = refused.cmd("PING");
    EXPECT_THROW(co_await f, redis::ConnectionError);
    Future<redis::Reply> blocked = slow.cmd("BLPOP", "empty", 5);  // blocks server-side 5 s
    EXPECT_THROW(co_await blocked, TimeoutError);
  });
  refused.close();
  slow.close();
}
