#include "tronada/websocket/websocket_client.h"

#include <charconv>

#include "tronada/async/with_timeout.h"
#include "tronada/net/tcp_client.h"
#include "tronada/websocket/handshake.h"

namespace tronada {

namespace {

struct WsUrl {
  bool secure = false;
  std::string host;  // without brackets
  int port = 0;
  std::string host_header;
  std::string target;
};

WsUrl parse_ws_url(std::string_view url) {
  WsUrl u;
  if (url.starts_with("ws://")) {
    url.remove_prefix(5);
  } else if (url.starts_with("wss://")) {
    url.remove_prefix(6);
    u.secure = true;
  } else {
    throw std::invalid_argument("websocket_connect: URL must start with ws:// or wss://");
  }
  auto slash = url.find_first_of("/?");
  std::string_view authority = url.substr(0, slash);
  u.target = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
  if (u.target[0] == '?') u.target.insert(0, "/");
  if (authority.find('@') != std::string_view::npos) {
    throw std::invalid_argument("websocket_connect: user info in URLs is not supported");
  }
  u.host_header = std::string(authority);
  std::string_view port;
  if (!authority.empty() && authority[0] == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) throw std::invalid_argument("websocket_connect: bad host");
    u.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') throw std::invalid_argument("websocket_connect: bad host");
      port = after.substr(1);
    }
  } else {
    auto colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (u.host.empty()) throw std::invalid_argument("websocket_connect: URL without a host");
  u.port = u.secure ? 443 : 80;
  if (!port.empty()) {
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), u.port);
    if (ec != std::errc() || p != port.data() + port.size() || u.port <= 0 || u.port > 65535) {
      throw std::invalid_argument("websocket_connect: bad port");
    }
  }
  for (char c : u.target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      throw std::invalid_argument("websocket_connect: bad character in the URL's path");
    }
  }
  return u;
}

// The response head: status and fields. Throws WebSocketHandshakeError if malformed.
int parse_response_head(std::string_view head, HTTPHeaders& fields) {
  auto eol = head.find("\r\n");
  std::string_view status_line = head.substr(0, eol);
  if (!status_line.starts_with("HTTP/1.") || status_line.size() < 12 || status_line[8] != ' ') {
    throw WebSocketHandshakeError(0, "invalid HTTP response to the WebSocket handshake");
  }
  int status = 0;
  auto [p, ec] = std::from_chars(status_line.data() + 9, status_line.data() + 12, status);
  if (ec != std::errc() || p != status_line.data() + 12) {
    throw WebSocketHandshakeError(0, "invalid status line in the WebSocket handshake");
  }
  std::string_view rest = head.substr(eol + 2);
  while (!rest.empty()) {
    auto e = rest.find("\r\n");
    std::string_view line = rest.substr(0, e);
    rest = e == std::string_view::npos ? std::string_view() : rest.substr(e + 2);
    if (line.empty()) break;
    auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      throw WebSocketHandshakeError(status, "invalid header line in the WebSocket handshake");
    }
    fields.add(line.substr(0, colon), detail::trim_ows(line.substr(colon + 1)));
  }
  return status;
}

}  // namespace

