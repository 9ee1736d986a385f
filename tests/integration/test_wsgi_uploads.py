"""`tronada wsgi`: request bodies larger than the body buffer (1 MiB), read through
wsgi.input in every pattern (read(), read(n) for n below and above the buffer,
readline(), readline(limit), readlines(), readlines(hint), iteration), sent with
Content-Length and chunked, by curl (with and without Expect: 100-continue) and Python
clients, through Flask and Django too, with gunicorn as the reference; the worker's
memory stays bounded by the buffer, not by the body.

Before issue 16, read(n) past the buffer waited for n bytes to be buffered while the
loop had stopped reading until the buffer drained: the request never answered and the
worker thread was wedged for good."""
import hashlib
import http.client
import json
import os
import socket
import subprocess
import threading
import zlib

import pytest

from conftest import BIN, free_port
from test_wsgi import APPS, GUNICORN, WSGIServer

MIB = 1 << 20
# Line lengths the bodies cycle through: short lines, an empty one, and lines longer
# than the 1 MiB buffer (3 MB, 1.2 MB), so readline() has to collect in steps too.
LINE_CYCLE = [1, 80, 3_000_000, 200, 0, 1_200_000, 40_000, 5]


def make_body(size, seed):
    """`size` random bytes whose newlines sit where LINE_CYCLE puts them."""
    rnd = bytearray(hashlib.shake_256(seed.to_bytes(4, "big")).digest(size))
    rnd = bytearray(rnd.translate(bytes.maketrans(b"\n", b"x")))
    pos, i = 0, 0
    while True:
        pos += LINE_CYCLE[i % len(LINE_CYCLE)]
        if pos >= size:
            break
        rnd[pos] = 0x0A
        pos += 1
        i += 1
    return bytes(rnd)


@pytest.fixture
def serve():
    """serve(kind, spec, *args) starts `tronada wsgi` (kind "tronada", with args) or
    gunicorn on APPS/spec, on a free port."""
    servers = []

    def start(kind, spec, *args):
        port = free_port()
        if kind == "tronada":
            argv = [str(BIN / "tronada"), "wsgi", spec, "-b", f"127.0.0.1:{port}",
                    "--pythonpath", str(APPS), *args]
        else:
            argv = [GUNICORN, "-w", "1", "-b", f"127.0.0.1:{port}", "--chdir", str(APPS),
                    spec]
        s = WSGIServer(argv, port)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()
        assert "Exception ignored" not in s.output(), s.output()


def post(port, path, body, chunked=False, conn=None, timeout=60):
    """POSTs `body` (bytes, or an iterable of blocks with chunked=True); returns
    (status, json or raw bytes). `timeout` only keeps a hang from stalling the run."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    if chunked:
        blocks = (body[i:i + 65536] for i in range(0, len(body), 65536)) \
            if isinstance(body, bytes) else body
        conn.request("POST", path, body=blocks, encode_chunked=True,
                     headers={"Transfer-Encoding": "chunked"})
    else:
        conn.request("POST", path, body=body)
    r = conn.getresponse()
    data = r.read()
    if own:
        conn.close()
    try:
        return r.status, json.loads(data)
    except ValueError:
        return r.status, data


PATTERNS = [
    "/read",
    "/read-length?n={size}",
    "/read-n?n=65536",
    "/read-n?n=1000",
    "/read-n?n=3000000",  # more than the buffer: filled in steps
    "/readline",
    "/readline?limit=2000000",  # a limit past the buffer
    "/readline?limit=100",
    "/readlines",
    "/readlines?hint=100000",
    "/iter",
]


def check(got, body):
    status, result = got
    assert status == 200, result
    assert result["length"] == len(body)
    assert result["sha256"] == hashlib.sha256(body).hexdigest()
    assert result["bad"] == []


@pytest.mark.parametrize("size", [1_500_000, 5_000_000])
def test_every_read_pattern(serve, size):
    s = serve("tronada", "uploads:application")
    body = make_body(size, size)
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
    for chunked in (False, True):
        for pattern in PATTERNS:
            path = pattern.format(size=size)
            got = post(s.port, path, body, chunked=chunked, conn=conn)
            try:
                check(got, body)
            except AssertionError as e:
                raise AssertionError(f"{path} chunked={chunked}: {e}") from None
    conn.close()


def test_50mb_bodies(serve):
    s = serve("tronada", "uploads:application")
    body = make_body(50_000_000, 50)
    for path, chunked in [("/read-length?n=50000000", False), ("/read-n?n=3000000", True),
                          ("/readline", False), ("/iter", True)]:
        check(post(s.port, path, body, chunked=chunked), body)


def test_same_pieces_as_gunicorn(serve):
    """Each pattern reads the same pieces (count, sizes via `bad`) under both servers."""
    body = make_body(5_000_000, 7)
    ours = serve("tronada", "uploads:application")
    theirs = serve("gunicorn", "uploads:application")
    for pattern in PATTERNS:
        path = pattern.format(size=len(body))
        a = post(ours.port, path, body)
        b = post(theirs.port, path, body)
        assert a == b, path
        check(a, body)


@pytest.mark.parametrize("size", [1_500_000, 5_000_000])
@pytest.mark.parametrize("expect", ["Expect: 100-continue", "Expect:"])
def test_curl_data_binary(serve, tmp_path, size, expect):
    """The issue's own reproduction: curl --data-binary @file, read(CONTENT_LENGTH)."""
    s = serve("tronada", "uploads:application")
    f = tmp_path / "body"
    body = make_body(size, 3)
    f.write_bytes(body)
    for extra in ([], ["-H", "Transfer-Encoding: chunked"]):
        out = subprocess.run(
            ["curl", "-sS", "--max-time", "60", "-H", expect, *extra, "--data-binary", f"@{f}",
             f"http://127.0.0.1:{s.port}/read-length?n={size}"],
            capture_output=True, check=True).stdout
        check((200, json.loads(out)), body)


