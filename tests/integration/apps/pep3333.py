"""A WSGI app exercising PEP 3333, served wrapped in wsgiref.validate.validator (as
`application`) so that any slip of the server fails loudly; `raw` is the same app
unwrapped, for the paths where the validator's wrappers would hide the server's own
fast paths (wsgi.file_wrapper)."""
import hashlib
import json
import os
import threading
import time
from wsgiref.validate import validator

STATS = {"calls": 0, "iterables": 0, "closes": 0}
LOCK = threading.Lock()
RELEASE = threading.Event()


def count(key):
    with LOCK:
        STATS[key] += 1


class Counted:
    """An iterable whose close() is counted: the server must call it exactly once."""

    def __init__(self, chunks, fail_after=None, endless=False):
        self.chunks = chunks
        self.fail_after = fail_after
        self.endless = endless
        count("iterables")

    def __iter__(self):
        n = 0
        while True:
            for c in self.chunks:
                if self.fail_after is not None and n == self.fail_after:
                    raise RuntimeError("failed mid-body")
                n += 1
                yield c
            if not self.endless:
                return

    def close(self):
        count("closes")


def text(start_response, status, body, extra=()):
    body = body.encode() if isinstance(body, str) else body
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
                   + list(extra))
    return [body]


def raw(environ, start_response):
    count("calls")
    path = environ["PATH_INFO"]
    method = environ["REQUEST_METHOD"]
    if path == "/environ":
        out = {k: v for k, v in environ.items() if isinstance(v, (str, bool, int, tuple))}
        out["wsgi.version"] = list(environ["wsgi.version"])
        out["pid"] = os.getpid()
        return text(start_response, "200 OK", json.dumps(out, sort_keys=True))
    if path == "/pid":
        return text(start_response, "200 OK", str(os.getpid()))
    if path == "/upload":
        # Read in pieces, as apps handling big uploads do; the server must not need the
        # whole body before the app starts.
        h = hashlib.sha256()
        n = 0
        stream = environ["wsgi.input"]
        while True:
            chunk = stream.read(65536)
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
        return text(start_response, "200 OK", json.dumps({
            "length": n, "sha256": h.hexdigest(),
            "content_length": environ.get("CONTENT_LENGTH"),
            "terminated": environ.get("wsgi.input_terminated")}))
    if path == "/lines":
        stream = environ["wsgi.input"]
        first = stream.readline()
        rest = stream.readlines()
        return text(start_response, "200 OK", json.dumps(
            [first.decode()] + [line.decode() for line in rest]))
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written-")
        write(b"then-")
        return Counted([b"yielded"])
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Counted([b"x" * 1000] * 1000)
    if path == "/hold":
        # The first piece must reach the client before the app goes on (PEP 3333: no
        # block is held back); the test releases the app with /release.
        start_response("200 OK", [("Content-Type", "text/plain")])

        def gen():
            yield b"first;"
            RELEASE.wait(10)
            RELEASE.clear()
            yield b"second"
        return Counted(gen())
    if path == "/release":
        RELEASE.set()
        return text(start_response, "200 OK", "released")
    if path == "/endless":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return Counted([b"y" * 65536], endless=True)
    if path == "/file":
        size = int(environ["QUERY_STRING"] or "1000000")
        name = os.path.join(os.environ.get("TMPDIR", "/tmp"), "tronada-wsgi-file-%d" % size)
        if not os.path.exists(name):
            with open(name + ".tmp", "wb") as f:
                f.write(bytes(range(256)) * (size // 256) + b"z" * (size % 256))
            os.replace(name + ".tmp", name)
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(size))])
        return environ["wsgi.file_wrapper"](open(name, "rb"), 32768)
    if path == "/raise":
        raise RuntimeError("boom")
    if path == "/raise-after-start":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "100000")])
        return Counted([b"a" * 1000] * 10, fail_after=3)
    if path == "/exc-info":
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("changed my mind")
        except ValueError:
            import sys
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")],
                           sys.exc_info())
        return [b"replaced"]
    if path == "/errors":
        environ["wsgi.errors"].write("a message for the error log\n")
        environ["wsgi.errors"].flush()
        return text(start_response, "200 OK", "logged")
    if path == "/status/204":
        start_response("204 No Content", [])
        return []
    if path == "/status/304":
        start_response("304 Not Modified", [("ETag", '"x"')])
        return []
    if path == "/stats":
        with LOCK:
            return text(start_response, "200 OK", json.dumps(STATS))
    if path == "/slow":
        time.sleep(float(environ["QUERY_STRING"] or "0.05"))
        return text(start_response, "200 OK", "slow")
    if path == "/os-environ":
        return text(start_response, "200 OK", os.environ.get("TRONADA_TEST_MARK", ""))
    if path == "/head":
        return text(start_response, "200 OK", "a body HEAD must not see")
    if method == "POST" and path == "/echo":
        n = int(environ.get("CONTENT_LENGTH") or 0)
        data = environ["wsgi.input"].read(n)
        return text(start_response, "200 OK", data)
    return text(start_response, "404 Not Found", "not found: " + path)


application = validator(raw)
