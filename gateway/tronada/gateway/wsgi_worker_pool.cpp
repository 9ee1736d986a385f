#include "tronada/gateway/wsgi_worker_pool.h"

#include "tronada/base/log.h"

namespace tronada {

WSGIWorkerPool::WSGIWorkerPool(int threads, std::size_t max_queue,
                               std::function<void(const std::function<void()>&)> thread_main)
    : max_queue_(max_queue) {
  if (threads < 1) threads = 1;
  threads_.reserve(static_cast<std::size_t>(threads));
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this, thread_main] { thread_main([this] { run(); }); });
  }
}

WSGIWorkerPool::~WSGIWorkerPool() {
  stop();
}

bool WSGIWorkerPool::submit(Job job) {
  bool wake;
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= max_queue_) return false;
    queue_.push_back(Entry{std::move(job), Clock::now()});
    wake = idle_ > 0;
  }
  if (wake) ready_.notify_one();
  return true;
}

void WSGIWorkerPool::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  ready_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

std::size_t WSGIWorkerPool::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void WSGIWorkerPool::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    while (queue_.empty() && !stopping_) {
      ++idle_;
      ready_.wait(lock);
      --idle_;
    }
    if (queue_.empty()) return;  // stopping, and everything queued ran
    Entry e = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    Duration waited = Clock::now() - e.queued_at;
    try {
      e.job(waited);
    } catch (const std::exception& ex) {
      log::error("wsgi", std::string("worker job failed: ") + ex.what());
    }
    e.job = nullptr;
    lock.lock();
  }
}

}  // namespace tronada
