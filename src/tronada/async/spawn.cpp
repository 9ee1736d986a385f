#include "tronada/async/spawn.h"

#include <string>

#include "tronada/base/log.h"

namespace tronada {

namespace {
detail::DetachedCoroutine drive_logged(Task<void> task, const char* context) {
  try {
    co_await std::move(task);
  } catch (const std::exception& e) {
    log::error("async", std::string("exception in ") + context + ": " + e.what());
  } catch (...) {
    log::error("async", std::string("unknown exception in ") + context);
  }
}
}  // namespace

void spawn_logged(Task<void> task, const char* context) { drive_logged(std::move(task), context); }

}  // namespace tronada
