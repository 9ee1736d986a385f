// The embedded CPython interpreter: started once per process, its GIL, and loading the
// WSGI callable named by MODULE:CALLABLE.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

typedef struct _object PyObject;
typedef struct _ts PyThreadState;

namespace tronada {

/// The app could not be loaded; what() is the Python traceback or the reason.
class WSGIAppError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// CPython, embedded. CPython can be initialized once per process, so this is a process
/// singleton: initialize() starts it (idempotent) and leaves the GIL released, so any
/// thread may take it through GILHolder or a PythonThread. Forked workers initialize
/// their own interpreter after fork; the master never starts one.
class PythonInterpreter {
 public:
  /// Starts the interpreter with `python_path` prepended to sys.path (after the current
  /// directory, which comes first as for `python -m`). Signal handlers stay the host's.
  static void initialize(const std::vector<std::string>& python_path = {});
  static bool initialized();
  /// Py_FinalizeEx: runs atexit handlers. No thread may be inside Python.
  static void finalize();
};

/// Holds the GIL on any thread for a scope (PyGILState_Ensure). For the few calls made
/// outside the worker pool: loading the app, tests.
class GILHolder {
 public:
  GILHolder();
  ~GILHolder();
  GILHolder(const GILHolder&) = delete;
  GILHolder& operator=(const GILHolder&) = delete;

 private:
  int state_;
};

/// A worker thread's Python thread state, made once per thread so that taking the GIL
/// per request is a PyEval_RestoreThread, not a thread-state allocation.
class PythonThread {
 public:
  PythonThread();   // GIL not held after
  ~PythonThread();  // deletes the thread state
  void acquire();   // takes the GIL
  void release();   // gives it back
  PythonThread(const PythonThread&) = delete;
  PythonThread& operator=(const PythonThread&) = delete;

 private:
  PyThreadState* state_;
};

/// Releases the GIL for a scope in a thread that holds it (a blocking wait).
class GILReleaser {
 public:
  GILReleaser();
  ~GILReleaser();
  GILReleaser(const GILReleaser&) = delete;
  GILReleaser& operator=(const GILReleaser&) = delete;

 private:
  PyThreadState* state_;
};

/// The pending Python exception as traceback text ("Traceback (most recent call
/// last): ..."), cleared. Needs the GIL.
std::string take_python_exception();

/// Imports MODULE and evaluates CALLABLE in it ("pkg.mod:app", "mod:create_app()" calls a
/// factory, as gunicorn allows; a missing ":CALLABLE" means ":application"). Returns a
/// new reference to a callable. Throws WSGIAppError with the traceback, or with a
/// sentence when the name is not found or not callable. Needs the GIL.
PyObject* load_wsgi_app(std::string_view spec);

}  // namespace tronada
