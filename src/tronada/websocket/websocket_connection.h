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

/// What the connection reports, each on the loop, never re-entered.
class ConnectionDelegate {
 public:
  virtual ~ConnectionDelegate() = default;
  virtual void on_message(std::string&& message, bool binary) = 0;
  /// A message whose bytes are the connection's only during the call (one that came
  /// whole in one read): the default copies it for on_message; a delegate that needs
  /// no copy (WebSocketHandler's on_message takes a view) overrides it.
  virtual void on_message_view(std::string_view message, bool binary) {
    on_message(std::string(message), binary);
  }
  virtual void on_ping(std::string_view data) { (void)data; }
  virtual void on_pong(std::string_view data) { (void)data; }
  /// Once, when the stream has closed: the peer's close code and reason (1005 when its
  /// close frame had no code, 1006 when no close frame came at all).
  virtual void on_close(std::uint16_t code, std::string reason) = 0;
};

/// One WebSocket over a stream that the opening handshake already switched.
///
/// Backpressure: write_message() queues the frame and returns a future that completes
/// once the stream's write queue is below its high-water mark. Inbound flow control is
/// pause_reading()/resume_reading() (the client pauses while its read queue is full).
///
/// Lifetime: held by shared_ptr; the connection holds itself (self_) from create()
/// until its stream's close callback ran, so it lives as long as its socket whatever its
/// users do. Timers hold only weak references. The delegate is held (the shared_ptr
/// given, which may own more than the delegate: WebSocketHandler passes one that owns
/// the handler) until on_close returned, which breaks cycles through the user's objects.
class WebSocketConnection : public std::enable_shared_from_this<WebSocketConnection> {
  struct Token {};  // create() only; public for make_shared's sake

 public:
  WebSocketConnection(Token, std::shared_ptr<IOStream> stream, ConnectionOptions options,
                      std::shared_ptr<ConnectionDelegate> delegate);
  static std::shared_ptr<WebSocketConnection> create(std::shared_ptr<IOStream> stream,
                                                     ConnectionOptions options,
                                                     std::shared_ptr<ConnectionDelegate> delegate);
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
  Future<void> wait_closed();
  IOStream& stream() { return *stream_; }

 private:
  void on_data(std::string_view data);
  void handle(Event& e);
  void fail(std::uint16_t code, const std::string& reason);
  void send(std::string frame);
  void close_after_flush();
  void on_stream_closed();
  void schedule_ping();
  void arm_close_timeout();
  void link_open_server();
  void unlink_open_server();

  // Ourselves until the stream's close callback ran (see Lifetime): a member rather
  // than the callback's capture, which std::function would keep on the heap.
  std::shared_ptr<WebSocketConnection> self_;
  std::shared_ptr<IOStream> stream_;
  std::shared_ptr<ConnectionDelegate> delegate_;
  std::unique_ptr<PerMessageDeflate> deflate_;
  FrameParser parser_;
  FrameWriter writer_;
  // Only what is needed after construction of the options (the parser keeps the size
  // limit, deflate_ the compression settings): an idle WebSocket holds no more.
  Duration ping_interval_;
  Duration ping_timeout_;
  Duration close_timeout_;
  // Made by the first wait_closed(): the server side never asks, and a promise is a heap
  // block per connection.
  std::unique_ptr<Promise<void>> closed_promise_;
  TimeoutHandle ping_timer_;
  TimeoutHandle pong_timer_;
  TimeoutHandle close_timer_;
  // The list of open server connections (close_all_server), intrusive: no node to
  // allocate per connection.
  WebSocketConnection* prev_open_ = nullptr;
  WebSocketConnection* next_open_ = nullptr;

  std::string peer_reason_;
  std::uint16_t peer_code_ = close_code::kAbnormal;
  Role role_;
  bool close_sent_ = false;
  bool close_received_ = false;
  bool stream_closed_ = false;
  bool awaiting_pong_ = false;
  bool dispatching_ = false;
  bool open_listed_ = false;
  bool close_reported_ = false;
};

}  // namespace ws
}  // namespace tronada