@pytest.mark.parametrize("size", [1_500_000, 5_000_000, 50_000_000])
def test_flask_get_data(serve, size):
    s = serve("tronada", "flask_upload:app")
    body = make_body(size, 11)
    want = {"length": size, "sha256": hashlib.sha256(body).hexdigest()}
    assert post(s.port, "/upload", body) == (200, want)
    if size == 5_000_000:
        # werkzeug reads a chunked body to its end (wsgi.input_terminated).
        assert post(s.port, "/upload", body, chunked=True) == (200, want)


def test_django_request_body(serve):
    s = serve("tronada", "django_upload:application")
    for size in (1_500_000, 5_000_000, 50_000_000):
        body = make_body(size, 13)
        want = {"length": size, "sha256": hashlib.sha256(body).hexdigest()}
        assert post(s.port, "/upload", body) == (200, want), size


def test_flask_and_django_match_gunicorn(serve):
    body = make_body(5_000_000, 17)
    for spec, chunked in [("flask_upload:app", False), ("flask_upload:app", True),
                          ("django_upload:application", False)]:
        ours = serve("tronada", spec)
        theirs = serve("gunicorn", spec)
        assert post(ours.port, "/upload", body, chunked) == \
            post(theirs.port, "/upload", body, chunked), (spec, chunked)


def test_django_answers_a_chunked_body_it_does_not_read(serve):
    """Django 3.2 reads CONTENT_LENGTH bytes, so a chunked body is empty to it, and it
    answers before the client finished sending. The client still gets the answer
    (gunicorn closes with the body unread, and the client's send fails with a reset)."""
    s = serve("tronada", "django_upload:application")
    status, result = post(s.port, "/upload", make_body(1_500_000, 23), chunked=True)
    assert (status, result["length"]) == (200, 0)


def test_worker_goes_on_after_big_uploads(serve):
    s = serve("tronada", "uploads:application")  # one worker, one thread
    body = make_body(20_000_000, 19)
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
    check(post(s.port, "/read-length?n=20000000", body, conn=conn), body)
    # The same connection, then a new one: the thread is free again.
    assert post(s.port, "/hello", b"", conn=conn) == (200, b"hello")
    conn.close()
    assert post(s.port, "/hello", b"") == (200, b"hello")

    # An app that reads only the start of a big body and answers: the server takes the
    # rest off the wire (or closes), and the worker serves the next request.
    with socket.create_connection(("127.0.0.1", s.port), timeout=60) as c:
        c.sendall(b"POST /partial?n=1000000 HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body))

        def send_rest():
            try:
                c.sendall(body)
            except OSError:
                pass  # the server may close once it answered

        sender = threading.Thread(target=send_rest)
        sender.start()
        response = b""
        while b"\r\n\r\n" not in response or not response.endswith(b"}"):
            piece = c.recv(65536)
            assert piece, response
            response += piece
        assert response.startswith(b"HTTP/1.1 200 "), response
        assert response.endswith(b'{"length": 1000000}'), response
        sender.join()
    assert post(s.port, "/hello", b"") == (200, b"hello")


@pytest.mark.parametrize("piece,total", [(65536, 200_000_000), (8 * MIB, 100_000_000)])
def test_memory_stays_bounded(serve, piece, total):
    """A body streamed from a generator (never held by the client either) and read in
    pieces: the worker's peak RSS grows by far less than the body."""
    s = serve("tronada", "uploads:application")
    block = hashlib.shake_256(b"block").digest(256 * 1024)
    count = total // len(block)
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(block, crc)
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=120)
    conn.request("POST", f"/rss?n={piece}", body=(block for _ in range(count)),
                 headers={"Content-Length": str(count * len(block))})
    r = conn.getresponse()
    result = json.loads(r.read())
    conn.close()
    assert r.status == 200
    assert result["length"] == count * len(block) and result["crc32"] == crc
    growth = (result["peak_kib"] - result["rss_kib"]) * 1024
    assert growth < 64 * MIB, f"peak RSS grew by {growth / MIB:.1f} MiB"
