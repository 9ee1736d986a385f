// WSGIExchange: one request between the loop thread and the worker thread running the app.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "tronada/gateway/wsgi_body.h"
#include "tronada/gateway/wsgi_response_sink.h"
#include "tronada/http/http_server_request.h"
#include "tronada/loop/io_loop.h"

namespace tronada {

/// The response side of a WSGI call as the worker sees it (a WSGIResponseSink), delivered
/// on the loop thread through IOLoop::add_callback, and the request body flowing the
/// other way through `body()`.
///
/// Threads: the worker calls the sink methods; everything else runs on the loop. The
/// worker never touches the request or its connection: pieces travel in callbacks. A
/// streamed piece waits (the worker, not the loop) until the connection drained below a
/// high-water mark. The final piece is not posted by finish(): complete() posts it and
/// with it the worker's own reference, so the last reference always drops on the loop
/// thread, where the connection may be released.
///
/// Lifetime: shared by the handler (loop), the job (worker) and callbacks in flight.
class WSGIExchange : public WSGIResponseSink, public std::enable_shared_from_this<WSGIExchange> {
 public:
  /// `on_done(status)` runs on the loop once the response ended (or was abandoned).
  static std::shared_ptr<WSGIExchange> create(IOLoop& loop,
                                              std::shared_ptr<HTTPServerRequest> request,
                                              std::size_t body_high_water,
                                              std::function<void(int status)> on_done);
  WSGIExchange(IOLoop& loop, std::shared_ptr<HTTPServerRequest> request,
               std::size_t body_high_water, std::function<void(int status)> on_done);
  ~WSGIExchange() override;

  // --- loop side ---
  const std::shared_ptr<WSGIBody>& body() const { return body_; }
  /// A piece of the request body; pauses reading the socket while the app lags behind.
  void body_received(std::string_view chunk);
  void body_ended() { body_->end(); }
  /// The client went away: unblocks the worker's reads and writes.
  void connection_closed();
  bool done() const { return done_; }
  /// Response body bytes handed to the connection (loop thread), for the access log.
  std::uint64_t bytes_sent() const { return bytes_sent_; }
  /// The owner of on_done is going away before the response ended.
  void forget_on_done() { on_done_ = nullptr; }
  /// Answers without running the app (a full queue: 503).
  void reject(int status, std::string_view retry_after);

  /// Worker side, at the very end of the job: hands the final piece and `self` (the
  /// worker's reference) to the loop in one callback.
  static void complete(std::shared_ptr<WSGIExchange> self);

  // --- WSGIResponseSink (worker side) ---
  bool send(const WSGIResponseHead* head, std::string data) override;
  void finish(const WSGIResponseHead* head, std::string data) override;
  void abort() override;
  bool client_gone() const override;

 private:
  void deliver(std::optional<WSGIResponseHead> head, std::string data, std::size_t credit);
  void deliver_final();
  void release_credit(std::size_t n);
  void end(int status);

  IOLoop& loop_;
  std::shared_ptr<HTTPServerRequest> request_;
  std::shared_ptr<WSGIBody> body_;
  std::function<void(int)> on_done_;

  // Loop-only state.
  bool paused_ = false;
  bool done_ = false;
  int status_ = 0;
  std::uint64_t bytes_sent_ = 0;  // loop thread only

  // Shared with the worker.
  mutable std::mutex mutex_;
  std::condition_variable credit_;
  std::size_t in_flight_ = 0;
  bool gone_ = false;
  enum class Ending : std::uint8_t { none, finished, aborted } ending_ = Ending::none;
  std::optional<WSGIResponseHead> final_head_;
  std::string final_data_;
};

}  // namespace tronada
