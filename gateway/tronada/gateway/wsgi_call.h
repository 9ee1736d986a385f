// One WSGI call on a worker thread: environ in, response out through a sink.
#pragma once

#include <memory>

#include "tronada/gateway/wsgi_environ.h"
#include "tronada/gateway/wsgi_response_sink.h"

typedef struct _object PyObject;

namespace tronada {

class WSGIBody;

/// Calls one WSGI application (PEP 3333) for requests. Owns a reference to the app and
/// an environ template with the keys every request shares (wsgi.version, wsgi.errors,
/// wsgi.file_wrapper, ...), copied per request.
///
/// A call: the environ dict is built, app(environ, start_response) runs, its iterable is
/// drained and its close() is called exactly once, also when the client went away or the
/// app raised. Bodies whose end is known (a list or tuple, a one-item iterable, or
/// Content-Length bytes reached) are collected and handed over whole with the head:
/// one hand-off per request in the common case. Anything else is sent piece by piece as
/// the app yields it (PEP 3333 forbids holding a block back), with backpressure. A
/// FileWrapper over a real file is read in blocks without the GIL. An exception before
/// the head went out becomes a 500; after, the connection is aborted. Tracebacks go to
/// the error log.
class WSGICaller {
 public:
  /// Needs the GIL. `multithread`/`multiprocess` are the environ's flags.
  WSGICaller(PyObject* app, bool multithread, bool multiprocess);
  ~WSGICaller();  // needs the GIL
  WSGICaller(const WSGICaller&) = delete;
  WSGICaller& operator=(const WSGICaller&) = delete;

  /// Runs one request; needs the GIL (released while waiting on the body or the client).
  void call(const WSGIEnviron& environ, const std::shared_ptr<WSGIBody>& body, bool head_request,
            bool https, WSGIResponseSink& sink);

 private:
  PyObject* build_environ(const WSGIEnviron& environ, const std::shared_ptr<WSGIBody>& body,
                          bool https);
  PyObject* app_;
  PyObject* template_;  // dict
};

}  // namespace tronada
