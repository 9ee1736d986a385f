"""AsyncHTTPClient (through tests/support/http_fetch) against real peers: Python's
http.server, a Tornado 6 app, our own server, raw sockets that misbehave, and TLS with a
certificate made for the test."""
import gzip
import http.server
import json
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
import sys
import textwrap
import threading
import time

import pytest

from conftest import BIN, free_port, wait_for_port

FETCH = BIN / "http_fetch"


def fetch(*args, timeout=30):
    p = subprocess.run([str(FETCH), *map(str, args)], capture_output=True, text=True,
                       timeout=timeout)
    assert p.returncode == 0, p.stderr
    lines = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    return lines[:-1], lines[-1]["stats"]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    connections = 0

    def setup(self):
        type(self).connections += 1
        super().setup()

    def log_message(self, *args):
        pass

    def send_body(self, body, code=200, headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path = self.path
        if path == "/hello":
            self.send_body(b"hello from python")
        elif path == "/connections":
            self.send_body(str(type(self).connections).encode())
        elif path.startswith("/redirect/"):
            n = int(path.rsplit("/", 1)[1])
            target = "/hello" if n == 0 else f"/redirect/{n - 1}"
            self.send_body(b"", 302, [("Location", target)])
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (b"alpha-", b"beta-", b"gamma"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
                time.sleep(0.02)
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/gzip":
            assert "gzip" in self.headers.get("Accept-Encoding", "")
            self.send_body(gzip.compress(b"squeezed " * 1000), headers=[("Content-Encoding", "gzip")])
        elif path == "/auth":
            self.send_body(self.headers.get("Authorization", "none").encode())
        else:
            self.send_body(b"not found", 404)

    def do_POST(self):
        if self.headers.get("Transfer-Encoding") == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                chunk = self.rfile.read(size + 2)[:size]
                if size == 0:
                    break
                body += chunk
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/see-other":
            self.send_body(b"", 303, [("Location", "/hello")])
        else:
            self.send_body(b"got " + body)


@pytest.fixture
def python_server():
    Handler.connections = 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def raw_server(reply, answer=True):
    """A socket that answers every connection with `reply` bytes (after reading the
    request head), or never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    held = []

    def serve():
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            held.append(conn)
            if answer:
                data = b""
                while b"\r\n\r\n" not in data:
                    more = conn.recv(65536)
                    if not more:
                        break
                    data += more
                conn.sendall(reply)
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return sock, held


def test_keep_alive_reuses_one_connection_against_python(python_server):
    results, stats = fetch("--count", 5, python_server + "/hello")
    assert [r["body"] for r in results] == ["hello from python"] * 5
    assert stats == {"opened": 1, "reused": 4}
    results, _ = fetch(python_server + "/connections")
    assert results[0]["body"] == "2"  # one for the five fetches, one for this one


def test_redirects_and_max_redirects(python_server):
    results, _ = fetch(python_server + "/redirect/3")
    assert results[0]["code"] == 200
    assert results[0]["body"] == "hello from python"
    assert results[0]["effective_url"] == python_server + "/hello"
    results, _ = fetch("--max-redirects", 2, python_server + "/redirect/3")
    assert results[0]["code"] == 302 and "302" in results[0]["error"]
    results, _ = fetch("--no-redirects", python_server + "/redirect/0")
    assert results[0]["code"] == 302
    results, _ = fetch("--method", "POST", "--body", "x", python_server + "/see-other")
    assert results[0]["code"] == 200 and results[0]["body"] == "hello from python"


def test_chunked_gzip_and_streaming(python_server):
    results, _ = fetch(python_server + "/chunked")
    assert results[0]["body"] == "alpha-beta-gamma"
    results, _ = fetch("--stream", python_server + "/chunked")
    assert results[0]["body"] == "alpha-beta-gamma" and results[0]["pieces"] >= 2
    results, _ = fetch(python_server + "/gzip")
    assert results[0]["body"] == "squeezed " * 1000
    assert results[0]["headers"]["X-Consumed-Content-Encoding"] == "gzip"
    results, _ = fetch("--max-body", 100, python_server + "/gzip")
    assert results[0]["code"] == 599 and "max_body_size" in results[0]["error"]


def test_request_bodies_head_and_auth(python_server):
    results, _ = fetch("--method", "POST", "--body", "payload", python_server + "/echo")
    assert results[0]["body"] == "got payload"
    results, _ = fetch("--method", "POST", "--body", "streamed body", "--chunked-body",
                       python_server + "/echo")
    assert results[0]["body"] == "got streamed body"
    results, _ = fetch("--method", "HEAD", "--count", 2, python_server + "/hello")
    assert [r["code"] for r in results] == [200, 200]
    assert results[0]["headers"]["Content-Length"] == str(len("hello from python"))
    results, _ = fetch("--user", "Aladdin", "--password", "open sesame", python_server + "/auth")
    assert results[0]["body"] == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    results, _ = fetch(python_server + "/missing")
    assert results[0]["code"] == 404 and results[0]["body"] == "not found"


def test_timeout_against_a_server_that_never_answers():
    sock, held = raw_server(b"", answer=False)
    try:
        start = time.monotonic()
        results, _ = fetch("--timeout", "0.3", f"http://127.0.0.1:{sock.getsockname()[1]}/")
        assert results[0]["code"] == 599 and "Timeout" in results[0]["error"]
        assert time.monotonic() - start < 10
    finally:
        sock.close()
        for c in held:
            c.close()


def test_connection_refused():
    results, _ = fetch(f"http://127.0.0.1:{free_port()}/")
    assert results[0]["code"] == 599
    assert "refused" in results[0]["error"].lower()


@pytest.mark.parametrize("reply,expected", [
    (b"HTTP/1.1 twohundred OK\r\n\r\n", "malformed HTTP response"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nnothex\r\n", "malformed HTTP response"),
    (b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 200000 + b"\r\n\r\n", "malformed HTTP response"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", "closed before the response"),
    (b"garbage\r\n\r\n", "malformed HTTP response"),
], ids=["status-line", "chunk-size", "long-header", "cut-body", "garbage"])
def test_malformed_responses_give_clear_errors(reply, expected):
    sock, held = raw_server(reply)
    try:
        results, _ = fetch(f"http://127.0.0.1:{sock.getsockname()[1]}/")
        assert results[0]["code"] == 599
        assert expected in results[0]["error"], results[0]["error"]
    finally:
        sock.close()


@pytest.fixture
def tls_server(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    Handler.connections = 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], cert
    server.shutdown()
    server.server_close()


def test_tls_with_sni_and_verification(tls_server):
    port, cert = tls_server
    results, stats = fetch("--ca", cert, "--count", 3, f"https://localhost:{port}/hello")
    assert [r["body"] for r in results] == ["hello from python"] * 3
    assert stats["opened"] == 1
    results, _ = fetch(f"https://localhost:{port}/hello")  # system CAs: not trusted
    assert results[0]["code"] == 599 and "certificate" in results[0]["error"].lower()
    results, _ = fetch("--insecure", f"https://127.0.0.1:{port}/hello")
    assert results[0]["body"] == "hello from python"


TORNADO_APP = textwrap.dedent("""
    import asyncio, sys
    import tornado.web, tornado.httpserver, tornado.netutil

    class Hello(tornado.web.RequestHandler):
        def get(self):
            self.write("hello from tornado " * 100)

    class Stream(tornado.web.RequestHandler):
        async def get(self):
            for i in range(5):
                self.write("piece%d;" % i)
                await self.flush()
                await asyncio.sleep(0.01)

    class Go(tornado.web.RequestHandler):
        def get(self):
            self.redirect("/hello")

    async def main():
        app = tornado.web.Application([("/hello", Hello), ("/stream", Stream), ("/go", Go)],
                                      compress_response=True)
        server = tornado.httpserver.HTTPServer(app)
        server.listen(int(sys.argv[1]), "127.0.0.1")
        server.add_socket(tornado.netutil.bind_unix_socket(sys.argv[2]))
        await asyncio.Event().wait()

    asyncio.run(main())
""")


@pytest.fixture
def tornado_server(tmp_path):
    port = free_port()
    sock = tmp_path / "tornado.sock"
    proc = subprocess.Popen(["/usr/bin/python3", "-c", TORNADO_APP, str(port), str(sock)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, proc)
        yield port, sock
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_against_tornado(tornado_server):
    port, sock = tornado_server
    base = f"http://127.0.0.1:{port}"
    results, stats = fetch("--count", 3, base + "/go")
    assert all(r["body"] == "hello from tornado " * 100 for r in results)
    assert all(r["headers"].get("X-Consumed-Content-Encoding") == "gzip" for r in results)
    assert stats["opened"] == 1
    results, _ = fetch("--stream", base + "/stream")
    assert results[0]["body"] == "".join("piece%d;" % i for i in range(5))
    assert results[0]["pieces"] >= 2
    from urllib.parse import quote
    results, _ = fetch(f"http+unix://{quote(str(sock), safe='')}/hello")
    assert results[0]["code"] == 200 and results[0]["body"].startswith("hello from tornado")


def test_against_our_server(start_server):
    server = start_server("01_getting_started")
    results, stats = fetch("--count", 4, "--parallel", 2, f"http://127.0.0.1:{server.port}/")
    assert [r["body"] for r in results] == ["Hello, world"] * 4
    assert stats["opened"] == 2 and stats["reused"] == 2


def test_examples_fetch(start_server):
    """The tour's handlers: each fetches the upstream and finishes from its callback or
    coroutine; an unreachable upstream gives 502."""
    upstream = start_server("01_getting_started")
    url = f"http://127.0.0.1:{upstream.port}/"
    callback = start_server("03_fetch_async", url)
    body = urllib.request.urlopen(f"http://127.0.0.1:{callback.port}/", timeout=10).read().decode()
    assert body == f"fetched {url}: 200, 12 bytes\nHello, world"
    coroutine = start_server("04_fetch_gen", url)
    body = urllib.request.urlopen(f"http://127.0.0.1:{coroutine.port}/", timeout=10).read().decode()
    assert body.startswith(f"fetched {url}: 200, 12 bytes\nHello, world")
    assert body.endswith("\ngathered: 200 200 200\n")
    for name in ("03_fetch_async", "04_fetch_gen"):
        broken = start_server(name, f"http://127.0.0.1:{free_port()}/")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{broken.port}/", timeout=10)
            raise AssertionError("expected 502")
        except urllib.error.HTTPError as e:
            assert e.code == 502 and b"fetch failed" in e.read()
