// wsgi.errors: a text stream into the error log.
#pragma once

typedef struct _object PyObject;

namespace tronada {

/// A new reference to the process's `tronada.wsgi.Errors` stream: write(str),
/// writelines(iterable) and flush(). Complete lines go to the error log (stderr unless
/// configured) under the logger "wsgi"; a partial line waits for its newline or flush().
/// One stream serves every request, as with gunicorn; it is safe under the GIL.
PyObject* wsgi_errors_stream();

}  // namespace tronada
