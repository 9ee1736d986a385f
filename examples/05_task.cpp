// The tour's 05_task: coroutines instead of callbacks, and gather() running several at
// once (the tour's Task and Multi).
#include <cstdio>

#include "example_args.h"
#include "tronada/async/gather.h"
#include "tronada/async/run_sync.h"
#include "tronada/async/sleep.h"

using namespace tronada;
using namespace std::chrono_literals;

namespace {

Task<std::string> slow_greeting(std::string name, std::chrono::milliseconds delay) {
  co_await sleep(delay);
  co_return "hello, " + name;
}

Task<void> main_task() {
  IOLoop& loop = IOLoop::current();
  auto start = loop.time();
  // One after the other: the delays add up.
  std::string a = co_await slow_greeting("first", 100ms);
  std::string b = co_await slow_greeting("second", 100ms);
  auto sequential = loop.time() - start;
  std::printf("%s / %s  (sequential, %lld ms)\n", a.c_str(), b.c_str(),
              (long long)std::chrono::duration_cast<std::chrono::milliseconds>(sequential).count());

  // Together: the longest delay is all it costs.
  start = loop.time();
  std::vector<Task<std::string>> tasks;
  for (auto name : {"ana", "bo", "cy"}) tasks.push_back(slow_greeting(name, 100ms));
  auto greetings = co_await gather(std::move(tasks));
  auto parallel = loop.time() - start;
  for (auto& g : greetings) std::printf("%s\n", g.c_str());
  std::printf("(gathered, %lld ms)\n",
              (long long)std::chrono::duration_cast<std::chrono::milliseconds>(parallel).count());
}

}  // namespace

int main(int argc, char** argv) {
  examples::parse_args(argc, argv);
  run_sync(main_task);
  return 0;
}
