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
/// thread reads with file semantics. Once more than `high_water` bytes wait unread,
/// push() says so (the loop then pauses reading the socket), and the on_drained callback
/// (run on the reader's thread) fires when the reader brought them below half of that,
/// so that the loop resumes. The pipe thus holds at most about `high_water` bytes
/// whatever the body's size.
///
/// A read that asks for more than is buffered (read(n) with n past the high-water mark,
/// read() of the whole body, a line longer than the buffer) collects in steps: it takes
/// what is there, which lets the loop read on, and waits for the rest. Waiting for the
/// whole request to be buffered instead would wait forever once the socket is paused.
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
  /// Exactly `n` bytes (all remaining if n < 0), fewer only at the end of the body. With
  /// `block` false, returns nullopt (and consumes nothing) unless the buffer can answer
  /// now. Throws WSGIBodyError if the client went away or sent nothing for the read
  /// timeout while this waited.
  std::optional<std::string> read(std::ptrdiff_t n, bool block);
  /// One line including its '\n', or the first `limit` bytes of it (no limit if < 0);
  /// the rest of the body if it has no newline. nullopt and errors as for read().
  std::optional<std::string> readline(std::ptrdiff_t limit, bool block);

  std::size_t buffered() const;
  bool at_end() const;

 private:
  std::size_t unread() const { return buffer_.size() - head_; }
  // Waits (the lock held) until bytes or the end arrive; throws on abort or timeout.
  void wait_for_data(std::unique_lock<std::mutex>& lock);
  // Moves the next `n` unread bytes to the end of `out`. Needs the lock; notes a drained
  // buffer for notify_drained().
  void take(std::size_t n, std::string& out);
  // Runs on_drained if take() noted a drained buffer, with the lock released.
  void notify_drained(std::unique_lock<std::mutex>& lock);

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
