// Context for docs blocks of statements on the Redis client inside a coroutine.
#include <string>

#include "tronada/async/task.h"
#include "tronada/db/redis_client.h"
#include "tronada/db/redis_subscriber.h"
using namespace tronada;

Task<void> example() {
@example@
}
