"""Reads request bodies through wsgi.input in every pattern PEP 3333 allows and reports
what it got (length, sha256) and whether each piece had the size the pattern promises:
the app side of test_wsgi_uploads.py, run under tronada and gunicorn alike."""
import hashlib
import json
import zlib
from urllib.parse import parse_qs


def _proc_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _pieces(inp, path, q):
    """Yields the body as the pattern reads it, checking each piece's promise."""
    if path == "/read":
        yield inp.read(), None
    elif path == "/read-length":
        yield inp.read(int(q.get("n", ["-1"])[0])), None
    elif path == "/read-n":
        n = int(q["n"][0])
        while True:
            piece = inp.read(n)
            if not piece:
                return
            yield piece, n  # exactly n, or fewer only at the very end
    elif path == "/readline":
        limit = int(q.get("limit", ["-1"])[0])
        while True:
            line = inp.readline(limit) if limit >= 0 else inp.readline()
            if not line:
                return
            yield line, ("line", limit)
    elif path == "/readlines":
        hint = int(q.get("hint", ["-1"])[0])
        while True:
            lines = inp.readlines(hint) if hint > 0 else inp.readlines()
            if not lines:
                return
            for line in lines:
                yield line, ("line", -1)
            if hint <= 0:
                return
    elif path == "/iter":
        for line in inp:
            yield line, ("line", -1)
    else:
        raise ValueError(path)


def application(environ, start_response):
    path = environ["PATH_INFO"]
    q = parse_qs(environ["QUERY_STRING"])
    inp = environ["wsgi.input"]
    if path == "/hello":
        body = b"hello"
    elif path == "/partial":
        # Reads only the start of the body and answers: the rest is the server's problem.
        got = inp.read(int(q["n"][0]))
        body = json.dumps({"length": len(got)}).encode()
    elif path == "/rss":
        # Reads in pieces and reports the worker's peak RSS growth (VmHWM, reset first
        # where the kernel allows) while the body streamed through.
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass
        before = _proc_kib("VmRSS")
        n = int(q["n"][0])
        total, crc = 0, 0
        while True:
            piece = inp.read(n)
            if not piece:
                break
            total += len(piece)
            crc = zlib.crc32(piece, crc)
        body = json.dumps({"length": total, "crc32": crc, "rss_kib": before,
                           "peak_kib": _proc_kib("VmHWM")}).encode()
    else:
        h = hashlib.sha256()
        total, count, bad = 0, 0, []
        last_short = False
        for piece, promise in _pieces(inp, path, q):
            if last_short and len(bad) < 5:
                bad.append(f"piece {count} after a short one")
            if isinstance(promise, int) and len(piece) != promise:
                last_short = True
            elif isinstance(promise, tuple):
                limit = promise[1]
                if not piece.endswith(b"\n") and len(piece) != limit:
                    last_short = True  # only the body's last line may lack its newline
                if b"\n" in piece[:-1] and len(bad) < 5:
                    bad.append(f"line {count} holds a newline")
                if limit >= 0 and len(piece) > limit and len(bad) < 5:
                    bad.append(f"line {count} is over the limit")
            h.update(piece)
            total += len(piece)
            count += 1
        body = json.dumps({"length": total, "sha256": h.hexdigest(), "pieces": count,
                           "bad": bad}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
