// HTTPServer: a TCPServer whose connections speak HTTP/1.1 (HTTP/2 joins later).
#pragma once

#include <functional>
#include <memory>

#include "tronada/http/http1_connection.h"
#include "tronada/http/http_connection.h"
#include "tronada/http/http_server_request.h"
#include "tronada/net/tcp_server.h"

namespace tronada {

/// An HTTP server, as Tornado's HTTPServer: give it a callback that receives each
/// request with its body, or a delegate (the framework's Application, the gateway) that
/// sees headers first and may stream the body. Listening is TCPServer's: listen(),
/// bind()+start(n), add_sockets().
///
/// Lifetime: the server owns the listening sockets and the shared connection context.
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

  const HTTPServerOptions& options() const { return context_->options; }
  std::size_t open_connections() const { return context_->connections.size(); }
  /// Closes idle connections and asks busy ones to close after their response.
  void close_all_connections();

 protected:
  void handle_stream(std::shared_ptr<IOStream> stream) override;

 private:
  class CallbackDelegate;
  std::unique_ptr<HTTPServerDelegate> owned_delegate_;
  std::shared_ptr<detail::HTTP1ServerContext> context_;
};

}  // namespace tronada
