// The measurement the idle-memory tests share: heap bytes per idle connection.
//
// The server runs on the main thread's IOLoop. A client thread opens a warm-up batch of
// connections (timer lists, pools and the listener's first-use allocations), then a
// measured batch, each left idle by `open`. The heap in use (glibc's mallinfo2, every
// arena, so libuv's and the C library's allocations count too) is read on the loop
// thread once each batch sits idle; the difference divided by the measured batch is what
// one idle connection costs. The client only keeps file descriptors and allocates
// nothing while the batch is measured.
#pragma once

#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <optional>
#include <thread>
#include <vector>

#include "tronada/loop/io_loop.h"

namespace tronada::testing {

inline std::size_t heap_in_use() {
  struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

/// Runs the current IOLoop until the measurement is done. `open(port, count, fds)` opens
/// `count` connections left idle, appending their descriptors to `fds`, and says whether
/// it could. Returns the heap bytes per measured connection, or nullopt if `open` failed.
template <typename Open>
std::optional<double> idle_heap_per_connection(int port, int warmup, int measured, Open open) {
  IOLoop& loop = IOLoop::current();
  std::vector<int> fds;
  fds.reserve(static_cast<std::size_t>(warmup + measured));
  std::atomic<std::size_t> before{0}, after{0};
  bool client_ok = false;
  std::thread client([&] {
    // Each reading runs on the loop thread, between two of its iterations; a short wait
    // lets the server finish what the last exchange left (scheduled callbacks).
    auto read_heap = [&](std::atomic<std::size_t>& into) {
      std::atomic<bool> done{false};
      ::usleep(100 * 1000);
      loop.add_callback([&] {
        into = heap_in_use();
        done = true;
      });
      while (!done) ::usleep(1000);
    };
    client_ok = open(port, warmup, fds);
    if (client_ok) read_heap(before);
    client_ok = client_ok && open(port, measured, fds);
    if (client_ok) read_heap(after);
    for (int fd : fds) ::close(fd);
    // Closed by the peer, each connection finishes its close on the loop; let it.
    ::usleep(100 * 1000);
    loop.add_callback([&loop] { loop.stop(); });
  });
  loop.start();
  client.join();
  if (!client_ok) return std::nullopt;
  return (static_cast<double>(after.load()) - static_cast<double>(before.load())) / measured;
}

}  // namespace tronada::testing
