// GatewayHandler: the common shape of handlers that pass every request on to a backend
// (FastCGI responder, HTTP upstream) instead of answering it themselves.
#pragma once

#include <string>
#include <vector>

#include "tronada/web/request_handler.h"

namespace tronada {

/// A RequestHandler that streams request bodies (the backend decides about them) and
/// sends every supported method to one `serve()`.
class GatewayHandler : public RequestHandler {
 public:
  bool stream_request_body() const override { return true; }
  std::vector<std::string> allowed_methods() const override {
    return {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
  }

  Task<void> get() override { return serve(); }
  Task<void> head() override { return serve(); }
  Task<void> post() override { return serve(); }
  Task<void> put() override { return serve(); }
  Task<void> patch() override { return serve(); }
  Task<void> delete_() override { return serve(); }
  Task<void> options() override { return serve(); }

 protected:
  /// Answers the request, whatever its method.
  virtual Task<void> serve() = 0;
};

}  // namespace tronada
