// HTTPServer: a TCPServer whose connections speak HTTP/1.1 or HTTP/2, in clear text or
// over TLS.
#pragma once

#include <functional>
#include <memory>

#include "tronada/http/http1_connection.h"
#include "tronada/http/http2_session.h"
#include "tronada/http/http_connection.h"
#include "tronada/http/http_server_request.h"
#include "tronada/net/ssl_context.h"
#include "tronada/net/tcp_server.h"

namespace tronada {

/// An HTTP server, as Tornado's HTTPServer: give it a callback that receives each
/// request with its body, or a delegate (the framework's Application, the gateway) that
/// sees headers first and may stream the body. Listening is TCPServer's: listen(),
/// bind()+start(n), add_sockets().
///
/// Protocols: HTTP/2 is on unless disable_http2() is called before listening. Over TLS
/// the client picks it by ALPN ("h2"; anything else is HTTP/1.1); in clear text a client
/// that starts with the HTTP/2 connection preface (prior knowledge, RFC 9113 3.3) gets
/// HTTP/2 and every other gets HTTP/1.1, on the same port; an HTTP/1.1 request with
/// `Upgrade: h2c` and no body (RFC 7540 3.2) gets 101 and its answer as HTTP/2 stream 1
/// (see h2c_upgrade_settings). Over TLS the Upgrade header is ignored (RFC 9113 3.2:
/// ALPN is the only way there).
///
/// Lifetime: the server owns the listening sockets and the shared connection contexts.
/// Destroying it stops accepting and closes every open connection.
class HTTPServer : public TCPServer {
 public:
  using RequestCallback = std::function<void(std::shared_ptr<HTTPServerRequest>)>;

  /// `delegate` must outlive the server.
  explicit HTTPServer(HTTPServerDelegate& delegate, HTTPServerOptions options = {});
  /// The simple form: `callback` runs once the whole request (with body) has arrived
  /// and answers through request->connection.
  explicit HTTPServer(RequestCallback callback, HTTPServerOptions options = {});
  ~HTTPServer() override;

  /// Serves TLS on every listener of this server. The context's ALPN list decides what
  /// clients may pick; build it with tls_config() to offer h2 and http/1.1. Requests
  /// then have protocol "https". Call before listening.
  void set_ssl_context(std::shared_ptr<SSLContext> context);
  /// Builds the TLS context from `config`, adding ALPN "h2", "http/1.1" (or only
  /// "http/1.1" without HTTP/2) when the config names none. Throws SSLContextError.
  void set_ssl_config(SSLServerConfig config);
  const std::shared_ptr<SSLContext>& ssl_context() const { return ssl_; }

  /// HTTP/2 settings and limits (before listening).
  void set_http2_options(HTTP2Options options) { h2_->options = options; }
  void disable_http2() {
    http2_ = false;
    update_h2c();
  }
  bool http2_enabled() const { return http2_; }

  const HTTPServerOptions& options() const { return context_->options; }
  std::size_t open_connections() const {
    return context_->connections.size() + h2_->sessions.size() + context_->sniffing;
  }
  /// The open connections by protocol (the metrics' gauges).
  std::size_t http1_connections() const { return context_->connections.size(); }
  std::size_t http2_connections() const { return h2_->sessions.size(); }
  /// Closes idle connections and asks busy ones to close after their response (HTTP/2:
  /// GOAWAY, then in-flight streams finish).
  void close_all_connections();

 protected:
  void handle_stream(std::shared_ptr<IOStream> stream) override;
  std::shared_ptr<IOStream> adopt_stream(uv_stream_t* client) override;

 private:
  class CallbackDelegate;
  struct Sniffer;
  std::shared_ptr<Sniffer> make_sniffer(const std::shared_ptr<IOStream>& stream);
  void sniff_preface(std::shared_ptr<IOStream> stream);
  void await_alpn(std::shared_ptr<IOStream> stream);
  /// Offers h2c Upgrade to HTTP/1 connections exactly when HTTP/2 is on without TLS.
  void update_h2c();

  std::unique_ptr<HTTPServerDelegate> owned_delegate_;
  std::shared_ptr<detail::HTTP1ServerContext> context_;
  std::shared_ptr<detail::HTTP2ServerContext> h2_;
  std::shared_ptr<SSLContext> ssl_;
  bool http2_ = true;
};

}  // namespace tronada
