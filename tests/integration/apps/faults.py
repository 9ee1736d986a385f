"""A WSGI app that misbehaves on request, for the worker supervision tests.

/pid            this worker's pid
/slow?S         sleeps S seconds, then the pid
/segv           crashes the process the way a buggy C extension does
/exit3          os._exit(3)
/hang           sleeps for an hour (a stuck app, for --timeout)
/alloc?M        keeps M more MiB alive in this worker, then the pid
/rss            this worker's resident set size in bytes
/file?PATH      PATH through wsgi.file_wrapper, counting calls to the file's read()
/reads          how many times read() was called on such files so far
"""
import ctypes
import io
import os
import time

_hoard = []
_reads = [0]


class _CountingFile(io.FileIO):
    def read(self, *args):
        _reads[0] += 1
        return super().read(*args)


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def application(environ, start_response):
    path = environ["PATH_INFO"]
    arg = environ.get("QUERY_STRING", "")
    if path == "/segv":
        ctypes.string_at(0)
    elif path == "/exit3":
        os._exit(3)
    elif path == "/hang":
        time.sleep(3600)
    elif path == "/slow":
        time.sleep(float(arg or "0.1"))
    elif path == "/alloc":
        # Touch every page so the memory is resident, not just reserved.
        _hoard.append(bytearray(b"x" * (int(arg or "1") * 1024 * 1024)))
    elif path in ("/rss", "/reads"):
        body = str(_rss() if path == "/rss" else _reads[0]).encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    elif path == "/file":
        f = _CountingFile(arg, "rb")
        size = os.fstat(f.fileno()).st_size
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(size))])
        return environ["wsgi.file_wrapper"](f, 64 * 1024)
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
