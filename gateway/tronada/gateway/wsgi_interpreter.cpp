#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "tronada/gateway/wsgi_interpreter.h"

#include <unistd.h>

#include <mutex>

namespace tronada {

namespace {
std::mutex g_init_mutex;
bool g_initialized = false;
}  // namespace

void PythonInterpreter::initialize(const std::vector<std::string>& python_path) {
  std::lock_guard lock(g_init_mutex);
  if (g_initialized) return;
  PyConfig config;
  PyConfig_InitPythonConfig(&config);
  // The host owns SIGINT/SIGTERM/SIGPIPE: Python must not install its own handlers.
  config.install_signal_handlers = 0;
  // Like `python -m`: the working directory (after --chdir) is importable.
  config.safe_path = 0;
  // Debian's interpreter, whatever python3 comes first on PATH: the standard library is
  // found relative to the program name.
  if (access("/usr/bin/python3", X_OK) == 0) {
    PyConfig_SetString(&config, &config.program_name, L"/usr/bin/python3");
  }
  PyStatus status = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  if (PyStatus_Exception(status)) {
    throw WSGIAppError(std::string("cannot start Python: ") +
                       (status.err_msg ? status.err_msg : "unknown error"));
  }
  PyObject* sys_path = PySys_GetObject("path");  // borrowed
  if (sys_path) {
    // Order: "" (cwd), then --pythonpath entries in the order given, then the rest.
    Py_ssize_t at = 0;
    PyObject* cwd = PyUnicode_FromString("");
    PyList_Insert(sys_path, at++, cwd);
    Py_DECREF(cwd);
    for (const auto& dir : python_path) {
      PyObject* entry = PyUnicode_DecodeFSDefault(dir.c_str());
      PyList_Insert(sys_path, at++, entry);
      Py_DECREF(entry);
    }
  }
  g_initialized = true;
  PyEval_SaveThread();  // release the GIL taken by initialization
}

bool PythonInterpreter::initialized() {
  std::lock_guard lock(g_init_mutex);
  return g_initialized;
}

void PythonInterpreter::finalize() {
  std::lock_guard lock(g_init_mutex);
  if (!g_initialized) return;
  PyGILState_Ensure();
  Py_FinalizeEx();
  g_initialized = false;
}

GILHolder::GILHolder() : state_(static_cast<int>(PyGILState_Ensure())) {}
GILHolder::~GILHolder() {
  PyGILState_Release(static_cast<PyGILState_STATE>(state_));
}

PythonThread::PythonThread() {
  PyGILState_STATE g = PyGILState_Ensure();
  state_ = PyThreadState_New(PyThreadState_Get()->interp);
  PyGILState_Release(g);
}

PythonThread::~PythonThread() {
  PyEval_RestoreThread(state_);
  PyThreadState_Clear(state_);
  PyThreadState_DeleteCurrent();
}

void PythonThread::acquire() {
  PyEval_RestoreThread(state_);
}
void PythonThread::release() {
  PyEval_SaveThread();
}

GILReleaser::GILReleaser() : state_(PyEval_SaveThread()) {}
GILReleaser::~GILReleaser() {
  PyEval_RestoreThread(state_);
}

std::string take_python_exception() {
  PyObject *type = nullptr, *exc = nullptr, *tb = nullptr;
  PyErr_Fetch(&type, &exc, &tb);
  if (!type) return "unknown Python error";
  PyErr_NormalizeException(&type, &exc, &tb);
  if (tb && exc) PyException_SetTraceback(exc, tb);
  Py_XDECREF(type);
  Py_XDECREF(tb);
  if (!exc) return "unknown Python error";
  std::string text;
  PyObject* tb_module = PyImport_ImportModule("traceback");
  PyObject* lines =
      tb_module ? PyObject_CallMethod(tb_module, "format_exception", "O", exc) : nullptr;
  if (lines) {
    PyObject* empty = PyUnicode_FromString("");
    PyObject* joined = PyUnicode_Join(empty, lines);
    if (joined) {
      const char* s = PyUnicode_AsUTF8(joined);
      if (s) text = s;
      Py_DECREF(joined);
    }
    Py_DECREF(empty);
    Py_DECREF(lines);
  }
  Py_XDECREF(tb_module);
  if (text.empty()) {
    PyErr_Clear();
    PyObject* s = PyObject_Str(exc);
    const char* c = s ? PyUnicode_AsUTF8(s) : nullptr;
    text = std::string(Py_TYPE(exc)->tp_name) + ": " + (c ? c : "?");
    Py_XDECREF(s);
  }
  PyErr_Clear();
  Py_DECREF(exc);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

PyObject* load_wsgi_app(std::string_view spec) {
  std::string module_name(spec);
  std::string attr = "application";
  if (auto colon = spec.find(':'); colon != std::string_view::npos) {
    module_name = std::string(spec.substr(0, colon));
    attr = std::string(spec.substr(colon + 1));
  }
  if (module_name.empty() || attr.empty()) {
    throw WSGIAppError("'" + std::string(spec) + "' is not MODULE:CALLABLE");
  }
  PyObject* module = PyImport_ImportModule(module_name.c_str());
  if (!module) {
    throw WSGIAppError("cannot import '" + module_name + "':\n" + take_python_exception());
  }
  // The callable part is an expression in the module's namespace ("app", "create_app()",
  // "wsgi.application"), as gunicorn evaluates it.
  PyObject* globals = PyModule_GetDict(module);  // borrowed
  PyObject* app = PyRun_String(attr.c_str(), Py_eval_input, globals, globals);
  Py_DECREF(module);
  if (!app) {
    std::string tb = take_python_exception();
    throw WSGIAppError("cannot find '" + attr + "' in module '" + module_name + "':\n" + tb);
  }
  if (!PyCallable_Check(app)) {
    std::string type = Py_TYPE(app)->tp_name;
    Py_DECREF(app);
    throw WSGIAppError("'" + attr + "' in module '" + module_name + "' is a " + type +
                       ", not a WSGI callable");
  }
  return app;
}

}  // namespace tronada
