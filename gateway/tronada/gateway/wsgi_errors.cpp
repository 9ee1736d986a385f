#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "tronada/gateway/wsgi_errors.h"

#include <string>

#include "tronada/base/log.h"

namespace tronada {

namespace {

struct ErrorsObject {
  PyObject_HEAD
};

// A partial line, guarded by the GIL. There is one stream per process, so its state is
// a plain static rather than a pointer inside a Python object.
std::string g_pending;

PyObject* g_errors = nullptr;

void emit_lines(std::string& pending, bool all) {
  std::size_t start = 0;
  for (;;) {
    std::size_t nl = pending.find('\n', start);
    if (nl == std::string::npos) break;
    log::error("wsgi", std::string_view(pending).substr(start, nl - start));
    start = nl + 1;
  }
  pending.erase(0, start);
  if (all && !pending.empty()) {
    log::error("wsgi", pending);
    pending.clear();
  }
}

PyObject* errors_write(PyObject* self, PyObject* arg) {
  Py_ssize_t size = 0;
  const char* text = PyUnicode_AsUTF8AndSize(arg, &size);
  if (!text) return nullptr;
  (void)self;
  std::string& pending = g_pending;
  pending.append(text, static_cast<std::size_t>(size));
  emit_lines(pending, false);
  return PyLong_FromSsize_t(size);
}

PyObject* errors_writelines(PyObject* self, PyObject* arg) {
  PyObject* it = PyObject_GetIter(arg);
  if (!it) return nullptr;
  while (PyObject* item = PyIter_Next(it)) {
    PyObject* r = errors_write(self, item);
    Py_DECREF(item);
    if (!r) {
      Py_DECREF(it);
      return nullptr;
    }
    Py_DECREF(r);
  }
  Py_DECREF(it);
  if (PyErr_Occurred()) return nullptr;
  Py_RETURN_NONE;
}

PyObject* errors_flush(PyObject* self, PyObject*) {
  (void)self;
  emit_lines(g_pending, true);
  Py_RETURN_NONE;
}

PyMethodDef errors_methods[] = {
    {"write", errors_write, METH_O, "write(str)"},
    {"writelines", errors_writelines, METH_O, "writelines(iterable of str)"},
    {"flush", errors_flush, METH_NOARGS, "flush()"},
    {nullptr, nullptr, 0, nullptr}};

PyType_Slot errors_slots[] = {{Py_tp_methods, errors_methods}, {0, nullptr}};

PyType_Spec errors_spec = {"tronada.wsgi.Errors", sizeof(ErrorsObject), 0, Py_TPFLAGS_DEFAULT,
                           errors_slots};

}  // namespace

PyObject* wsgi_errors_stream() {
  if (!g_errors) {
    PyObject* type = PyType_FromSpec(&errors_spec);
    if (!type) return nullptr;
    auto* obj = PyObject_New(ErrorsObject, reinterpret_cast<PyTypeObject*>(type));
    Py_DECREF(type);
    if (!obj) return nullptr;
    // Lives until the interpreter ends: one per process, never deallocated.
    g_errors = reinterpret_cast<PyObject*>(obj);
  }
  Py_INCREF(g_errors);
  return g_errors;
}

}  // namespace tronada
