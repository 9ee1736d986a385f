// Context for docs blocks that define a handler using db::BlockingPool over SQLite.
#include <memory>
#include <string>
#include <vector>

#include "tronada/db/blocking_pool.h"
#include "tronada/db/sqlite_database.h"
#include "tronada/web/request_handler.h"
using namespace tronada;

@example@
