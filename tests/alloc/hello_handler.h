// The handler the allocation and idle-memory tests serve: the tour's hello world, as
// examples/01_getting_started answers it.
#pragma once

#include "tronada/web/request_handler.h"

namespace alloc_test {

class HelloHandler : public tronada::RequestHandler {
 public:
  tronada::Task<void> get() override {
    set_header("Content-Type", "text/plain");
    write("Hello, world");
    co_return;
  }
};

}  // namespace alloc_test
