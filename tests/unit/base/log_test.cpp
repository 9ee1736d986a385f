// log's deferred flush, turned on for a loop thread: its info lines wait for the end of
// the loop iteration that wrote them, in order with warnings, and never past it; they
// leave in whole lines of at most PIPE_BUF bytes, and a fork does not duplicate them.
#include "tronada/base/log.h"

#include <gtest/gtest.h>

#include <limits.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

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

TEST(LogDeferredFlush, ALoopTurnsItOnWhileItRunsAndOffAfter) {
  Sink sink;
  IOLoop loop;
  std::string inside;
  loop.add_callback([&] {
    log::info("access", "held");
    inside = read_all(sink.file);
    loop.stop();
  });
  loop.start();
  EXPECT_EQ(inside.find("held"), std::string::npos);
  EXPECT_NE(read_all(sink.file).find("held"), std::string::npos);  // written at the stop
  log::info("access", "after");                                    // no loop runs: at once
  EXPECT_NE(read_all(sink.file).find("after"), std::string::npos);
  loop.close();
}

// The write(2) calls a deferred batch of `messages` becomes, each seen on its own.
std::vector<std::string> writes_of_batch(const std::vector<std::string>& messages) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, fds) != 0) return {};
  int big = 1 << 20;
  setsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  std::FILE* out = fdopen(fds[1], "w");
  log::set_sink(out);
  log::set_deferred_flush(true);
  for (const auto& m : messages) log::info("access", m);
  log::flush_deferred();
  log::set_deferred_flush(false);
  log::set_sink(nullptr);
  std::fclose(out);
  std::vector<std::string> writes;
  std::vector<char> buf(1 << 16);
  ssize_t n;
  while ((n = ::recv(fds[0], buf.data(), buf.size(), 0)) > 0) writes.emplace_back(buf.data(), n);
  ::close(fds[0]);
  return writes;
}

// Workers share a pipe, where only writes of up to PIPE_BUF bytes are atomic: a batch
// goes out in writes that each end at a line's end and fit in PIPE_BUF. A SEQPACKET
// socket keeps each write(2) a message of its own, so the test sees the writes.
TEST(LogDeferredFlush, ABatchIsWrittenInWholeLinesOfAtMostPipeBuf) {
  std::vector<std::string> messages;
  for (int i = 0; i < 100; ++i) messages.emplace_back(90, static_cast<char>('a' + i % 26));
  auto writes = writes_of_batch(messages);
  ASSERT_GT(writes.size(), 1u);  // ~12 KiB: more than one write
  std::size_t lines = 0;
  for (const auto& w : writes) {
    EXPECT_LE(w.size(), static_cast<std::size_t>(PIPE_BUF));
    EXPECT_EQ(w.back(), '\n');
    for (char c : w) lines += c == '\n';
  }
  EXPECT_EQ(lines, 100u);
}

// A line longer than PIPE_BUF cannot be atomic anyway: it goes out on its own, shares
// no write with the lines around it (the sink's stdio may cut it into several writes),
// and those lines keep to the rule.
TEST(LogDeferredFlush, ALineLongerThanPipeBufSharesNoWrite) {
  std::string long_one(2 * PIPE_BUF, 'L');
  auto writes = writes_of_batch({"before", long_one, "after"});
  ASSERT_GE(writes.size(), 3u);
  EXPECT_NE(writes.front().find("before"), std::string::npos);
  EXPECT_EQ(writes.front().find('L'), std::string::npos);
  EXPECT_NE(writes.back().find("after"), std::string::npos);
  EXPECT_EQ(writes.back().find('L'), std::string::npos);
  std::string middle;
  for (std::size_t i = 1; i + 1 < writes.size(); ++i) middle += writes[i];
  EXPECT_NE(middle.find(long_one + "\n"), std::string::npos);
  EXPECT_EQ(std::count(middle.begin(), middle.end(), '\n'), 1);
}

TEST(LogDeferredFlush, AForkedChildDoesNotWriteItsParentsPendingLines) {
  Sink sink;
  log::set_deferred_flush(true);
  log::info("access", "pending before the fork");
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    log::flush_deferred();  // whatever the child holds goes out now
    std::fflush(nullptr);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  log::set_deferred_flush(false);
  std::string all = read_all(sink.file);
  auto first = all.find("pending before the fork");
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(all.find("pending before the fork", first + 1), std::string::npos);
}

}  // namespace
