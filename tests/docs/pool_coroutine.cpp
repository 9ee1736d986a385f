// Context for docs blocks of statements on the upstream ConnectionPool inside a coroutine.
#include <chrono>

#include "tronada/async/task.h"
#include "tronada/http/connection_pool.h"
using namespace tronada;
using namespace std::chrono_literals;

Task<void> example(std::chrono::milliseconds connect_timeout) {
@example@
}
