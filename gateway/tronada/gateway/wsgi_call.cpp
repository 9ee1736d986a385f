#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "tronada/gateway/wsgi_call.h"

#include <unistd.h>

#include "tronada/base/log.h"
#include "tronada/gateway/wsgi_body.h"
#include "tronada/gateway/wsgi_errors.h"
#include "tronada/gateway/wsgi_file_wrapper.h"
#include "tronada/gateway/wsgi_input.h"
#include "tronada/gateway/wsgi_interpreter.h"
#include "tronada/gateway/wsgi_start_response.h"

namespace tronada {

namespace {

// Collected bodies larger than this go out in pieces so a worker never holds a huge
// response in memory.
constexpr std::size_t kCollectLimit = 256 * 1024;

const char kInternalError[] =
    "<html><head><title>Internal Server Error</title></head><body><h1>Internal Server "
    "Error</h1></body></html>";

void set_item(PyObject* dict, const char* key, PyObject* value) {
  if (value) {
    PyDict_SetItemString(dict, key, value);
    Py_DECREF(value);
  }
}

void send_internal_error(WSGIResponseSink& sink) {
  WSGIResponseHead head;
  head.status = 500;
  head.headers.add("Content-Type", "text/html");
  head.headers.add("Content-Length", std::to_string(sizeof kInternalError - 1));
  sink.finish(&head, std::string(kInternalError, sizeof kInternalError - 1));
}

// Reads a FileWrapper's file with the GIL released, in blocks, honouring Content-Length.
// Returns false if the client went away. Throws nothing; read errors end the body.
bool send_file(int fd, long long offset, long blksize, WSGIResponseState& st) {
  std::size_t block = static_cast<std::size_t>(std::max(blksize, 64L * 1024));
  for (;;) {
    long long limit = st.content_length >= 0 ? st.content_length - st.sent_bytes -
                                                   static_cast<long long>(st.pending.size())
                                             : -1;
    if (limit == 0) return true;
    std::size_t want =
        limit > 0 ? std::min<std::size_t>(block, static_cast<std::size_t>(limit)) : block;
    std::string buf(want, '\0');
    ssize_t n;
    {
      GILReleaser unlocked;
      n = pread(fd, buf.data(), want, offset);
    }
    if (n <= 0) return true;
    offset += n;
    buf.resize(static_cast<std::size_t>(n));
    st.pending += buf;
    if (!st.flush_pending()) return false;
  }
}

}  // namespace

WSGICaller::WSGICaller(PyObject* app, bool multithread, bool multiprocess) : app_(app) {
  Py_INCREF(app_);
  template_ = PyDict_New();
  set_item(template_, "wsgi.version", Py_BuildValue("(ii)", 1, 0));
  set_item(template_, "wsgi.errors", wsgi_errors_stream());
  set_item(template_, "wsgi.multithread", PyBool_FromLong(multithread));
  set_item(template_, "wsgi.multiprocess", PyBool_FromLong(multiprocess));
  set_item(template_, "wsgi.run_once", PyBool_FromLong(0));
  set_item(template_, "wsgi.input_terminated", PyBool_FromLong(1));
  set_item(template_, "wsgi.file_wrapper", wsgi_file_wrapper_type());
  set_item(template_, "SERVER_SOFTWARE", PyUnicode_FromString("tronada"));
}

WSGICaller::~WSGICaller() {
  Py_XDECREF(template_);
  Py_XDECREF(app_);
}

PyObject* WSGICaller::build_environ(const WSGIEnviron& environ,
                                    const std::shared_ptr<WSGIBody>& body, bool https) {
  PyObject* env = PyDict_Copy(template_);
  if (!env) return nullptr;
  for (const auto& [k, v] : environ.vars) {
    PyObject* value = PyUnicode_DecodeLatin1(v.data(), static_cast<Py_ssize_t>(v.size()), nullptr);
    if (!value) {
      Py_DECREF(env);
      return nullptr;
    }
    PyDict_SetItemString(env, k.c_str(), value);
    Py_DECREF(value);
  }
  set_item(env, "wsgi.url_scheme", PyUnicode_FromString(https ? "https" : "http"));
  set_item(env, "wsgi.input", make_wsgi_input(body));
  return env;
}

void WSGICaller::call(const WSGIEnviron& environ, const std::shared_ptr<WSGIBody>& body,
                      bool head_request, bool https, WSGIResponseSink& sink) {
  auto st = std::make_shared<WSGIResponseState>();
  st->sink = &sink;
  st->head_request = head_request;
  PyObject* env = build_environ(environ, body, https);
  PyObject* start_response = env ? make_start_response(st) : nullptr;
  PyObject* result = nullptr;
  if (start_response) {
    PyObject* args[] = {env, start_response};
    result = PyObject_Vectorcall(app_, args, 2, nullptr);
  }
  Py_XDECREF(start_response);
  Py_XDECREF(env);

  std::string error;  // a traceback: the app failed
  bool collect = false;
  if (!result) {
    error = take_python_exception();
  } else {
    PyObject* filelike = nullptr;
    long blksize = 0;
    bool file_sent = false;
    if (unwrap_wsgi_file(result, &filelike, &blksize)) {
      // A real file: read it here without the GIL instead of through Python's read().
      PyObject* fileno = PyObject_CallMethod(filelike, "fileno", nullptr);
      PyObject* tell = fileno ? PyObject_CallMethod(filelike, "tell", nullptr) : nullptr;
      int fd = fileno ? static_cast<int>(PyLong_AsLong(fileno)) : -1;
      long long offset = tell ? PyLong_AsLongLong(tell) : -1;
      Py_XDECREF(fileno);
      Py_XDECREF(tell);
      if (fd >= 0 && offset >= 0 && !PyErr_Occurred()) {
        if (!st->head_set) {
          error = "AssertionError: app returned a FileWrapper before calling start_response";
        } else {
          send_file(fd, offset, blksize, *st);
        }
        file_sent = true;  // nothing left to iterate; close() below still runs
      }
      PyErr_Clear();
    }
    PyObject* iterable = file_sent ? nullptr : result;
    PyObject* it = nullptr;
    if (iterable) {
      collect = PyList_CheckExact(iterable) || PyTuple_CheckExact(iterable);
      it = PyObject_GetIter(iterable);
      if (!it) error = take_python_exception();
      if (!collect && it && PyObject_HasAttrString(iterable, "__len__")) {
        Py_ssize_t n = PyObject_Length(iterable);
        if (n == 1) collect = true;
        PyErr_Clear();
      }
    }
    while (it && error.empty()) {
      if (st->client_gone || sink.client_gone()) {
        st->client_gone = true;
        break;
      }
      PyObject* item = PyIter_Next(it);
      if (!item) {
        if (PyErr_Occurred()) error = take_python_exception();
        break;
      }
      if (!PyBytes_Check(item)) {
        error = std::string("TypeError: the app yielded ") + Py_TYPE(item)->tp_name + ", not bytes";
        Py_DECREF(item);
        break;
      }
      if (!st->head_set) {
        error = "AssertionError: the app yielded body data before calling start_response";
        Py_DECREF(item);
        break;
      }
      Py_ssize_t n = PyBytes_GET_SIZE(item);
      if (n > 0) {
        st->pending.append(PyBytes_AS_STRING(item), static_cast<std::size_t>(n));
        long long have = st->sent_bytes + static_cast<long long>(st->pending.size());
        bool complete = st->content_length >= 0 && have >= st->content_length;
        if ((!collect && !complete) || st->pending.size() > kCollectLimit) {
          st->flush_pending();
        }
      }
      Py_DECREF(item);
    }
    Py_XDECREF(it);
    // close() exactly once, whatever happened above (PEP 3333).
    PyObject* closable = result;
    if (closable && PyObject_HasAttrString(closable, "close")) {
      PyObject* r = PyObject_CallMethod(closable, "close", nullptr);
      if (!r) {
        std::string tb = take_python_exception();
        if (error.empty()) error = tb;
      }
      Py_XDECREF(r);
    }
    Py_XDECREF(result);
  }

  if (!error.empty()) {
    log::error(
        "wsgi",
        "error in the WSGI app for " +
            std::string(environ.find("REQUEST_METHOD") ? *environ.find("REQUEST_METHOD") : "") +
            " " + (environ.find("RAW_URI") ? *environ.find("RAW_URI") : "") + ":\n" + error);
    if (st->head_sent) {
      sink.abort();
    } else {
      send_internal_error(sink);
    }
  } else if (st->client_gone) {
    sink.abort();
  } else if (!st->head_set) {
    log::error("wsgi", "the WSGI app returned without calling start_response");
    send_internal_error(sink);
  } else {
    if (!st->head_sent && st->content_length < 0 && !head_request && st->head.status >= 200 &&
        st->head.status != 204 && st->head.status != 304) {
      // The whole body is here: a Content-Length spares the client chunked decoding.
      st->head.headers.add("Content-Length", std::to_string(st->pending.size()));
    }
    const WSGIResponseHead* h = st->head_sent ? nullptr : &st->head;
    st->head_sent = true;
    sink.finish(h, std::move(st->pending));
    st->pending.clear();
  }
  st->sink = nullptr;
}

}  // namespace tronada
