#include "tronada/gateway/wsgi_body.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
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

// Plays the loop's part: pushes `data` in pieces, and once push() reports the high-water
// mark stops (as the loop pauses the socket) until the reader's on_drained resumes it.
// A reader that never drains would leave it waiting for good: after a generous grace it
// aborts the body, so the reader throws and the test fails instead of hanging.
class PausingProducer {
 public:
  PausingProducer(WSGIBody& body, std::string data, std::size_t piece)
      : body_(body), data_(std::move(data)), piece_(piece) {
    body_.set_on_drained([this] {
      std::lock_guard lock(mutex_);
      paused_ = false;
      resumed_.notify_one();
    });
    thread_ = std::thread([this] { run(); });
  }
  ~PausingProducer() { thread_.join(); }
  bool stalled() const { return stalled_; }

 private:
  void run() {
    for (std::size_t at = 0; at < data_.size(); at += piece_) {
      std::unique_lock lock(mutex_);
      if (body_.push(std::string_view(data_).substr(at, piece_))) paused_ = true;
      if (!resumed_.wait_for(lock, std::chrono::seconds(20), [&] { return !paused_; })) {
        stalled_ = true;
        body_.abort();
        return;
      }
    }
    body_.end();
  }

  WSGIBody& body_;
  std::string data_;
  std::size_t piece_;
  std::mutex mutex_;
  std::condition_variable resumed_;
  bool paused_ = false;
  std::atomic<bool> stalled_{false};
  std::thread thread_;
};

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i * 7 % 26);
  return s;
}

TEST(WsgiBody, ReadLargerThanTheBufferCollectsInSteps) {
  // The issue: read(CONTENT_LENGTH) of a body over the buffer waited for all of it to be
  // buffered, while the loop had stopped reading until the buffer drained.
  WSGIBody body(1000);
  std::string data = pattern(25000);
  PausingProducer producer(body, data, 300);
  std::string got;
  EXPECT_NO_THROW(got = *body.read(static_cast<std::ptrdiff_t>(data.size()), true));
  EXPECT_EQ(got, data);
  EXPECT_EQ(*body.read(10, true), "");
  EXPECT_FALSE(producer.stalled());
}

TEST(WsgiBody, ReadsOfEverySizeAcrossTheBuffer) {
  for (std::ptrdiff_t n : {1, 999, 1000, 1001, 2500, 7000, 30000}) {
    WSGIBody body(1000);
    std::string data = pattern(20011);
    PausingProducer producer(body, data, 257);
    std::string got;
    for (;;) {
      std::string piece = *body.read(n, true);
      if (piece.empty()) break;
      // Whole pieces, short only at the end.
      if (got.size() + piece.size() < data.size()) {
        EXPECT_EQ(piece.size(), std::size_t(n));
      }
      got += piece;
    }
    EXPECT_EQ(got, data) << "read(" << n << ")";
    EXPECT_FALSE(producer.stalled());
  }
}

TEST(WsgiBody, ReadAllCollectsInSteps) {
  WSGIBody body(1000);
  std::string data = pattern(50000);
  PausingProducer producer(body, data, 4096);
  EXPECT_EQ(*body.read(-1, true), data);
  EXPECT_FALSE(producer.stalled());
}

TEST(WsgiBody, LinesLongerThanTheBuffer) {
  // Lines of 5, 3000 and 12000 bytes through a 1000-byte buffer, then one without '\n'.
  std::string data = "four\n" + std::string(2999, 'x') + "\n" + std::string(11999, 'y') + "\n" +
                     std::string(4000, 'z');
  WSGIBody body(1000);
  PausingProducer producer(body, data, 700);
  EXPECT_EQ(*body.readline(-1, true), "four\n");
  EXPECT_EQ(*body.readline(-1, true), std::string(2999, 'x') + "\n");
  // A limit past the buffer gives exactly that many bytes, not what happened to be there.
  EXPECT_EQ(*body.readline(5000, true), std::string(5000, 'y'));
  EXPECT_EQ(*body.readline(-1, true), std::string(6999, 'y') + "\n");
  EXPECT_EQ(*body.readline(-1, true), std::string(4000, 'z'));
  EXPECT_EQ(*body.readline(-1, true), "");
  EXPECT_FALSE(producer.stalled());
}

TEST(WsgiBody, NonBlockingReadlineConsumesNothingUntilItCanAnswer) {
  WSGIBody body(10);
  EXPECT_TRUE(body.push(std::string(15, 'a')));
  EXPECT_FALSE(body.readline(20, false).has_value());
  EXPECT_FALSE(body.readline(-1, false).has_value());
  EXPECT_EQ(body.buffered(), 15u);
  EXPECT_EQ(*body.readline(4, false), "aaaa");
  body.push("b\nc");
  EXPECT_EQ(*body.readline(-1, false), std::string(11, 'a') + "b\n");
  EXPECT_EQ(*body.readline(0, false), "");
  body.end();
  EXPECT_EQ(*body.readline(-1, false), "c");
}

TEST(WsgiBody, AbortWakesAReaderCollectingInSteps) {
  WSGIBody body(10);
  std::atomic<bool> threw{false};
  std::thread reader([&] {
    try {
      body.read(1000, true);
    } catch (const WSGIBodyError&) {
      threw = true;
    }
  });
  body.push(std::string(50, 'x'));
  body.abort();
  reader.join();
  EXPECT_TRUE(threw);
}

TEST(WsgiBody, ReadTimesOut) {
  WSGIBody body(1024, std::chrono::seconds(0));
  EXPECT_THROW(body.read(1, true), WSGIBodyError);
}

}  // namespace
}  // namespace tronada
