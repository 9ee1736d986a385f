// The tour's 02_scheduled_tasks: add_callback, call_later and PeriodicCallback.
#include <cstdio>

#include "example_args.h"
#include "tronada/loop/io_loop.h"
#include "tronada/loop/periodic_callback.h"

using namespace tronada;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  examples::parse_args(argc, argv);
  IOLoop& loop = IOLoop::current();
  auto start = loop.time();
  auto elapsed = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(loop.time() - start).count();
  };

  loop.add_callback([&] { std::printf("%5lld ms  callback: runs on the next iteration\n", (long long)elapsed()); });
  loop.call_later(250ms, [&] { std::printf("%5lld ms  timeout: call_later(250ms)\n", (long long)elapsed()); });
  int ticks = 0;
  PeriodicCallback periodic(
      [&] {
        std::printf("%5lld ms  periodic tick %d\n", (long long)elapsed(), ++ticks);
        if (ticks == 5) loop.stop();
      },
      100ms);
  periodic.start();
  loop.start();
  std::fflush(stdout);
  return 0;
}
