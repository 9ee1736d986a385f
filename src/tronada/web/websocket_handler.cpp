#include "tronada/web/websocket_handler.h"

#include "tronada/base/log.h"
#include "tronada/websocket/handshake.h"

namespace tronada {

WebSocketHandler::WebSocketHandler() = default;
WebSocketHandler::~WebSocketHandler() = default;

Task<void> WebSocketHandler::open() {
  co_return;
}

bool WebSocketHandler::check_origin(std::string_view origin) {
  // Compare the origin's authority (scheme://host[:port]) with Host, as Tornado does.
  auto scheme = origin.find("://");
  if (scheme != std::string_view::npos) origin.remove_prefix(scheme + 3);
  origin = origin.substr(0, origin.find('/'));
  auto host = request().headers.get("Host");
  return host && detail::iequals(origin, detail::trim_ows(*host));
}

std::optional<std::string> WebSocketHandler::select_subprotocol(
    const std::vector<std::string>& offered) {
  (void)offered;
  return std::nullopt;
}

void WebSocketHandler::reject(int status, std::string_view message) {
  set_status(status);
  set_header("Content-Type", "text/plain; charset=utf-8");
  finish(message);
}

Task<void> WebSocketHandler::get() {
  const HTTPServerRequest& req = request();
  const HTTPHeaders& h = req.headers;
  // Tornado's checks, in Tornado's order.
  if (!ws::header_has_token(h, "Upgrade", "websocket")) {
    reject(400, "Can \"Upgrade\" only to \"WebSocket\".");
    co_return;
  }
  if (!ws::header_has_token(h, "Connection", "upgrade")) {
    reject(400, "\"Connection\" must be \"Upgrade\".");
    co_return;
  }
  if (req.version != "HTTP/1.1") {
    reject(400, "WebSocket needs HTTP/1.1");
    co_return;
  }
  auto origin = h.get("Origin");
  if (!origin) origin = h.get("Sec-Websocket-Origin");
  if (origin && !check_origin(*origin)) {
    reject(403, "Cross origin websockets not allowed");
    co_return;
  }
  auto version = h.get("Sec-WebSocket-Version");
  if (!version || detail::trim_ows(*version) != "13") {
    // RFC 9110 section 15.5.22: a 426 names the protocol to switch to in Upgrade (and so,
    // section 7.8, in Connection); RFC 6455 section 4.4: and the versions we speak.
    set_header("Upgrade", "websocket");
    set_header("Connection", "Upgrade");
    set_header("Sec-WebSocket-Version", "13");
    reject(426, "Upgrade Required");
    co_return;
  }
  auto key = h.get("Sec-WebSocket-Key");
  if (!key || !ws::is_valid_client_key(detail::trim_ows(*key))) {
    reject(400, "Missing or invalid Sec-WebSocket-Key");
    co_return;
  }

  HTTPHeaders response;
  response.add("Upgrade", "websocket");
  response.add("Connection", "Upgrade");
  response.add("Sec-WebSocket-Accept", ws::accept_key(detail::trim_ows(*key)));
  if (auto protocols = h.get_joined("Sec-WebSocket-Protocol")) {
    std::vector<std::string> offered;
    std::string_view rest = *protocols;
    while (!rest.empty()) {
      auto comma = rest.find(',');
      std::string_view item = detail::trim_ows(rest.substr(0, comma));
      if (!item.empty()) offered.emplace_back(item);
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    if (auto chosen = select_subprotocol(offered)) {
      bool was_offered = false;
      for (const auto& o : offered) was_offered = was_offered || o == *chosen;
      if (!was_offered) throw std::logic_error("select_subprotocol chose one not offered");
      subprotocol_ = *chosen;
      response.add("Sec-WebSocket-Protocol", subprotocol_);
    }
  }
  ws::ConnectionOptions options;
  options.role = ws::Role::kServer;
  options.max_message_size = max_message_size();
  options.ping_interval = ping_interval();
  options.ping_timeout = ping_timeout();
  if (options.ping_interval > Duration::zero() && options.ping_timeout <= Duration::zero()) {
    options.ping_timeout = std::max<Duration>(3 * options.ping_interval, std::chrono::seconds(30));
  }
  options.close_timeout = close_timeout();
  if (auto compression = get_compression_options()) {
    if (auto ext = h.get_joined("Sec-WebSocket-Extensions")) {
      if (auto offers = ws::parse_extensions(*ext)) {
        std::string answer;
        if (auto params = ws::negotiate_deflate(*offers, *compression, answer)) {
          options.deflate = *params;
          options.deflate_options = *compression;
          response.add("Sec-WebSocket-Extensions", answer);
        }
      }
    }
  }

  // The WebSocket will own the handler through this; without it (get() called other than
  // from the application's request task) nothing would keep the handler alive.
  std::shared_ptr<RequestHandler> self = shared_self();
  if (!self) throw std::logic_error("WebSocketHandler::get() outside its request's task");
  HTTPConnection& conn = *request().connection;
  conn.write_headers(101, response);
  DetachedConnection detached = conn.detach();
  // Accounted (on_finish, access log, metrics) now that the handshake is done, as
  // Tornado's finish() in its accept does; the session's length is not the request's.
  complete_elsewhere(101, 0);

  // The connection's pointer to our events owns the handler: the handler lives until
  // on_close returned, when the connection lets its delegate go.
  std::shared_ptr<ws::ConnectionDelegate> delegate(std::move(self), &events_);
  ws_ = ws::WebSocketConnection::create(std::move(detached.stream), std::move(options),
                                        std::move(delegate));
  try {
    co_await open();
  } catch (const std::exception& e) {
    log::error("websocket", std::string("uncaught exception in open(): ") + e.what());
    ws_->close(ws::close_code::kInternalError, "internal error");
  }
  // An idle WebSocket should hold no more than the protocol needs: the request's fields
  // and the HTTP/1 connection go (request() keeps its line, addresses and host), and so
  // does this coroutine, and with it the request's task.
  release_exchange(keep_request_headers());
  ws_->start(std::move(detached.leftover));
}

Future<void> WebSocketHandler::write_message(std::string_view message, bool binary) {
  if (!ws_) throw WebSocketClosedError();
  return ws_->write_message(message, binary);
}

void WebSocketHandler::ping(std::string_view data) {
  if (!ws_) throw WebSocketClosedError();
  ws_->ping(data);
}

void WebSocketHandler::close(std::uint16_t code, std::string_view reason) {
  if (ws_) ws_->close(code, reason);
}

}  // namespace tronada
