#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "tronada/gateway/wsgi_start_response.h"

#include <charconv>
#include <string_view>

#include "tronada/gateway/wsgi_interpreter.h"
#include "tronada/http/http_status.h"

namespace tronada {

namespace {

struct StartResponseObject {
  PyObject_HEAD std::shared_ptr<WSGIResponseState>* state;
};

PyTypeObject* g_type = nullptr;

// Latin-1 text of a str (PEP 3333 headers are native strings holding latin-1 bytes).
bool latin1(PyObject* s, const char* what, std::string& out) {
  if (!PyUnicode_Check(s)) {
    PyErr_Format(PyExc_TypeError, "%s must be str, not %s", what, Py_TYPE(s)->tp_name);
    return false;
  }
  PyObject* b = PyUnicode_AsLatin1String(s);
  if (!b) return false;
  out.assign(PyBytes_AS_STRING(b), static_cast<std::size_t>(PyBytes_GET_SIZE(b)));
  Py_DECREF(b);
  return true;
}

bool has_control(std::string_view s) {
  for (char c : s) {
    if (c == '\r' || c == '\n' || c == '\0') return true;
  }
  return false;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (c <= 32 || c >= 127 || c == ':' || c == '(' || c == ')' || c == '"' || c == ',' ||
        c == ';' || c == '/' || c == '[' || c == ']' || c == '?' || c == '=' || c == '{' ||
        c == '}' || c == '\\' || c == '<' || c == '>' || c == '@') {
      return false;
    }
  }
  return true;
}

bool hop_by_hop(std::string_view name) {
  return detail::iequals(name, "Connection") || detail::iequals(name, "Keep-Alive") ||
         detail::iequals(name, "Transfer-Encoding") || detail::iequals(name, "Upgrade") ||
         detail::iequals(name, "Proxy-Connection") || detail::iequals(name, "TE") ||
         detail::iequals(name, "Trailer");
}

PyObject* start_response_call(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"status", "headers", "exc_info", nullptr};
  PyObject* status_obj = nullptr;
  PyObject* headers_obj = nullptr;
  PyObject* exc_info = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|O", const_cast<char**>(kwlist), &status_obj,
                                   &headers_obj, &exc_info)) {
    return nullptr;
  }
  WSGIResponseState& st = **reinterpret_cast<StartResponseObject*>(self)->state;
  if (exc_info != Py_None) {
    if (!PyTuple_Check(exc_info) || PyTuple_GET_SIZE(exc_info) != 3) {
      PyErr_SetString(PyExc_TypeError, "exc_info must be a (type, value, traceback) tuple");
      return nullptr;
    }
    if (st.head_sent) {
      // PEP 3333: too late to change the response; re-raise the app's exception.
      PyObject* t = PyTuple_GET_ITEM(exc_info, 0);
      PyObject* v = PyTuple_GET_ITEM(exc_info, 1);
      PyObject* tb = PyTuple_GET_ITEM(exc_info, 2);
      Py_XINCREF(t);
      Py_XINCREF(v);
      Py_XINCREF(tb);
      PyErr_Restore(t, v, tb == Py_None ? nullptr : tb);
      if (tb == Py_None) Py_DECREF(tb);
      return nullptr;
    }
  } else if (st.head_set) {
    PyErr_SetString(PyExc_AssertionError, "start_response called a second time without exc_info");
    return nullptr;
  }

  std::string status;
  if (!latin1(status_obj, "status", status)) return nullptr;
  int code = 0;
  auto [end, ec] =
      std::from_chars(status.data(), status.data() + std::min<size_t>(3, status.size()), code);
  if (status.size() < 4 || ec != std::errc() || end != status.data() + 3 || status[3] != ' ' ||
      code < 100) {
    PyErr_Format(PyExc_ValueError, "malformed status %R (want e.g. '200 OK')", status_obj);
    return nullptr;
  }
  // The phrase goes on the status line as given, so it must not be able to end it.
  std::string_view reason = std::string_view(status).substr(4);
  if (!is_valid_reason_phrase(reason)) {
    PyErr_Format(PyExc_ValueError, "invalid status %R: the reason phrase holds a control character",
                 status_obj);
    return nullptr;
  }
  if (!PyList_Check(headers_obj)) {
    PyErr_Format(PyExc_TypeError, "response headers must be a list, not %s",
                 Py_TYPE(headers_obj)->tp_name);
    return nullptr;
  }
  WSGIResponseHead head;
  head.status = code;
  head.reason.emplace(reason);
  long long content_length = -1;
  std::string name, value;
  for (Py_ssize_t i = 0; i < PyList_GET_SIZE(headers_obj); ++i) {
    PyObject* item = PyList_GET_ITEM(headers_obj, i);
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
      PyErr_Format(PyExc_TypeError, "response header %R is not a (name, value) tuple", item);
      return nullptr;
    }
    if (!latin1(PyTuple_GET_ITEM(item, 0), "header name", name) ||
        !latin1(PyTuple_GET_ITEM(item, 1), "header value", value)) {
      return nullptr;
    }
    if (!is_token(name) || has_control(value)) {
      PyErr_Format(PyExc_ValueError, "invalid response header %R", item);
      return nullptr;
    }
    if (hop_by_hop(name)) continue;  // the server owns the connection's framing
    if (detail::iequals(name, "Content-Length")) {
      long long n = -1;
      auto r = std::from_chars(value.data(), value.data() + value.size(), n);
      if (r.ec != std::errc() || r.ptr != value.data() + value.size() || n < 0) {
        PyErr_Format(PyExc_ValueError, "invalid Content-Length %R", item);
        return nullptr;
      }
      content_length = n;
    }
    head.headers.add(name, value);
  }
  st.head = std::move(head);
  st.content_length = content_length;
  st.head_set = true;
  return PyObject_GetAttrString(self, "write");
}

