// sleep(): a future that completes after a delay (Tornado's gen.sleep).
#pragma once

#include "tronada/async/future.h"

namespace tronada {

/// Completes after `delay` on the current loop. Not cancellable: the timer holds the
/// promise, so an abandoned sleep costs one timer until it fires.
inline Future<void> sleep(Duration delay) {
  IOLoop& loop = IOLoop::current();
  Promise<void> promise(&loop);
  loop.call_later(delay, [promise]() mutable { promise.try_set_result(); });
  return promise.get_future();
}

}  // namespace tronada
