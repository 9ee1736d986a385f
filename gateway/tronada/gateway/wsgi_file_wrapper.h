// wsgi.file_wrapper: lets an app hand over a file for the server to send.
#pragma once

typedef struct _object PyObject;

namespace tronada {

/// The `tronada.wsgi.FileWrapper` type (a new reference): FileWrapper(filelike,
/// blksize=8192) iterates filelike.read(blksize) and close() closes the file-like
/// object. Needs the GIL.
PyObject* wsgi_file_wrapper_type();

/// If `result` is a FileWrapper, its file-like object (borrowed) and block size.
bool unwrap_wsgi_file(PyObject* result, PyObject** filelike, long* blksize);

}  // namespace tronada
