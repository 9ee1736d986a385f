// start_response and the write() callable it returns (PEP 3333).
#pragma once

#include <memory>
#include <string>

#include "tronada/gateway/wsgi_response_sink.h"

typedef struct _object PyObject;

namespace tronada {

/// What start_response recorded for one call; shared by the call runner and the Python
/// object (which an app may keep after the call, when `sink` is null and calls fail).
struct WSGIResponseState {
  WSGIResponseHead head;
  bool head_set = false;
  bool head_sent = false;
  /// Body bytes produced but not handed to the sink yet.
  std::string pending;
  /// Bytes sent so far and the app's Content-Length, if it gave one (-1 otherwise).
  long long sent_bytes = 0;
  long long content_length = -1;
  bool head_request = false;
  WSGIResponseSink* sink = nullptr;  // set for the duration of the call
  bool client_gone = false;

  /// Hands `pending` (and the head the first time) to the sink as a non-final piece,
  /// releasing the GIL while the sink may block. False if the client is gone.
  bool flush_pending();
};

/// A new `tronada.wsgi.StartResponse` bound to `state`: start_response(status,
/// response_headers, exc_info=None) -> write. Raises for a malformed status or header
/// (the validator's checks), for a second call without exc_info, and re-raises exc_info
/// when the head was already sent. Needs the GIL.
PyObject* make_start_response(std::shared_ptr<WSGIResponseState> state);

}  // namespace tronada
