// Context for docs blocks of statements on the PostgreSQL pool inside a coroutine.
#include <cstdint>
#include <optional>
#include <string>

#include "tronada/db/pg_pool.h"
using namespace tronada;

void use(std::int64_t, std::optional<std::string>) {}

Task<void> example(std::string email, std::int64_t amount, std::int64_t from, std::int64_t to) {
@example@
}
