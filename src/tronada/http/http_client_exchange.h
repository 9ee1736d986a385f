// One HTTP/1.1 request and its response on a pooled connection: the I/O half of
// AsyncHTTPClient, parsing with the sans-I/O HTTP1ResponseParser.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "tronada/async/future.h"
#include "tronada/http/connection_pool.h"
#include "tronada/http/http1_response_parser.h"
#include "tronada/http/http_client_request.h"

namespace tronada::detail {

/// What one exchange sends and how it treats the response.
struct ExchangeParams {
  std::string head;  // serialized request head
  BodyFraming framing = BodyFraming::none;
  std::string body;
  BodyProducer body_producer;
  bool head_request = false;  // the response has no body whatever its headers say
  Duration timeout{};         // zero: none
  std::size_t max_header_size = 64 * 1024;
  std::size_t max_body_size = 100 * 1024 * 1024;
  bool decompress = true;
  std::function<void(std::string_view)> streaming_callback;
  std::function<void(std::string_view)> header_callback;
  std::string peer;  // for messages: "host:port"
};

struct ExchangeResult {
  HTTPResponseHead head;
  std::string body;
};

/// The server closed (or reset) a reused connection before sending any byte of the
/// response: the request may be retried on a fresh connection if it is idempotent.
class StaleConnectionError : public HTTPStreamClosedError {
 public:
  using HTTPStreamClosedError::HTTPStreamClosedError;
};

/// Sends the request on `connection` and reads the response. The connection goes back
/// to its pool when the exchange ended cleanly and both sides keep it alive, else it is
/// closed. Fails with HTTPTimeoutError, HTTPStreamClosedError (StaleConnectionError on
/// a reused connection that got no response byte), HTTPClientError 599 for a malformed
/// response, an over-long body or bad compressed data, or what the body producer or
/// streaming callback threw.
///
/// Lifetime: the exchange object is owned by the stream's data handler and close
/// callback (and the body producer's coroutine while it runs); every path to the end
/// clears both, so it is freed when the exchange ends. The timeout holds it weakly.
Future<ExchangeResult> run_exchange(PooledConnection connection, ExchangeParams params);

}  // namespace tronada::detail
