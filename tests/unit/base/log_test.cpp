// log's deferred flush, turned on for a loop thread: its info lines wait for the end of
// the loop iteration that wrote them, in order with warnings, and never past it.
#include "tronada/base/log.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "tronada/loop/io_loop.h"

using namespace tronada;

namespace {

std::string read_all(std::FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fseek(f, 0, SEEK_END);
  return out;
}

struct Sink {
  std::FILE* file = std::tmpfile();
  Sink() { log::set_sink(file); }
  ~Sink() {
    log::set_sink(nullptr);
    std::fclose(file);
  }
};

TEST(LogDeferredFlush, OffTheLoopEveryLineIsWrittenAtOnce) {
  Sink sink;
  log::info("access", "one");
  EXPECT_NE(read_all(sink.file).find("one"), std::string::npos);
}

TEST(LogDeferredFlush, ABurstIsWrittenOnceTheBufferHoldsSixteenKiB) {
  Sink sink;
  log::set_deferred_flush(true);
  std::string line(100, 'x');
  log::info("access", line);
  std::string after_one = read_all(sink.file);
  for (int i = 0; i < 200; ++i) log::info("access", line);  // ~26 KiB with prefixes
  std::string after_burst = read_all(sink.file);
  log::set_deferred_flush(false);
  EXPECT_EQ(after_one, "");               // held
  EXPECT_GE(after_burst.size(), 16384u);  // written without waiting for a flush
}

TEST(LogDeferredFlush, LoopThreadLinesWaitForTheIterationAndKeepTheirOrder) {
  Sink sink;
  IOLoop loop;
  log::set_deferred_flush(true);
  std::string inside_after_info, inside_after_warning;
  loop.add_callback([&] {
    log::info("access", "first");
    inside_after_info = read_all(sink.file);
    log::warning("web", "second");
    inside_after_warning = read_all(sink.file);
    log::info("access", "third");
    loop.call_later(std::chrono::milliseconds(20), [&] { loop.stop(); });
  });
  loop.start();
  EXPECT_EQ(inside_after_info.find("first"), std::string::npos);  // held for the iteration
  // A warning goes out at once, after what was pending.
  auto first = inside_after_warning.find("first");
  auto second = inside_after_warning.find("second");
  ASSERT_NE(first, std::string::npos);
  ASSERT_NE(second, std::string::npos);
  EXPECT_LT(first, second);
  // Nothing is lost when the loop stops.
  log::set_deferred_flush(false);
  std::string all = read_all(sink.file);
  EXPECT_NE(all.find("third"), std::string::npos);
  loop.close();
}

TEST(LogDeferredFlush, ALineIsNotHeldWhileTheLoopWaits) {
  Sink sink;
  IOLoop loop;
  log::set_deferred_flush(true);
  std::string seen_by_timer;
  loop.add_callback([&] { log::info("access", "before the wait"); });
  // Fires after the loop has polled at least once: the prepare phase flushed by then.
  loop.call_later(std::chrono::milliseconds(30), [&] {
    seen_by_timer = read_all(sink.file);
    loop.stop();
  });
  loop.start();
  log::set_deferred_flush(false);
  EXPECT_NE(seen_by_timer.find("before the wait"), std::string::npos);
  loop.close();
}

}  // namespace
