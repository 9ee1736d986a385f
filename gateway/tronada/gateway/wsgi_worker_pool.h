// WSGIWorkerPool: the threads that run Python, with a bounded queue in front.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "tronada/loop/io_loop.h"

namespace tronada {

/// A fixed set of threads taking jobs from a bounded FIFO. submit() never blocks: a full
/// queue refuses the job, so the caller answers 503 at once instead of letting requests
/// pile up. Each job learns how long it waited.
///
/// Lifetime: stop() (also run by the destructor) lets the threads finish the jobs already
/// queued and joins them; jobs submitted afterwards are refused.
class WSGIWorkerPool {
 public:
  using Job = std::function<void(Duration queued)>;

  /// `thread_main(run)` runs on each thread; it must call `run()`, which returns when the
  /// pool stops: per-thread setup (a Python thread state) goes around it.
  WSGIWorkerPool(int threads, std::size_t max_queue,
                 std::function<void(const std::function<void()>& run)> thread_main);
  ~WSGIWorkerPool();
  WSGIWorkerPool(const WSGIWorkerPool&) = delete;
  WSGIWorkerPool& operator=(const WSGIWorkerPool&) = delete;

  /// Queues `job`; false if the queue is full or the pool stopped.
  bool submit(Job job);
  void stop();
  std::size_t queued() const;
  int threads() const { return static_cast<int>(threads_.size()); }

 private:
  struct Entry {
    Job job;
    TimePoint queued_at;
  };
  void run();

  const std::size_t max_queue_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Entry> queue_;
  int idle_ = 0;  // threads waiting: submit only signals when someone waits
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace tronada