PyObject* write_method(PyObject* self, PyObject* data) {
  WSGIResponseState& st = **reinterpret_cast<StartResponseObject*>(self)->state;
  if (!PyBytes_Check(data)) {
    PyErr_Format(PyExc_TypeError, "write() argument must be bytes, not %s", Py_TYPE(data)->tp_name);
    return nullptr;
  }
  if (!st.head_set) {
    PyErr_SetString(PyExc_AssertionError, "write() before start_response()");
    return nullptr;
  }
  if (!st.sink) {
    PyErr_SetString(PyExc_RuntimeError, "write() after the response ended");
    return nullptr;
  }
  st.pending.append(PyBytes_AS_STRING(data), static_cast<std::size_t>(PyBytes_GET_SIZE(data)));
  // PEP 3333: the data is on its way to the client before write() returns.
  if (!st.flush_pending()) {
    PyErr_SetString(PyExc_OSError, "client disconnected");
    return nullptr;
  }
  Py_RETURN_NONE;
}

void start_response_dealloc(PyObject* self) {
  delete reinterpret_cast<StartResponseObject*>(self)->state;
  PyTypeObject* type = Py_TYPE(self);
  type->tp_free(self);
  Py_DECREF(type);
}

PyMethodDef methods[] = {{"write", write_method, METH_O, "write(bytes): send body data now"},
                         {nullptr, nullptr, 0, nullptr}};

PyType_Slot slots[] = {{Py_tp_call, reinterpret_cast<void*>(start_response_call)},
                       {Py_tp_dealloc, reinterpret_cast<void*>(start_response_dealloc)},
                       {Py_tp_methods, methods},
                       {0, nullptr}};

PyType_Spec spec = {"tronada.wsgi.StartResponse", sizeof(StartResponseObject), 0,
                    Py_TPFLAGS_DEFAULT, slots};

}  // namespace

bool WSGIResponseState::flush_pending() {
  if (!sink || client_gone) return false;
  const WSGIResponseHead* h = head_sent ? nullptr : &head;
  if (!h && pending.empty()) return true;
  head_sent = true;
  std::string data = std::move(pending);
  pending.clear();
  sent_bytes += static_cast<long long>(data.size());
  bool ok;
  {
    GILReleaser unlocked;
    ok = sink->send(h, std::move(data));
  }
  if (!ok) client_gone = true;
  return ok;
}

PyObject* make_start_response(std::shared_ptr<WSGIResponseState> state) {
  if (!g_type) {
    g_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&spec));
    if (!g_type) return nullptr;
  }
  auto* obj = PyObject_New(StartResponseObject, g_type);
  if (!obj) return nullptr;
  obj->state = new std::shared_ptr<WSGIResponseState>(std::move(state));
  return reinterpret_cast<PyObject*>(obj);
}

}  // namespace tronada
