// websocket_connect: the WebSocket client (Tornado's tornado.websocket.websocket_connect),
// on TCPClient, for ws:// and wss:// URLs.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "tronada/async/future.h"
#include "tronada/async/task.h"
#include "tronada/http/http_headers.h"
#include "tronada/net/ssl_context.h"
#include "tronada/websocket/websocket_connection.h"

namespace tronada {

/// The server refused the opening handshake or answered it wrongly. `status` is the
/// HTTP status it sent (0 if the answer was not valid HTTP or not a valid upgrade).
class WebSocketHandshakeError : public std::runtime_error {
 public:
  WebSocketHandshakeError(int status, const std::string& what)
      : std::runtime_error(what), status(status) {}
  int status;
};

struct WebSocketClientOptions {
  /// For the TCP (and TLS) connect, and then again for the handshake's answer.
  Duration connect_timeout = std::chrono::seconds(20);
  /// Extra request headers (Origin, Cookie, Authorization...).
  HTTPHeaders headers;
  /// Offered in Sec-WebSocket-Protocol, in order of preference.
  std::vector<std::string> subprotocols;
  /// permessage-deflate to offer; nullopt offers none.
  std::optional<ws::DeflateOptions> compression = ws::DeflateOptions{};
  std::size_t max_message_size = 10 * 1024 * 1024;
  Duration ping_interval{};
  Duration ping_timeout{};
  /// For wss://; null uses a default client context (system CAs, hostname checked).
  std::shared_ptr<SSLContext> ssl;
  /// Messages received but not yet read; beyond this the socket is no longer read (the
  /// server is held back by TCP flow control) until read_message() catches up.
  std::size_t max_queued_messages = 64;
};

struct WebSocketMessage {
  std::string data;
  bool binary = false;
};

/// An open client WebSocket. Read with read_message(), write with write_message().
///
/// Lifetime: held by shared_ptr. Dropping the last reference starts the close
/// handshake; the socket then finishes closing on its own.
class WebSocketClientConnection : public std::enable_shared_from_this<WebSocketClientConnection> {
 public:
  ~WebSocketClientConnection();

  /// The next message, or nullopt once the connection closed (close_code() tells how).
  /// One read at a time.
  Task<std::optional<WebSocketMessage>> read_message();
  /// Sends a message; the future completes once the output queue is below its
  /// high-water mark. Throws WebSocketClosedError once closing.
  Future<void> write_message(std::string_view message, bool binary = false);
  void ping(std::string_view data = {});
  void close(std::uint16_t code = ws::close_code::kNormal, std::string_view reason = {});
  /// The server's close code and reason, once closed (1006: no close frame).
  std::uint16_t close_code() const { return close_code_; }
  const std::string& close_reason() const { return close_reason_; }
  bool closed() const { return closed_; }
  const std::string& selected_subprotocol() const { return subprotocol_; }
  /// The negotiated Sec-WebSocket-Extensions (empty if none).
  const std::string& extensions() const { return extensions_; }
  /// The server's pongs, for tests and keepalive logic.
  std::function<void(std::string_view)> on_pong;

 private:
  friend Task<std::shared_ptr<WebSocketClientConnection>> websocket_connect_task(
      std::string url, WebSocketClientOptions options);
  WebSocketClientConnection() = default;
  void deliver(WebSocketMessage message);
  void finish(std::uint16_t code, std::string reason);

  std::shared_ptr<ws::WebSocketConnection> ws_;
  std::deque<WebSocketMessage> queue_;
  std::optional<Promise<std::optional<WebSocketMessage>>> reader_;
  std::size_t max_queued_ = 64;
  bool paused_ = false;
  bool closed_ = false;
  std::uint16_t close_code_ = 0;
  std::string close_reason_;
  std::string subprotocol_;
  std::string extensions_;
};

/// Connects to a ws:// or wss:// URL and completes the opening handshake.
///
/// Errors: std::invalid_argument for a malformed URL or another scheme; what
/// TCPClient::connect raises (TimeoutError, std::system_error, SSLHandshakeError);
/// TimeoutError when the handshake's answer takes longer than connect_timeout;
/// WebSocketHandshakeError when the server refuses or answers wrongly (bad
/// Sec-WebSocket-Accept, an extension or subprotocol we did not offer);
/// StreamClosedError when the server closes during the handshake.
Task<std::shared_ptr<WebSocketClientConnection>> websocket_connect(
    std::string url, WebSocketClientOptions options = {});

}  // namespace tronada
