#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "tronada/gateway/wsgi_file_wrapper.h"

namespace tronada {

namespace {

struct FileWrapperObject {
  PyObject_HEAD PyObject* filelike;
  long blksize;
};

PyTypeObject* g_type = nullptr;

int wrapper_init(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"filelike", "blksize", nullptr};
  PyObject* filelike = nullptr;
  long blksize = 8192;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|l", const_cast<char**>(kwlist), &filelike,
                                   &blksize)) {
    return -1;
  }
  if (blksize <= 0) blksize = 8192;
  auto* w = reinterpret_cast<FileWrapperObject*>(self);
  Py_INCREF(filelike);
  Py_XSETREF(w->filelike, filelike);
  w->blksize = blksize;
  return 0;
}

PyObject* wrapper_iter(PyObject* self) {
  Py_INCREF(self);
  return self;
}

PyObject* wrapper_next(PyObject* self) {
  auto* w = reinterpret_cast<FileWrapperObject*>(self);
  if (!w->filelike) return nullptr;
  PyObject* data = PyObject_CallMethod(w->filelike, "read", "l", w->blksize);
  if (!data) return nullptr;
  if (PyObject_Length(data) == 0) {
    Py_DECREF(data);
    return nullptr;
  }
  return data;
}

PyObject* wrapper_close(PyObject* self, PyObject*) {
  auto* w = reinterpret_cast<FileWrapperObject*>(self);
  if (w->filelike && PyObject_HasAttrString(w->filelike, "close")) {
    PyObject* r = PyObject_CallMethod(w->filelike, "close", nullptr);
    if (!r) return nullptr;
    Py_DECREF(r);
  }
  Py_RETURN_NONE;
}

int wrapper_traverse(PyObject* self, visitproc visit, void* arg) {
  Py_VISIT(reinterpret_cast<FileWrapperObject*>(self)->filelike);
  Py_VISIT(Py_TYPE(self));
  return 0;
}

int wrapper_clear(PyObject* self) {
  Py_CLEAR(reinterpret_cast<FileWrapperObject*>(self)->filelike);
  return 0;
}

void wrapper_dealloc(PyObject* self) {
  PyObject_GC_UnTrack(self);
  wrapper_clear(self);
  PyTypeObject* type = Py_TYPE(self);
  type->tp_free(self);
  Py_DECREF(type);
}

PyMethodDef wrapper_methods[] = {{"close", wrapper_close, METH_NOARGS, "close()"},
                                 {nullptr, nullptr, 0, nullptr}};

PyType_Slot wrapper_slots[] = {{Py_tp_init, reinterpret_cast<void*>(wrapper_init)},
                               {Py_tp_new, reinterpret_cast<void*>(PyType_GenericNew)},
                               {Py_tp_iter, reinterpret_cast<void*>(wrapper_iter)},
                               {Py_tp_iternext, reinterpret_cast<void*>(wrapper_next)},
                               {Py_tp_traverse, reinterpret_cast<void*>(wrapper_traverse)},
                               {Py_tp_clear, reinterpret_cast<void*>(wrapper_clear)},
                               {Py_tp_dealloc, reinterpret_cast<void*>(wrapper_dealloc)},
                               {Py_tp_methods, wrapper_methods},
                               {0, nullptr}};

PyType_Spec wrapper_spec = {"tronada.wsgi.FileWrapper", sizeof(FileWrapperObject), 0,
                            Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, wrapper_slots};

}  // namespace

PyObject* wsgi_file_wrapper_type() {
  if (!g_type) {
    g_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&wrapper_spec));
    if (!g_type) return nullptr;
  }
  Py_INCREF(g_type);
  return reinterpret_cast<PyObject*>(g_type);
}

bool unwrap_wsgi_file(PyObject* result, PyObject** filelike, long* blksize) {
  if (!g_type || Py_TYPE(result) != g_type) return false;
  auto* w = reinterpret_cast<FileWrapperObject*>(result);
  if (!w->filelike) return false;
  *filelike = w->filelike;
  *blksize = w->blksize;
  return true;
}

}  // namespace tronada
