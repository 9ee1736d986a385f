// redis::Connection against a scripted peer, for the failures a real redis-server
// produces only by chance.
#include "tronada/db/redis_connection.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include "db/db_fixture.h"
#include "db/loopback_peer.h"

using namespace tronada;
using namespace tronada::test_support;
using namespace std::chrono_literals;

namespace {
class RedisPeerTest : public LoopTest {};
}  // namespace

// A reply cut short by a reset (the server died while writing it, with commands of ours
// unread): the client's socket holds the first bytes and the error at once. libuv then
// reports the error and stops watching, and the partial reply read before it leaves
// hiredis waiting for the rest. The command must fail, not wait forever.
TEST_F(RedisPeerTest, ACommandFailsWhenItsReplyIsCutShortByAReset) {
  LoopbackListener listener;
  run([&]() -> Task<void> {
    std::shared_ptr<redis::Connection> conn = redis::Connection::open({.port = listener.port()});
    int peer = listener.accept();
    Future<void> up = conn->connected();
    co_await up;
    Future<redis::Reply> get = conn->command({"GET", "k"});
    // hiredis writes once the loop reports the socket writable: let the loop run until
    // the whole command has arrived.
    const std::string expected = "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    std::string got;
    for (int i = 0; i < 10000 && got.size() < expected.size(); ++i) {
      char buf[256];
      ssize_t n = ::recv(peer, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        got.append(buf, static_cast<std::size_t>(n));
      } else {
        Future<void> pause = sleep(1ms);
        co_await pause;
      }
    }
    EXPECT_EQ(got, expected);
    write_all(peer, "$10\r\nabc");  // the first bytes of a 10-byte value
    hang_up_and_wait_until_seen(peer, Hangup::reset);
    EXPECT_THROW(co_await get, redis::ConnectionError);
    EXPECT_FALSE(conn->is_open());
  });
}
