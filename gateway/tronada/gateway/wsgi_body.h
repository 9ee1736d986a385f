// WSGIBody: a request body on its way from the loop thread (which receives it) to the
// worker thread running the app (which reads it through wsgi.input).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace tronada {

/// The body cannot be read any more: the client went away, or sent nothing for too long.
class WSGIBodyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A bounded, thread-safe byte pipe: the loop pushes pieces as they arrive, one worker
/// thread reads with file semantics. Readers block (the worker, never the loop) until
/// enough bytes or the end arrive. Once more than `high_water` bytes wait unread, push()
/// says so, and the on_drained callback (run on the reader's thread) fires when the
/// reader brought it below half of that, so that the loop can pause and resume reading
/// the socket instead of buffering a whole upload.
///
/// Lifetime: shared (shared_ptr) by the loop-side request and the Python input object,
/// which the app may keep after the request ended.
class WSGIBody {
 public:
  explicit WSGIBody(std::size_t high_water = 1024 * 1024,
                    std::chrono::seconds read_timeout = std::chrono::seconds(300));

  // --- loop side ---
  /// Appends a piece; returns true if the unread bytes now exceed the high-water mark.
  bool push(std::string_view chunk);
  /// The whole body arrived.
  void end();
  /// The client went away: blocked and later reads throw WSGIBodyError.
  void abort();
  /// Runs (on the reader's thread, without the lock) when a reader drains a full buffer.
  void set_on_drained(std::function<void()> cb);

  // --- reader side (one thread at a time) ---
  /// Up to `n` bytes (all remaining if n < 0), fewer only at the end of the body. With
  /// `block` false, returns nullopt instead of waiting.
  std::optional<std::string> read(std::ptrdiff_t n, bool block);
  /// One line including its '\n', at most `limit` bytes (no limit if < 0); the rest of
  /// the body if it has no newline. nullopt as for read().
  std::optional<std::string> readline(std::ptrdiff_t limit, bool block);

  std::size_t buffered() const;
  bool at_end() const;

 private:
  // Waits until `ready()` or end/abort; throws on abort or timeout. Needs `lock` held.
  template <typename Ready>
  bool wait(std::unique_lock<std::mutex>& lock, bool block, Ready ready);
  std::string take(std::size_t n);  // needs the lock; notes a drained buffer

  const std::size_t high_water_;
  const std::chrono::seconds read_timeout_;
  mutable std::mutex mutex_;
  std::condition_variable readable_;
  std::string buffer_;
  std::size_t head_ = 0;  // bytes of buffer_ already read
  bool ended_ = false;
  bool aborted_ = false;
  bool over_high_water_ = false;
  bool drained_pending_ = false;
  std::function<void()> on_drained_;
};

}  // namespace tronada
