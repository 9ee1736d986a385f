// WebSocketConnection: runs the WebSocket protocol on an IOStream for either end. It
// feeds the frame codec, answers pings, keeps the connection alive with pings of its
// own, and carries out the close handshake with a timeout. WebSocketHandler (server)
// and websocket_connect (client) are thin layers over it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "tronada/async/future.h"
#include "tronada/loop/io_loop.h"
#include "tronada/net/iostream.h"
#include "tronada/websocket/frame_codec.h"
#include "tronada/websocket/permessage_deflate.h"

namespace tronada {

/// Raised by writes on a WebSocket that is closing or closed (Tornado's
/// WebSocketClosedError).
class WebSocketClosedError : public std::runtime_error {
 public:
  WebSocketClosedError() : std::runtime_error("WebSocket closed") {}
};

namespace ws {

/// Settings of one WebSocket connection. Durations of zero disable.
struct ConnectionOptions {
  Role role = Role::kServer;
  /// Largest message accepted, after decompression; bigger ones close with 1009.
  std::size_t max_message_size = 10 * 1024 * 1024;
  /// Send a ping this often; with ping_timeout, close if no pong (or any frame) arrives
  /// within that long after a ping.
  Duration ping_interval{};
  Duration ping_timeout{};
  /// How long to wait for the peer's close frame (or, for a client, the server's TCP
  /// close) after ours before dropping the connection.
  Duration close_timeout = std::chrono::seconds(5);
  /// Negotiated permessage-deflate parameters; unset: no compression.
  std::optional<DeflateParams> deflate;
  DeflateOptions deflate_options;
};

/// What the connection reports. Each runs on the loop, never re-entered; none may be
/// empty except on_ping/on_pong.
struct ConnectionCallbacks {
  std::function<void(std::string&& message, bool binary)> on_message;
  std::function<void(std::string_view data)> on_ping;
  std::function<void(std::string_view data)> on_pong;
  /// Once, when the stream has closed: the peer's close code and reason (1005 when its
  /// close frame had no code, 1006 when no close frame came at all).
  std::function<void(std::uint16_t code, std::string reason)> on_close;
  /// What the callbacks use, kept alive with them: released (with them) once on_close
  /// returned. WebSocketHandler puts itself here, so that it lives as long as the socket
  /// without a coroutine waiting for the close.
  std::shared_ptr<void> owner;
};

/// One WebSocket over a stream that the opening handshake already switched.
///
/// Backpressure: write_message() queues the frame and returns a future that completes
/// once the stream's write queue is below its high-water mark. Inbound flow control is
/// pause_reading()/resume_reading() (the client pauses while its read queue is full).
///
/// Lifetime: held by shared_ptr; the stream's close callback holds one reference from
/// start() until the stream closes, so the connection lives as long as its socket
/// whatever its users do. Timers hold only weak references. Callbacks are cleared once
/// on_close ran, which breaks cycles through the user's objects.
class WebSocketConnection : public std::enable_shared_from_this<WebSocketConnection> {
 public:
  static std::shared_ptr<WebSocketConnection> create(std::shared_ptr<IOStream> stream,
                                                     ConnectionOptions options,
                                                     ConnectionCallbacks callbacks);
  ~WebSocketConnection();

  /// Starts reading; `leftover` is input that arrived with the handshake.
  void start(std::string leftover = {});

  /// Server-side connections of this process that started and are not closed yet (the
  /// connections gauge of the metrics).
  static std::size_t open_server_connections();
  /// Starts the close handshake on every one of them with `code` (a drain sends 1001,
  /// going away): a server that stops does not leave WebSockets hanging.
  static void close_all_server(std::uint16_t code, std::string_view reason = {});

  /// Sends a whole message. Throws WebSocketClosedError once closing.
  Future<void> write_message(std::string_view message, bool binary = false);
  /// Sends a ping (payload up to 125 bytes; std::invalid_argument beyond).
  void ping(std::string_view data = {});
  /// Starts the close handshake: sends a close frame (code 0 sends none), then waits
  /// at most close_timeout for the peer's. Idempotent.
  void close(std::uint16_t code = close_code::kNormal, std::string_view reason = {});
  /// Drops the connection without a handshake.
  void abort();

  void pause_reading();
  void resume_reading();

  /// True once a close frame was sent or received, or the stream closed.
  bool closing() const { return close_sent_ || close_received_ || stream_closed_; }
  bool closed() const { return stream_closed_; }
  /// Completes once the stream closed and on_close ran.
  Future<void> wait_closed() { return closed_promise_.get_future(); }
  IOStream& stream() { return *stream_; }

 private:
  WebSocketConnection(std::shared_ptr<IOStream> stream, ConnectionOptions options,
                      ConnectionCallbacks callbacks);
  void on_data(std::string_view data);
  void handle(Event& e);
  void fail(std::uint16_t code, const std::string& reason);
  void send(std::string frame);
  void close_after_flush();
  void on_stream_closed();
  void schedule_ping();
  void arm_close_timeout();

  std::shared_ptr<IOStream> stream_;
  ConnectionOptions options_;
  ConnectionCallbacks callbacks_;
  std::unique_ptr<PerMessageDeflate> deflate_;
  FrameParser parser_;
  FrameWriter writer_;
  std::vector<Event> events_;
  Promise<void> closed_promise_;
  TimeoutHandle ping_timer_;
  TimeoutHandle pong_timer_;
  TimeoutHandle close_timer_;

  std::uint16_t peer_code_ = close_code::kAbnormal;
  std::string peer_reason_;
  bool close_sent_ = false;
  bool close_received_ = false;
  bool stream_closed_ = false;
  bool awaiting_pong_ = false;
  bool dispatching_ = false;
};

}  // namespace ws
}  // namespace tronada
