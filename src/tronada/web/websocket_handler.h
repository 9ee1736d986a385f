// WebSocketHandler: a RequestHandler that accepts the WebSocket opening handshake on GET
// and then speaks the protocol (RFC 6455, permessage-deflate of RFC 7692), as Tornado's
// tornado.websocket.WebSocketHandler.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tronada/web/request_handler.h"
#include "tronada/websocket/websocket_connection.h"

namespace tronada {

/// Subclass it and override open / on_message / on_close; route it like any handler.
///
/// The handshake (get(), final): 400 for a request that is not a WebSocket upgrade
/// (Upgrade, Connection, Sec-WebSocket-Key missing or invalid, not HTTP/1.1), 403 when
/// check_origin refuses the Origin, 426 with "Upgrade: websocket" and
/// "Sec-WebSocket-Version: 13" for another protocol version or none. Then select_subprotocol picks
/// from Sec-WebSocket-Protocol and get_compression_options enables permessage-deflate, the 101 goes
/// out and the handler takes the connection over from HTTP.
///
/// Order of calls: open (awaited; no message is read before it completes), then
/// on_message / on_ping / on_pong as frames arrive, then on_close exactly once. The
/// request counts as finished once the 101 went out: on_finish and the access log run
/// then, as in Tornado, not when the session ends.
///
/// Lifetime: the WebSocket owns the handler from the 101 until on_close returned, so its
/// own callbacks may use `this` freely; get() returns once open() did and no coroutine
/// waits for the close. Code outside them (a timer, another connection's on_message) may
/// hold a plain pointer only between open() and on_close, e.g. in a registry that open()
/// adds to and on_close removes from, as examples/06_websocket.cpp does; check closed()
/// before writing. The detached connection is no longer the HTTP server's: stopping the
/// server does not close open WebSockets (close them from the application).
///
/// request() after open(): its header fields and body are released once open() returned
/// (an idle WebSocket keeps only what the protocol needs); the request line (method, uri,
/// path, query, version), remote_ip/remote_port, protocol, host and start_time stay.
/// Read in open() whatever header or cookie later callbacks need, or override
/// keep_request_headers() to keep the fields, as Tornado keeps its whole request.
class WebSocketHandler : public RequestHandler {
 public:
  WebSocketHandler();
  ~WebSocketHandler() override;

  // --- what subclasses override ---
  /// The connection is open; may write messages.
  virtual Task<void> open();
  /// A whole message; `binary` for binary frames, otherwise text (valid UTF-8).
  virtual void on_message(std::string_view message, bool binary) = 0;
  /// True keeps request()'s header fields (and so its cookies) after open(), as Tornado
  /// keeps its request, for callbacks that read them later; each open WebSocket then
  /// holds them (a browser sends one to two kilobytes).
  virtual bool keep_request_headers() const { return false; }
  virtual void on_ping(std::string_view data) { (void)data; }
  virtual void on_pong(std::string_view data) { (void)data; }
  /// The connection closed: `code` and `reason` are the peer's (1005 if its close frame
  /// had no code, 1006 if it sent none).
  virtual void on_close(std::uint16_t code, std::string_view reason) {
    (void)code;
    (void)reason;
  }
  /// True to accept a handshake from `origin` (the Origin header). Same-origin only by
  /// default, as Tornado: the origin's host[:port] must equal the Host header.
  virtual bool check_origin(std::string_view origin);
  /// Picks one of the client's subprotocols (Sec-WebSocket-Protocol), or none.
  virtual std::optional<std::string> select_subprotocol(const std::vector<std::string>& offered);
  /// permessage-deflate settings; nullopt (the default) disables compression.
  virtual std::optional<ws::DeflateOptions> get_compression_options() { return std::nullopt; }
  /// Largest message accepted (default 10 MiB); larger ones close with 1009.
  virtual std::size_t max_message_size() const { return 10 * 1024 * 1024; }
  /// Keepalive pings every ping_interval (0: none); without an answer within
  /// ping_timeout (0: max(3 intervals, 30 s), as Tornado) the connection is dropped.
  virtual Duration ping_interval() const { return Duration::zero(); }
  virtual Duration ping_timeout() const { return Duration::zero(); }
  /// How long close() waits for the client's close frame.
  virtual Duration close_timeout() const { return std::chrono::seconds(5); }

  // --- what they call ---
  /// Sends a message. The future completes once the queued output is below the
  /// stream's high-water mark: co_await it to keep memory bounded for a slow client.
  /// Throws WebSocketClosedError once the connection is closing.
  Future<void> write_message(std::string_view message, bool binary = false);
  void ping(std::string_view data = {});
  /// Starts the close handshake (code 0: a close frame without code).
  void close(std::uint16_t code = ws::close_code::kNormal, std::string_view reason = {});
  /// True once closing started or the connection is gone (writes would throw).
  bool closed() const { return !ws_ || ws_->closing(); }
  const std::string& selected_subprotocol() const { return subprotocol_; }

  Task<void> get() final;

 private:
  // Forwards the connection's events to the handler's virtuals; a member, so that the
  // connection's shared_ptr to it can own the handler (see Lifetime).
  struct Events final : ws::ConnectionDelegate {
    explicit Events(WebSocketHandler& h) : handler(h) {}
    void on_message(std::string&& message, bool binary) override {
      handler.on_message(message, binary);
    }
    void on_message_view(std::string_view message, bool binary) override {
      handler.on_message(message, binary);
    }
    void on_ping(std::string_view data) override { handler.on_ping(data); }
    void on_pong(std::string_view data) override { handler.on_pong(data); }
    void on_close(std::uint16_t code, std::string reason) override {
      handler.on_close(code, reason);
    }
    WebSocketHandler& handler;
  };

  void reject(int status, std::string_view message);
  Events events_{*this};
  std::shared_ptr<ws::WebSocketConnection> ws_;
  std::string subprotocol_;
};

}  // namespace tronada