Task<std::shared_ptr<WebSocketClientConnection>> websocket_connect_task(
    std::string url, WebSocketClientOptions options) {
  WsUrl u = parse_ws_url(url);
  std::shared_ptr<SSLContext> ssl;
  if (u.secure) ssl = options.ssl ? options.ssl : SSLContext::client();
  TCPClient client;
  std::shared_ptr<IOStream> stream =
      co_await client.connect(u.host, u.port, options.connect_timeout, ssl);

  std::string key = ws::make_client_key();
  std::string request =
      "GET " + u.target + " HTTP/1.1\r\nHost: " + u.host_header +
      "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
      "\r\nSec-WebSocket-Version: 13\r\n";
  if (options.compression) {
    request += "Sec-WebSocket-Extensions: " + ws::deflate_offer(*options.compression) + "\r\n";
  }
  if (!options.subprotocols.empty()) {
    request += "Sec-WebSocket-Protocol: ";
    for (std::size_t i = 0; i < options.subprotocols.size(); ++i) {
      if (i) request += ", ";
      request += options.subprotocols[i];
    }
    request += "\r\n";
  }
  for (const auto& f : options.headers) {
    if (!is_valid_header_name(f.name) || !is_valid_header_value(f.value)) {
      throw std::invalid_argument("websocket_connect: invalid header " + f.name);
    }
    request += f.name + ": " + f.value + "\r\n";
  }
  request += "\r\n";
  co_await stream->write(std::move(request));
  Future<std::string> head_read = stream->read_until("\r\n\r\n", 64 * 1024);
  std::string head = co_await with_timeout(options.connect_timeout, std::move(head_read));

  HTTPHeaders fields;
  int status = 0;
  try {
    status = parse_response_head(head, fields);
    if (status != 101) {
      throw WebSocketHandshakeError(
          status, "WebSocket handshake refused with HTTP " + std::to_string(status));
    }
    if (!ws::header_has_token(fields, "Upgrade", "websocket") ||
        !ws::header_has_token(fields, "Connection", "upgrade")) {
      throw WebSocketHandshakeError(status, "101 response without Upgrade: websocket");
    }
    auto accept = fields.get("Sec-WebSocket-Accept");
    if (!accept || *accept != ws::accept_key(key)) {
      throw WebSocketHandshakeError(status, "wrong Sec-WebSocket-Accept");
    }
  } catch (...) {
    stream->close();
    throw;
  }

  auto conn = std::shared_ptr<WebSocketClientConnection>(new WebSocketClientConnection());
  conn->max_queued_ = std::max<std::size_t>(1, options.max_queued_messages);
  ws::ConnectionOptions copts;
  copts.role = ws::Role::kClient;
  copts.max_message_size = options.max_message_size;
  copts.ping_interval = options.ping_interval;
  copts.ping_timeout = options.ping_timeout;
  try {
    if (auto ext = fields.get_joined("Sec-WebSocket-Extensions")) {
      auto parsed = ws::parse_extensions(*ext);
      if (!parsed || parsed->size() > 1 || !options.compression) {
        throw WebSocketHandshakeError(status, "server chose extensions we did not offer: " + *ext);
      }
      if (!parsed->empty()) {
        copts.deflate = ws::accept_deflate_response((*parsed)[0], *options.compression);
        copts.deflate_options = *options.compression;
        conn->extensions_ = *ext;
      }
    }
    if (auto proto = fields.get("Sec-WebSocket-Protocol")) {
      bool offered = false;
      for (const auto& s : options.subprotocols) offered = offered || s == *proto;
      if (!offered) throw WebSocketHandshakeError(status, "server chose a subprotocol not offered");
      conn->subprotocol_ = std::string(*proto);
    }
  } catch (const std::runtime_error& e) {
    stream->close();
    if (dynamic_cast<const WebSocketHandshakeError*>(&e)) throw;
    throw WebSocketHandshakeError(status, e.what());
  }

  // The delegate holds the client connection weakly: the user's pointer decides when it
  // goes, the WebSocket (which holds its delegate until on_close) does not.
  struct Events final : ws::ConnectionDelegate {
    std::weak_ptr<WebSocketClientConnection> weak;
    void on_message(std::string&& data, bool binary) override {
      if (auto c = weak.lock()) c->deliver(WebSocketMessage{std::move(data), binary});
    }
    void on_pong(std::string_view data) override {
      if (auto c = weak.lock(); c && c->on_pong) c->on_pong(data);
    }
    void on_close(std::uint16_t code, std::string reason) override {
      if (auto c = weak.lock()) c->finish(code, std::move(reason));
    }
  };
  auto events = std::make_shared<Events>();
  events->weak = conn;
  conn->ws_ = ws::WebSocketConnection::create(stream, std::move(copts), std::move(events));
  // Frames the server sent right behind its 101 are still in the stream's buffer; the
  // data handler gets them first.
  conn->ws_->start();
  co_return conn;
}

Task<std::shared_ptr<WebSocketClientConnection>> websocket_connect(std::string url,
                                                                   WebSocketClientOptions options) {
  return websocket_connect_task(std::move(url), std::move(options));
}

WebSocketClientConnection::~WebSocketClientConnection() {
  if (ws_ && !closed_) ws_->close();
}

void WebSocketClientConnection::deliver(WebSocketMessage message) {
  if (reader_) {
    auto reader = std::move(*reader_);
    reader_.reset();
    reader.set_result(std::optional<WebSocketMessage>(std::move(message)));
    return;
  }
  queue_.push_back(std::move(message));
  if (!paused_ && queue_.size() >= max_queued_) {
    paused_ = true;
    ws_->pause_reading();
  }
}

void WebSocketClientConnection::finish(std::uint16_t code, std::string reason) {
  closed_ = true;
  close_code_ = code;
  close_reason_ = std::move(reason);
  if (reader_) {
    auto reader = std::move(*reader_);
    reader_.reset();
    reader.set_result(std::optional<WebSocketMessage>());
  }
}

Task<std::optional<WebSocketMessage>> WebSocketClientConnection::read_message() {
  if (!queue_.empty()) {
    WebSocketMessage m = std::move(queue_.front());
    queue_.pop_front();
    if (paused_ && queue_.size() < max_queued_ / 2 + 1) {
      paused_ = false;
      ws_->resume_reading();
    }
    co_return m;
  }
  if (closed_) co_return std::nullopt;
  if (reader_) throw std::logic_error("read_message: another read is pending");
  // Keep ourselves alive while waiting: the callbacks only hold a weak reference.
  auto self = shared_from_this();
  reader_.emplace();
  Future<std::optional<WebSocketMessage>> next = reader_->get_future();
  co_return co_await next;
}

Future<void> WebSocketClientConnection::write_message(std::string_view message, bool binary) {
  return ws_->write_message(message, binary);
}

void WebSocketClientConnection::ping(std::string_view data) {
  ws_->ping(data);
}

void WebSocketClientConnection::close(std::uint16_t code, std::string_view reason) {
  ws_->close(code, reason);
}

}  // namespace tronada
