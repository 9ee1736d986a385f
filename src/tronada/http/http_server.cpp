#include "tronada/http/http_server.h"

#include <vector>

namespace tronada {

/// Adapts a plain callback to the delegate interface: buffer the body, then call.
class HTTPServer::CallbackDelegate final : public HTTPServerDelegate {
 public:
  explicit CallbackDelegate(RequestCallback cb) : callback_(std::move(cb)) {}

  RequestStart start_request(const std::shared_ptr<HTTPServerRequest>& request) override {
    return RequestStart{std::make_unique<Message>(callback_, request)};
  }

 private:
  class Message final : public HTTPMessageDelegate {
   public:
    Message(RequestCallback& cb, std::shared_ptr<HTTPServerRequest> req)
        : callback_(cb), request_(std::move(req)) {}
    void finish() override { callback_(std::move(request_)); }

   private:
    RequestCallback& callback_;
    std::shared_ptr<HTTPServerRequest> request_;
  };
  RequestCallback callback_;
};

HTTPServer::HTTPServer(HTTPServerDelegate& delegate, HTTPServerOptions options)
    : context_(std::make_shared<detail::HTTP1ServerContext>(IOLoop::current(),
                                                            std::move(options), &delegate)) {
  set_max_connections(context_->options.max_connections);
}

HTTPServer::HTTPServer(RequestCallback callback, HTTPServerOptions options)
    : owned_delegate_(std::make_unique<CallbackDelegate>(std::move(callback))),
      context_(std::make_shared<detail::HTTP1ServerContext>(
          IOLoop::current(), std::move(options), owned_delegate_.get())) {
  set_max_connections(context_->options.max_connections);
}

HTTPServer::~HTTPServer() {
  stop();
  context_->delegate = nullptr;
  std::vector<HTTP1Connection*> conns(context_->connections.begin(), context_->connections.end());
  for (auto* c : conns) c->close();
}

void HTTPServer::close_all_connections() {
  std::vector<HTTP1Connection*> conns(context_->connections.begin(), context_->connections.end());
  for (auto* c : conns) c->close_when_idle();
}

void HTTPServer::handle_stream(std::shared_ptr<IOStream> stream) {
  stream->set_nodelay(true);
  auto conn = std::make_shared<HTTP1Connection>(std::move(stream), context_);
  conn->start();
}

}  // namespace tronada
