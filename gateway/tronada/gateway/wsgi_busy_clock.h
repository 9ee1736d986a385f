// The per-thread "busy since" clock a supervised worker publishes for its master.
#pragma once

namespace tronada {

class WorkerStatus;

/// Binds the calling worker thread to clock `thread` of `status` (nullptr: none). The
/// clock runs while the thread runs an app call, so a master can tell a stuck app from a
/// busy one; it stops while the thread waits on its client (ClientWait), since a slow
/// upload or download is no fault of the app.
void bind_busy_clock(WorkerStatus* status, int thread);

/// Around one app call on a worker thread: starts the clock, stops it and counts the
/// request at the end. No-op without a bound clock.
class BusyClock {
 public:
  BusyClock();
  ~BusyClock();
  BusyClock(const BusyClock&) = delete;
  BusyClock& operator=(const BusyClock&) = delete;
};

/// Around a wait on the client (body bytes, response credit): the clock stops and starts
/// again afterwards, so --timeout counts from the call's start or its last such wait.
class ClientWait {
 public:
  ClientWait();
  ~ClientWait();
  ClientWait(const ClientWait&) = delete;
  ClientWait& operator=(const ClientWait&) = delete;
};

}  // namespace tronada
