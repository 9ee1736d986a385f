#include "tronada/gateway/wsgi_body.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace tronada {
namespace {

TEST(WsgiBody, ReadWithFileSemantics) {
  WSGIBody body;
  body.push("hello ");
  body.push("world\nsecond line\nrest");
  body.end();
  EXPECT_EQ(*body.read(3, true), "hel");
  EXPECT_EQ(*body.readline(-1, true), "lo world\n");
  EXPECT_EQ(*body.readline(3, true), "sec");
  EXPECT_EQ(*body.readline(-1, true), "ond line\n");
  EXPECT_EQ(*body.readline(-1, true), "rest");
  EXPECT_EQ(*body.readline(-1, true), "");
  EXPECT_EQ(*body.read(-1, true), "");
  EXPECT_TRUE(body.at_end());
}

TEST(WsgiBody, NonBlockingReadSaysWouldBlock) {
  WSGIBody body;
  body.push("abc");
  EXPECT_FALSE(body.read(5, false).has_value());
  EXPECT_FALSE(body.read(-1, false).has_value());
  EXPECT_FALSE(body.readline(-1, false).has_value());
  EXPECT_EQ(*body.read(2, false), "ab");
  body.end();
  EXPECT_EQ(*body.read(5, false), "c");
}

TEST(WsgiBody, ReaderBlocksUntilDataArrives) {
  WSGIBody body;
  std::string got;
  std::thread reader([&] { got = *body.read(-1, true); });
  for (int i = 0; i < 100; ++i) body.push(std::string(1000, 'x'));
  body.end();
  reader.join();
  EXPECT_EQ(got.size(), 100000u);
}

TEST(WsgiBody, AbortWakesAReader) {
  WSGIBody body;
  std::atomic<bool> threw{false};
  std::thread reader([&] {
    try {
      body.read(10, true);
    } catch (const WSGIBodyError&) {
      threw = true;
    }
  });
  body.push("abc");
  body.abort();
  reader.join();
  EXPECT_TRUE(threw);
}

TEST(WsgiBody, HighWaterAndDrainedCallback) {
  WSGIBody body(10);
  int drained = 0;
  body.set_on_drained([&] { ++drained; });
  EXPECT_FALSE(body.push("12345"));
  EXPECT_TRUE(body.push("678901234567"));  // 17 unread > 10
  EXPECT_EQ(*body.read(4, true), "1234");  // 13 left: still over half
  EXPECT_EQ(drained, 0);
  EXPECT_EQ(*body.read(10, true), "5678901234");  // 3 left
  EXPECT_EQ(drained, 1);
  EXPECT_FALSE(body.push("x"));
}

TEST(WsgiBody, ReadTimesOut) {
  WSGIBody body(1024, std::chrono::seconds(0));
  EXPECT_THROW(body.read(1, true), WSGIBodyError);
}

}  // namespace
}  // namespace tronada
