#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "tronada/gateway/wsgi_input.h"

#include <new>
#include <optional>
#include <string>

#include "tronada/gateway/wsgi_body.h"
#include "tronada/gateway/wsgi_interpreter.h"

namespace tronada {

namespace {

struct InputObject {
  PyObject_HEAD std::shared_ptr<WSGIBody>* body;  // heap: PyObject memory is not constructed by C++
};

PyTypeObject* g_input_type = nullptr;

// Runs a body operation: first without waiting (no GIL release on the fast path), then
// blocking with the GIL released. nullptr with a Python OSError set on failure.
template <typename Op>
PyObject* run_body_op(Op op) {
  std::optional<std::string> data;
  std::string error;
  try {
    data = op(false);
    if (!data) {
      GILReleaser unlocked;
      try {
        data = op(true);
      } catch (const WSGIBodyError& e) {
        error = e.what();
      }
    }
  } catch (const WSGIBodyError& e) {
    error = e.what();
  }
  if (!error.empty()) {
    PyErr_SetString(PyExc_OSError, error.c_str());
    return nullptr;
  }
  return PyBytes_FromStringAndSize(data->data(), static_cast<Py_ssize_t>(data->size()));
}

bool parse_size(PyObject* const* args, Py_ssize_t nargs, Py_ssize_t* size) {
  *size = -1;
  if (nargs > 1) {
    PyErr_SetString(PyExc_TypeError, "expected at most one argument");
    return false;
  }
  if (nargs == 1 && args[0] != Py_None) {
    *size = PyLong_AsSsize_t(args[0]);
    if (*size == -1 && PyErr_Occurred()) return false;
  }
  return true;
}

PyObject* input_read(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  Py_ssize_t size;
  if (!parse_size(args, nargs, &size)) return nullptr;
  WSGIBody& body = **reinterpret_cast<InputObject*>(self)->body;
  return run_body_op([&](bool block) { return body.read(size, block); });
}

PyObject* input_readline(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  Py_ssize_t size;
  if (!parse_size(args, nargs, &size)) return nullptr;
  WSGIBody& body = **reinterpret_cast<InputObject*>(self)->body;
  return run_body_op([&](bool block) { return body.readline(size, block); });
}

PyObject* input_readlines(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  Py_ssize_t hint;
  if (!parse_size(args, nargs, &hint)) return nullptr;
  PyObject* lines = PyList_New(0);
  if (!lines) return nullptr;
  Py_ssize_t total = 0;
  for (;;) {
    PyObject* line = input_readline(self, nullptr, 0);
    if (!line) {
      Py_DECREF(lines);
      return nullptr;
    }
    Py_ssize_t n = PyBytes_GET_SIZE(line);
    if (n == 0) {
      Py_DECREF(line);
      break;
    }
    PyList_Append(lines, line);
    Py_DECREF(line);
    total += n;
    if (hint > 0 && total >= hint) break;
  }
  return lines;
}

PyObject* input_iter(PyObject* self) {
  Py_INCREF(self);
  return self;
}

PyObject* input_next(PyObject* self) {
  PyObject* line = input_readline(self, nullptr, 0);
  if (line && PyBytes_GET_SIZE(line) == 0) {
    Py_DECREF(line);
    return nullptr;  // StopIteration
  }
  return line;
}

void input_dealloc(PyObject* self) {
  delete reinterpret_cast<InputObject*>(self)->body;
  PyTypeObject* type = Py_TYPE(self);
  type->tp_free(self);
  Py_DECREF(type);
}

PyMethodDef input_methods[] = {
    {"read", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(input_read)), METH_FASTCALL,
     "read(size=-1) -> bytes"},
    {"readline", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(input_readline)),
     METH_FASTCALL, "readline(size=-1) -> bytes"},
    {"readlines", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(input_readlines)),
     METH_FASTCALL, "readlines(hint=-1) -> list of bytes"},
    {nullptr, nullptr, 0, nullptr}};

PyType_Slot input_slots[] = {{Py_tp_dealloc, reinterpret_cast<void*>(input_dealloc)},
                             {Py_tp_iter, reinterpret_cast<void*>(input_iter)},
                             {Py_tp_iternext, reinterpret_cast<void*>(input_next)},
                             {Py_tp_methods, input_methods},
                             {0, nullptr}};

PyType_Spec input_spec = {"tronada.wsgi.Input", sizeof(InputObject), 0, Py_TPFLAGS_DEFAULT,
                          input_slots};

}  // namespace

PyObject* make_wsgi_input(std::shared_ptr<WSGIBody> body) {
  if (!g_input_type) {
    g_input_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&input_spec));
    if (!g_input_type) return nullptr;
  }
  auto* obj = PyObject_New(InputObject, g_input_type);
  if (!obj) return nullptr;
  obj->body = new std::shared_ptr<WSGIBody>(std::move(body));
  return reinterpret_cast<PyObject*>(obj);
}

}  // namespace tronada
