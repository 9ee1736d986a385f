// Context for docs blocks of statements that set up a native app inside main().
#include <chrono>
#include <memory>

#include "tronada/web/application.h"
#include "tronada/web/static_file_handler.h"
#include "tronada/web/static_files.h"
using namespace tronada;

int main() {
@example@
}
