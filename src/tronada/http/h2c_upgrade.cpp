#include "tronada/http/h2c_upgrade.h"

#include <cstdint>
#include <utility>

#include "tronada/base/base64.h"
#include "tronada/http/http1_connection.h"

namespace tronada {

namespace {

/// Whether a comma-separated field (all its lines) lists `token`, case-insensitively.
bool lists_token(const HTTPHeaders& headers, std::string_view name, std::string_view token) {
  for (std::string_view line : headers.get_all(name)) {
    while (!line.empty()) {
      auto comma = line.find(',');
      if (detail::iequals(detail::trim_ows(line.substr(0, comma)), token)) return true;
      if (comma == std::string_view::npos) break;
      line.remove_prefix(comma + 1);
    }
  }
  return false;
}

/// A SETTINGS payload whose every known setting is within RFC 9113 6.5.2's range, so
/// nghttp2_session_upgrade2 will take it and the 101 we send is not followed by an error.
bool valid_settings_payload(std::string_view p) {
  if (p.size() % 6 != 0) return false;
  for (std::size_t i = 0; i < p.size(); i += 6) {
    auto byte = [&](std::size_t k) {
      return static_cast<std::uint32_t>(static_cast<unsigned char>(p[i + k]));
    };
    std::uint32_t id = byte(0) << 8 | byte(1);
    std::uint32_t value = byte(2) << 24 | byte(3) << 16 | byte(4) << 8 | byte(5);
    if ((id == 0x2 || id == 0x8) && value > 1) return false;              // ENABLE_PUSH, CONNECT
    if (id == 0x4 && value > 0x7fffffffu) return false;                   // INITIAL_WINDOW_SIZE
    if (id == 0x5 && (value < 16384 || value > 0xffffffu)) return false;  // MAX_FRAME_SIZE
  }
  return true;
}

/// Answers an h2c Upgrade: once the request is read whole (and the parser has stopped, so
/// the bytes after it are known), sends 101 and hands the stream to HTTP/2.
class H2CUpgradeMessage final : public HTTPMessageDelegate {
 public:
  H2CUpgradeMessage(std::shared_ptr<HTTPServerRequest> request, std::string settings,
                    std::shared_ptr<detail::HTTP1ServerContext> context)
      : request_(std::move(request)),
        settings_(std::move(settings)),
        context_(std::move(context)) {}

  void finish() override {
    HTTPHeaders head;
    head.add("Connection", "Upgrade");
    head.add("Upgrade", "h2c");
    std::shared_ptr<HTTPConnection> channel = request_->connection;
    channel->write_headers(101, head);
    DetachedConnection detached = channel->detach();
    // What HTTP/1 hop by hop fields said is done with; stream 1 carries the rest.
    for (const char* name : {"Connection", "Upgrade", "HTTP2-Settings", "Keep-Alive"}) {
      request_->headers.remove(name);
    }
    request_->connection.reset();
    if (context_->h2c_upgrade) {
      context_->h2c_upgrade(std::move(detached), std::move(settings_), std::move(request_));
    } else {
      detached.stream->close();
    }
  }

 private:
  std::shared_ptr<HTTPServerRequest> request_;
  std::string settings_;
  std::shared_ptr<detail::HTTP1ServerContext> context_;
};

}  // namespace

std::optional<std::string> h2c_upgrade_settings(const HTTPServerRequest& request, bool has_body) {
  if (has_body || request.version != "HTTP/1.1" || request.method == "CONNECT") return std::nullopt;
  if (!lists_token(request.headers, "Upgrade", "h2c")) return std::nullopt;
  if (!lists_token(request.headers, "Connection", "Upgrade") ||
      !lists_token(request.headers, "Connection", "HTTP2-Settings")) {
    return std::nullopt;
  }
  auto values = request.headers.get_all("HTTP2-Settings");
  if (values.size() != 1) return std::nullopt;
  // token68 in base64url (RFC 4648 5), padding usually left out; our decoder wants the
  // standard alphabet, padded.
  std::string b64;
  for (char c : values[0]) {
    if (c == '+' || c == '/') return std::nullopt;
    if (c == '=') break;
    b64 += c == '-' ? '+' : c == '_' ? '/' : c;
  }
  if (b64.size() % 4 == 1) return std::nullopt;
  while (b64.size() % 4 != 0) b64 += '=';
  std::optional<std::string> payload = base64_decode(b64);
  if (!payload || !valid_settings_payload(*payload)) return std::nullopt;
  return payload;
}

namespace detail {

std::unique_ptr<HTTPMessageDelegate> make_h2c_upgrade_message(
    std::shared_ptr<HTTPServerRequest> request, std::string settings,
    std::shared_ptr<HTTP1ServerContext> context) {
  return std::make_unique<H2CUpgradeMessage>(std::move(request), std::move(settings),
                                             std::move(context));
}

}  // namespace detail

}  // namespace tronada
