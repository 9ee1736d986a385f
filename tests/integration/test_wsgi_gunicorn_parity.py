"""`tronada wsgi` beside gunicorn on the same app: the status line carries the app's own
reason phrase, and SERVER_NAME / SERVER_PORT name the socket the request arrived on
(TCP and Unix), not the Host header."""
import json
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import BIN, free_port
from test_wsgi import APPS, GUNICORN, WSGIServer


class UnixServer(WSGIServer):
    """A server bound to a Unix socket: ready once the socket accepts."""

    def __init__(self, argv, path):
        self.port = None
        self.path = path
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=str(APPS))
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(path)
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("no server on " + path + "\n" + self.output())
                time.sleep(0.02)


@pytest.fixture
def serve(tmp_path):
    """serve(kind, bind) starts tronada or gunicorn on server_facts:application; bind
    is "tcp" or "unix"."""
    servers = []

    def start(kind, bind):
        if bind == "unix":
            addr = str(tmp_path / f"{kind}.sock")
            where = f"unix:{addr}"
        else:
            addr = free_port()
            where = f"127.0.0.1:{addr}"
        if kind == "tronada":
            argv = [str(BIN / "tronada"), "wsgi", "server_facts:application", "-b", where,
                    "--pythonpath", str(APPS)]
        else:
            argv = [GUNICORN, "-w", "1", "-b", where, "--chdir", str(APPS),
                    "server_facts:application"]
        s = UnixServer(argv, addr) if bind == "unix" else WSGIServer(argv, addr)
        servers.append(s)
        return s

    yield start
    for s in servers:
        if s.proc.poll() is None:
            s.proc.send_signal(signal.SIGTERM)
            try:
                s.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                s.proc.kill()
                s.proc.wait()


def exchange(server, raw):
    """Sends raw request bytes and returns (status line, headers block, body)."""
    if server.port is None:
        c = socket.socket(socket.AF_UNIX)
        c.connect(server.path)
    else:
        c = socket.create_connection(("127.0.0.1", server.port))
    with c:
        c.settimeout(20)
        c.sendall(raw)
        out = b""
        while True:
            piece = c.recv(65536)
            if not piece:
                break
            out += piece
    head, _, body = out.partition(b"\r\n\r\n")
    status_line, _, headers = head.partition(b"\r\n")
    return status_line, headers, body


def get(path, host=b"example.test:8080"):
    host_line = b"Host: " + host + b"\r\n" if host is not None else b""
    return b"GET " + path + b" HTTP/1.1\r\n" + host_line + b"Connection: close\r\n\r\n"


# --------------------------------------------------------------------------------------
# Item 2: the app's reason phrase


STATUSES = ["418 I'm a teapot", "299 Kit Custom", "200 Fine Thanks", "200 OK",
            "404 Not Found", "503 Come Back Later", "200 Caf\xe9", "201 "]


def status_query(status):
    return "".join(c if c.isascii() and c.isalnum() else "%%%02X" % ord(c)
                   for c in status).encode()


def test_reason_phrase_as_the_app_gave_it(serve):
    ours = serve("tronada", "tcp")
    theirs = serve("gunicorn", "tcp")
    for status in STATUSES:
        raw = get(b"/status?" + status_query(status))
        want = b"HTTP/1.1 " + status.encode("latin-1")
        assert exchange(ours, raw)[0] == want, status
        assert exchange(theirs, raw)[0] == want, status  # gunicorn agrees


@pytest.mark.parametrize("status", ["200 OK\r\nX-Injected: 1", "200 OK\n", "200 O\x00K",
                                    "200 OK\x01", "200 OK\x7f", "200 OK\x1b[31m"])
def test_reason_phrase_with_control_characters_is_500(serve, status):
    """Refused with a logged error; the header gunicorn 20.1 would inject never goes out."""
    ours = serve("tronada", "tcp")
    line, headers, _ = exchange(ours, get(b"/status?" + status_query(status)))
    assert line == b"HTTP/1.1 500 Internal Server Error"
    assert b"X-Injected" not in headers
    assert exchange(ours, get(b"/status?200%20OK"))[0] == b"HTTP/1.1 200 OK"
    ours.stop()
    assert "invalid status" in ours.output() and "control character" in ours.output()


def test_http2_carries_the_status_code(serve):
    """HTTP/2 has no reason phrase: the code goes through alone."""
    ours = serve("tronada", "tcp")
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "20", "--http2-prior-knowledge", "-o", "/dev/null",
         "-w", "%{http_version} %{http_code}",
         f"http://127.0.0.1:{ours.port}/status?418%20I%27m%20a%20teapot"],
        capture_output=True, check=True, text=True).stdout
    assert out == "2 418"


# --------------------------------------------------------------------------------------
# Item 3: SERVER_NAME and SERVER_PORT


def facts(server, host=b"example.test:8080"):
    line, _, body = exchange(server, get(b"/env", host))
    assert line.startswith(b"HTTP/1.1 200"), line
    return json.loads(body)


def test_server_name_and_port_name_the_tcp_socket(serve):
    for kind in ("tronada", "gunicorn"):
        s = serve(kind, "tcp")
        got = facts(s)
        assert (got["SERVER_NAME"], got["SERVER_PORT"]) == ("127.0.0.1", str(s.port)), kind
        assert got["HTTP_HOST"] == "example.test:8080"


def test_server_name_and_port_over_http2(serve):
    ours = serve("tronada", "tcp")
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "20", "--http2-prior-knowledge", "-H",
         "Host: example.test:8080", f"http://127.0.0.1:{ours.port}/env"],
        capture_output=True, check=True).stdout
    got = json.loads(out)
    assert (got["SERVER_NAME"], got["SERVER_PORT"]) == ("127.0.0.1", str(ours.port))


def test_server_name_and_port_over_a_unix_socket_match_gunicorn(serve):
    ours = serve("tronada", "unix")
    theirs = serve("gunicorn", "unix")
    for host in (b"example.test:8080", b"example.test"):
        a, b = facts(ours, host), facts(theirs, host)
        assert a == b, host
    assert (a["SERVER_NAME"], a["SERVER_PORT"]) == ("example.test", "80")
    # Without Host (HTTP/1.0): the socket's own path, and no port.
    for s in (ours, theirs):
        line, _, body = exchange(s, b"GET /env HTTP/1.0\r\n\r\n")
        got = json.loads(body)
        assert (got["SERVER_NAME"], got["SERVER_PORT"]) == (s.path, ""), s.path
