#include "tronada/gateway/wsgi_busy_clock.h"

#include "tronada/net/worker_supervisor.h"

namespace tronada {

namespace {
thread_local WorkerStatus* t_status = nullptr;
thread_local int t_thread = -1;
thread_local bool t_in_call = false;
}  // namespace

void bind_busy_clock(WorkerStatus* status, int thread) {
  t_status = status;
  t_thread = thread;
}

BusyClock::BusyClock() {
  if (!t_status) return;
  t_in_call = true;
  t_status->call_started(t_thread);
}

BusyClock::~BusyClock() {
  if (!t_status) return;
  t_in_call = false;
  t_status->call_ended(t_thread);
}

ClientWait::ClientWait() {
  if (t_status && t_in_call) t_status->pause(t_thread);
}

ClientWait::~ClientWait() {
  if (t_status && t_in_call) t_status->resume(t_thread);
}

}  // namespace tronada
