"""Corners of RFC 9110/9112/6455 that real clients reach: chunk extensions with
whitespace and their limits, OWS made of tabs, `OPTIONS *` (compared with gunicorn for
WSGI), and the 426 answer to a WebSocket version we do not speak. Raw sockets, curl
(HTTP/1.1 and h2c) and python3-websockets against the built binaries."""
import asyncio
import json
import signal
import socket
import subprocess
import tempfile

import pytest

from conftest import BIN, free_port, wait_for_port

TRONADA = str(BIN / "tronada")
GUNICORN = "/usr/bin/gunicorn"
SERVER_METHODS = "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS"


class Proc:
    """A server process whose output goes to a file (a full pipe would stall it)."""

    def __init__(self, argv, port, cwd=None):
        self.port = port
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, cwd=cwd)
        wait_for_port(port, self.proc)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def run():
    procs = []

    def start(argv, cwd=None, port=None):
        port = port or free_port()
        p = Proc([a.replace("{port}", str(port)) for a in argv], port, cwd)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.stop()


def exchange(port, data, timeout=10):
    """Sends `data` and reads until the server closes (requests say Connection: close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
    return out


def parse(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return status, headers, body


def curl(*args):
    r = subprocess.run(["curl", "-sS", "--max-time", "15", *args], capture_output=True,
                       timeout=20)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode("latin-1")


def curl_head_and_body(*args):
    out = curl("-i", *args)
    head, _, body = out.partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split(" ")[1]), headers, body


# --- chunk extensions and OWS (http_test_server's /echo) ------------------------------


@pytest.fixture
def echo(start_server):
    return start_server("http_test_server")


def post_chunked(port, chunks, headers="Transfer-Encoding: chunked\r\n"):
    request = (f"POST /echo HTTP/1.1\r\nHost: h\r\n{headers}Connection: close\r\n\r\n"
               .encode("latin-1") + chunks)
    return parse(exchange(port, request))


def test_chunk_extensions_with_whitespace_are_ignored(echo):
    # RFC 9112 7.1.1: BWS around ";" and "=", several extensions, quoted values.
    chunks = (b"5 ; a = b\r\nhello\r\n"
              b"6\t;\tname=\"quoted ; \\\" value\" ; flag;x=1\r\n world\r\n"
              b"0 ; last\r\n\r\n")
    status, _, body = post_chunked(echo.port, chunks)
    assert status == 200, body
    assert json.loads(body)["body"] == "hello world"


def test_one_huge_chunk_extension_is_refused(echo):
    status, headers, _ = post_chunked(echo.port, b"5;a=" + b"b" * (256 * 1024) + b"\r\nhello\r\n")
    assert status == 400 and headers.get("connection") == "close"


def test_many_small_chunks_with_extensions_are_refused(echo):
    status, headers, _ = post_chunked(echo.port, b"1;a\r\nx\r\n" * 20000 + b"0\r\n\r\n")
    assert status == 413 and headers.get("connection") == "close"


@pytest.mark.parametrize("line", [b"5;a=\"b\r\n", b"5;a@b\r\n", b"5 \r\n", b"5;;a\r\n"])
def test_malformed_chunk_extensions_are_refused(echo, line):
    status, _, _ = post_chunked(echo.port, line + b"hello\r\n0\r\n\r\n")
    assert status == 400


def test_transfer_encoding_with_tabs_means_chunked(echo):
    status, _, body = post_chunked(echo.port, b"5\r\nhello\r\n0\r\n\r\n",
                                   "Transfer-Encoding:\tchunked\t\r\n")
    assert status == 200 and json.loads(body)["body"] == "hello"


def test_other_fields_with_tabs(echo):
    request = (b"POST /echo HTTP/1.1\r\nHost:\th\t\r\nContent-Length:\t5\t\r\n"
               b"Connection:\tclose\t\r\n\r\nhello")
    status, headers, body = parse(exchange(echo.port, request))
    assert status == 200 and json.loads(body)["body"] == "hello"
    assert headers.get("connection") == "close"


@pytest.mark.parametrize("fields", [
    "Transfer-Encoding:\tchunked\t\r\nContent-Length: 5\r\n",
    "Transfer-Encoding: chunked, identity\r\n",
    "Transfer-Encoding:\tchunked\t,\tidentity\t\r\n",
    "Transfer-Encoding:\r\n\tchunked\r\n",
])
def test_smuggling_defences_hold_with_tabs(echo, fields):
    status, headers, _ = post_chunked(echo.port, b"5\r\nhello\r\n0\r\n\r\n", fields)
    assert status == 400 and headers.get("connection") == "close"


# --- OPTIONS * ------------------------------------------------------------------------


OPTIONS_ASTERISK = b"OPTIONS * HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"


@pytest.fixture
def site(tmp_path):
    (tmp_path / "index.html").write_text("home\n")
    return tmp_path


def test_options_asterisk_on_tronada_static(run, site):
    server = run([TRONADA, "static", str(site), "-b", "127.0.0.1:{port}"])
    status, headers, body = parse(exchange(server.port, OPTIONS_ASTERISK))
    assert status == 200
    assert headers["allow"] == "GET, HEAD, OPTIONS"
    assert headers["content-length"] == "0" and body == b""
    # curl, over HTTP/1.1 and over h2c with prior knowledge (`:path *`).
    for proto in ("--http1.1", "--http2-prior-knowledge"):
        status, headers, body = curl_head_and_body(
            proto, "-X", "OPTIONS", "--request-target", "*", f"http://127.0.0.1:{server.port}/")
        assert status == 200, proto
        assert headers["allow"] == "GET, HEAD, OPTIONS", proto
        assert body == ""
    # OPTIONS on a file stays the file's business.
    status, _, _ = parse(exchange(
        server.port, b"OPTIONS /index.html HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"))
    assert status == 405


def test_options_asterisk_on_tronada_serve(run, site):
    (site / "tronada.toml").write_text('[[route]]\npath = "/"\nstatic.root = "."\n')
    server = run([TRONADA, "serve", "-c", str(site / "tronada.toml"), "-b", "127.0.0.1:{port}"])
    for proto in ("--http1.1", "--http2-prior-knowledge"):
        status, headers, body = curl_head_and_body(
            proto, "-X", "OPTIONS", "--request-target", "*", f"http://127.0.0.1:{server.port}/")
        assert status == 200, proto
        assert headers["allow"] == SERVER_METHODS, proto
        assert headers["content-length"] == "0" and body == ""


ENVIRON_APP = '''
def application(environ, start_response):
    body = ("%s PATH_INFO=%r SCRIPT_NAME=%r" % (
        environ["REQUEST_METHOD"], environ["PATH_INFO"], environ["SCRIPT_NAME"])).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
'''


def test_options_asterisk_reaches_a_wsgi_app_as_under_gunicorn(run, tmp_path):
    (tmp_path / "environ_app.py").write_text(ENVIRON_APP)
    ours = run([TRONADA, "wsgi", "environ_app:application", "-b", "127.0.0.1:{port}",
                "--chdir", str(tmp_path)], cwd=str(tmp_path))
    theirs = run([GUNICORN, "-w", "1", "-b", "127.0.0.1:{port}", "--chdir", str(tmp_path),
                  "environ_app:application"], cwd=str(tmp_path))
    results = []
    for server in (ours, theirs):
        status, _, body = parse(exchange(server.port, OPTIONS_ASTERISK))
        results.append((status, body))
    assert results[0] == results[1]
    assert results[0] == (200, b"OPTIONS PATH_INFO='*' SCRIPT_NAME=''")
    # And with curl over h2c, which gunicorn does not speak.
    assert curl("--http2-prior-knowledge", "-X", "OPTIONS", "--request-target", "*",
                f"http://127.0.0.1:{ours.port}/") == "OPTIONS PATH_INFO='*' SCRIPT_NAME=''"


# --- WebSocket version mismatch -------------------------------------------------------


def response_head(port, request):
    """The head of the first response on a kept-alive connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            assert chunk, head
            head += chunk
    return parse(head)


@pytest.mark.parametrize("version_line", [b"Sec-WebSocket-Version: 12\r\n", b""],
                         ids=["version-12", "no-version"])
def test_websocket_version_mismatch_is_426_with_upgrade(start_server, version_line):
    server = start_server("ws_echo")
    status, headers, _ = response_head(server.port, (
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
        version_line + b"\r\n"))
    assert status == 426
    # RFC 9110 15.5.22 (and 7.8 for Connection), RFC 6455 4.4.
    assert headers.get("upgrade") == "websocket"
    assert "upgrade" in headers.get("connection", "").lower()
    assert headers.get("sec-websocket-version") == "13"


def test_websocket_client_still_connects(start_server):
    websockets = pytest.importorskip("websockets")
    server = start_server("ws_echo")

    async def go():
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
            await ws.send("ping")
            return await ws.recv()

    assert asyncio.run(go()) == "ping"
