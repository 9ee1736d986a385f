#include "tronada/loop/timeout_list.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "support/loop_check.h"

using namespace tronada;
using namespace std::chrono_literals;
using test_support::expect_clean_close;
using test_support::LogCapture;

namespace {

struct Owner {
  std::vector<std::string>* fired;
  std::string name;
  bool throws = false;
  TimeoutEntry entry{&Owner::fire, this};

  static void fire(void* p) {
    auto* self = static_cast<Owner*>(p);
    self->fired->push_back(self->name);
    if (self->throws) throw std::runtime_error(self->name + " failed");
  }
};

}  // namespace

TEST(TimeoutList, EntriesFireInOrderAfterTheirDuration) {
  IOLoop loop;
  std::vector<std::string> fired;
  {
    TimeoutList list(loop, 5ms);
    Owner a{&fired, "a"}, b{&fired, "b"}, c{&fired, "c"};
    list.arm(a.entry);
    list.arm(b.entry);
    list.arm(c.entry);
    b.entry.disarm();
    loop.call_later(50ms, [&] { loop.stop(); });
    loop.start();
    EXPECT_EQ(fired, (std::vector<std::string>{"a", "c"}));
    EXPECT_TRUE(list.empty());
  }
  expect_clean_close(loop);
}

TEST(TimeoutList, AThrowingCallbackIsLoggedAndTheOthersStillFire) {
  // The timer callback runs inside libuv: an exception must not unwind through it.
  IOLoop loop;
  std::vector<std::string> fired;
  LogCapture log;
  {
    TimeoutList list(loop, 5ms);
    Owner a{&fired, "a", true}, b{&fired, "b"}, c{&fired, "c", true};
    list.arm(a.entry);
    list.arm(b.entry);
    list.arm(c.entry);
    bool later_ran = false;
    loop.call_later(50ms, [&] {
      later_ran = true;
      loop.stop();
    });
    loop.start();
    EXPECT_TRUE(later_ran);  // the loop went on
    EXPECT_EQ(fired, (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_FALSE(a.entry.armed());
    // The list still works after the exception.
    list.arm(b.entry);
    loop.call_later(50ms, [&] { loop.stop(); });
    loop.start();
    EXPECT_EQ(fired.back(), "b");
    EXPECT_EQ(fired.size(), 4u);
  }
  std::string text = log.contents();
  EXPECT_NE(text.find("a failed"), std::string::npos) << text;
  EXPECT_NE(text.find("c failed"), std::string::npos) << text;
  expect_clean_close(loop);
}
