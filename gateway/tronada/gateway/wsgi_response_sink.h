// The boundary between a WSGI call on a worker thread and whoever delivers its response.
#pragma once

#include <optional>
#include <string>

#include "tronada/http/http_headers.h"

namespace tronada {

/// A response's status and header fields as the app gave them to start_response.
struct WSGIResponseHead {
  int status = 200;
  /// The status line's phrase as the app gave it ("I'm a teapot", possibly empty);
  /// unset for the server's own responses, which carry the standard one.
  std::optional<std::string> reason;
  HTTPHeaders headers;
};

/// Receives one response from a WSGI call, on the worker thread. The container's
/// implementation hands pieces to the loop; tests collect them.
class WSGIResponseSink {
 public:
  virtual ~WSGIResponseSink() = default;
  /// A piece of the body to send now, with the head first when `head` is non-null. May
  /// block until the client took earlier pieces (backpressure), so the caller releases
  /// the GIL around it. Returns false once the client is gone.
  virtual bool send(const WSGIResponseHead* head, std::string data) = 0;
  /// The last piece, with the head if it was not sent yet. Never blocks.
  virtual void finish(const WSGIResponseHead* head, std::string data) = 0;
  /// The app failed after the head went out: the response cannot be completed and the
  /// connection must close so the client does not take a cut body for a whole one.
  virtual void abort() = 0;
  /// True once the client went away (the call stops iterating and calls close()).
  virtual bool client_gone() const = 0;
};

}  // namespace tronada
