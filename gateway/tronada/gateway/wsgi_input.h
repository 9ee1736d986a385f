// wsgi.input: the request body as a Python file-like object.
#pragma once

#include <memory>

typedef struct _object PyObject;

namespace tronada {

class WSGIBody;

/// A new `tronada.wsgi.Input` reading from `body`: read(size=-1), readline(size=-1),
/// readlines(hint=-1) and iteration by lines, all returning bytes. A read that has to
/// wait for the client releases the GIL while it waits; a client that went away raises
/// OSError. Needs the GIL.
PyObject* make_wsgi_input(std::shared_ptr<WSGIBody> body);

}  // namespace tronada
