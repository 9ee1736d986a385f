"""HTTP/1.1 server (HTTP1Connection + HTTPServer) against real clients: curl, http.client
and raw sockets. The server is tests/support/http_test_server.cpp."""
import asyncio
import http.client
import json
import socket
import subprocess
import threading
import time

import pytest

SERVER = "http_test_server"


# --- a small HTTP/1 client over a raw socket ------------------------------------------


class Response:
    def __init__(self, version, status, reason, headers, body):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # [(lowercased name, value)]
        self.body = body

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def header_names(self):
        return [k for k, _ in self.headers]

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {self.headers} {self.body[:80]!r}>"


class Client:
    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(256 * 1024)
        if not chunk:
            raise EOFError("connection closed by the server")
        self.buf += chunk

    def read_until(self, delim, limit=1 << 20):
        while True:
            i = self.buf.find(delim)
            if i >= 0:
                out = bytes(self.buf[: i + len(delim)])
                del self.buf[: i + len(delim)]
                return out
            if len(self.buf) > limit:
                raise ValueError("no delimiter")
            self._fill()

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_to_close(self):
        try:
            while True:
                self._fill()
        except (EOFError, ConnectionResetError):
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def read_head(self):
        head = self.read_until(b"\r\n\r\n").decode("latin-1")
        lines = head.split("\r\n")[:-2]
        version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.lower(), value.strip()))
        return version, int(status), reason, headers

    def read_response(self, method="GET", allow_informational=False):
        version, status, reason, headers = self.read_head()
        while 100 <= status < 200 and not allow_informational:
            version, status, reason, headers = self.read_head()
        resp = Response(version, status, reason, headers, b"")
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return resp
        if (resp.header("transfer-encoding") or "").lower() == "chunked":
            body = bytearray()
            while True:
                size_line = self.read_until(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    while self.read_until(b"\r\n") != b"\r\n":
                        pass
                    break
                body += self.read_exact(size)
                assert self.read_exact(2) == b"\r\n"
            resp.body = bytes(body)
        elif resp.header("content-length") is not None:
            resp.body = self.read_exact(int(resp.header("content-length")))
        else:
            resp.body = self.read_to_close()
        return resp

    def request(self, method, target, headers=None, body=b"", version="HTTP/1.1"):
        self.send(build_request(method, target, headers, body, version))
        return self.read_response(method)

    def closed_within(self, timeout):
        """True if the server closes (EOF or reset) within `timeout` seconds and sends
        nothing more meanwhile; False if it stays open. Data arriving is an error."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        finally:
            self.sock.settimeout(5.0)
        assert data == b"", f"unexpected bytes {data[:200]!r}"
        return True


def build_request(method, target, headers=None, body=b"", version="HTTP/1.1"):
    lines = [f"{method} {target} {version}"]
    hdrs = {"Host": "localhost"}
    if headers:
        hdrs.update(headers)
    if body and "Content-Length" not in hdrs and "Transfer-Encoding" not in hdrs:
        hdrs["Content-Length"] = str(len(body))
    for k, v in hdrs.items():
        if v is not None:
            lines.append(f"{k}: {v}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def curl(*args, timeout=20):
    return subprocess.run(
        ["curl", "-sS", "--max-time", "15", *args],
        capture_output=True,
        timeout=timeout,
    )


def url(server, path="/"):
    return f"http://127.0.0.1:{server.port}{path}"


def stats(server):
    with Client(server.port) as c:
        return c.request("GET", "/stats").json()


def wait_for(predicate, timeout=5.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@pytest.fixture
def server(start_server):
    return start_server(SERVER)


# --- basics ---------------------------------------------------------------------------


def test_hello_with_curl(server):
    r = curl("-i", url(server))
    assert r.returncode == 0, r.stderr
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert body == b"Hello, world"
    lower = head.lower()
    assert b"\r\ncontent-length: 12" in lower
    assert b"\r\ndate: " in lower
    assert b"\r\nserver: tronada" in lower


def test_curl_reuses_the_connection(server):
    r = curl("-v", url(server), url(server, "/echo"), url(server))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(b"Hello, world")
    assert r.stderr.count(b"Re-using existing connection") == 2, r.stderr.decode()


def test_keep_alive_raw_socket_several_requests(server):
    with Client(server.port) as c:
        for i in range(10):
            r = c.request("GET", f"/echo?i={i}")
            assert r.status == 200
            assert r.json()["query"] == f"i={i}"
            assert r.header("connection") is None


def test_keep_alive_http_client(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/")
    r = conn.getresponse()
    assert r.read() == b"Hello, world"
    sock = conn.sock
    for i in range(5):
        conn.request("POST", "/echo", body=f"body {i}".encode(), headers={"X-N": str(i)})
        r = conn.getresponse()
        data = json.loads(r.read())
        assert data["body"] == f"body {i}"
        assert ["X-N", str(i)] in data["headers"]
        assert conn.sock is sock  # same connection
    conn.close()


def test_not_found(server):
    with Client(server.port) as c:
        assert c.request("GET", "/nope").status == 404
        assert c.request("GET", "/").body == b"Hello, world"


def test_connection_close_request(server):
    with Client(server.port) as c:
        r = c.request("GET", "/", {"Connection": "close"})
        assert r.status == 200
        assert r.header("connection") == "close"
        assert c.closed_within(2)


# --- pipelining -----------------------------------------------------------------------


def test_fifty_pipelined_requests_answered_in_order(server):
    reqs = []
    expect = []
    for i in range(50):
        if i % 10 == 3:
            reqs.append(build_request("GET", f"/slow?ms={20 + i}"))
            expect.append(("slow", f"slept {20 + i}\n".encode()))
        elif i % 10 == 7:
            reqs.append(build_request("GET", "/chunked?n=3"))
            expect.append(("chunked", b"chunk 0\nchunk 1\nchunk 2\n"))
        elif i % 10 == 9:
            reqs.append(build_request("POST", f"/echo?i={i}", body=f"payload {i}".encode()))
            expect.append(("echo", i))
        else:
            reqs.append(build_request("GET", f"/echo?i={i}"))
            expect.append(("echo", i))
    with Client(server.port) as c:
        c.send(b"".join(reqs))
        for kind, want in expect:
            r = c.read_response()
            assert r.status == 200
            if kind == "echo":
                data = r.json()
                assert data["query"] == f"i={want}"
                if want % 10 == 9:
                    assert data["body"] == f"payload {want}"
            else:
                assert r.body == want
        # and the connection is still usable
        assert c.request("GET", "/").body == b"Hello, world"


def test_pipelined_byte_by_byte(server):
    data = build_request("GET", "/echo?a=1") + build_request("POST", "/echo?a=2", body=b"xyz")
    with Client(server.port) as c:
        for b in data:
            c.send(bytes([b]))
        assert c.read_response().json()["query"] == "a=1"
        r = c.read_response().json()
        assert r["query"] == "a=2" and r["body"] == "xyz"


def test_pipelined_error_is_answered_after_the_pending_response(server):
    with Client(server.port) as c:
        c.send(build_request("GET", "/slow?ms=50") + b"GET / HTTP/1.2\r\nHost: x\r\n\r\n")
        r = c.read_response()
        assert r.body == b"slept 50\n"
        r = c.read_response()
        assert r.status == 505
        assert c.closed_within(3)


def test_upgrade_and_connect_are_served_as_plain_requests(server):
    with Client(server.port) as c:
        r = c.request("GET", "/echo", {"Connection": "Upgrade", "Upgrade": "websocket"})
        assert r.status == 200
        assert r.json()["path"] == "/echo"
        r = c.request("CONNECT", "example.com:443")
        assert r.status == 404
        assert c.request("GET", "/").body == b"Hello, world"


def test_pipelined_after_connection_close_is_ignored(server):
    with Client(server.port) as c:
        c.send(build_request("GET", "/", {"Connection": "close"}) + build_request("GET", "/echo"))
        r = c.read_response()
        assert r.body == b"Hello, world"
        assert c.closed_within(2)


def test_large_pipelined_flood_is_answered(server):
    # Far more than one read's worth of pipelined requests: reading pauses and resumes.
    n = 3000
    with Client(server.port, timeout=20) as c:
        payload = b"".join(build_request("GET", f"/echo?i={i}") for i in range(n))
        t = threading.Thread(target=c.send, args=(payload,))
        t.start()
        for i in range(n):
            r = c.read_response()
            assert r.json()["query"] == f"i={i}"
        t.join()


# --- HTTP/1.0 -------------------------------------------------------------------------


def test_http10_without_keep_alive_closes(server):
    with Client(server.port) as c:
        r = c.request("GET", "/", version="HTTP/1.0", headers={"Host": None})
        assert r.status == 200
        assert r.body == b"Hello, world"
        assert r.header("connection") == "close"
        assert c.closed_within(2)


def test_http10_keep_alive(server):
    with Client(server.port) as c:
        for i in range(3):
            r = c.request("GET", f"/echo?i={i}", {"Connection": "keep-alive"}, version="HTTP/1.0")
            assert r.status == 200
            assert r.header("connection").lower() == "keep-alive"
            assert r.json()["version"] == "HTTP/1.0"
        assert not c.closed_within(0.2)


def test_http10_unknown_length_is_close_delimited(server):
    with Client(server.port) as c:
        c.send(build_request("GET", "/chunked?n=4", {"Connection": "keep-alive"}, version="HTTP/1.0"))
        r = c.read_response()
        assert r.status == 200
        assert r.header("transfer-encoding") is None
        assert r.header("content-length") is None
        assert r.body == b"chunk 0\nchunk 1\nchunk 2\nchunk 3\n"


def test_http10_with_curl(server):
    r = curl("-0", url(server, "/chunked?n=2"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"chunk 0\nchunk 1\n"


# --- HEAD, OPTIONS, targets -----------------------------------------------------------


def test_head_has_length_but_no_body(server):
    with Client(server.port) as c:
        r = c.request("HEAD", "/")
        assert r.status == 200
        assert r.header("content-length") == "12"
        assert r.body == b""
        # If a body had been sent, this would read it as the next response.
        r = c.request("GET", "/")
        assert r.body == b"Hello, world"
        r = c.request("HEAD", "/chunked?n=3")
        assert r.status == 200
        assert c.request("GET", "/").body == b"Hello, world"


def test_head_with_curl(server):
    r = curl("-I", url(server))
    assert r.returncode == 0, r.stderr
    assert b"Content-Length: 12" in r.stdout
    assert not r.stdout.endswith(b"Hello, world")


def test_absolute_form_target(server):
    with Client(server.port) as c:
        r = c.request("GET", "http://example.com:8080/echo?x=1", {"Host": "other"})
        data = r.json()
        assert data["path"] == "/echo"
        assert data["query"] == "x=1"
        assert data["host"] == "example.com:8080"
        assert data["uri"] == "http://example.com:8080/echo?x=1"


def test_options_asterisk(server):
    with Client(server.port) as c:
        r = c.request("OPTIONS", "*")
        assert r.status == 404  # the test server has no route for it, but it parses
        assert c.request("GET", "/").status == 200


def test_asterisk_on_get_is_refused(server):
    with Client(server.port) as c:
        r = c.request("GET", "*")
        assert r.status == 400
        assert c.closed_within(2)


# --- request bodies -------------------------------------------------------------------


def test_content_length_body(server):
    with Client(server.port) as c:
        r = c.request("POST", "/echo", body=b"a" * 100000)
        assert r.json()["body_length"] == 100000


def test_chunked_upload_raw(server):
    body = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n"
    with Client(server.port) as c:
        r = c.request("POST", "/echo", {"Transfer-Encoding": "chunked"}, body)
        assert r.json()["body"] == "hello world"
        r = c.request("POST", "/echo", {"Transfer-Encoding": "chunked"}, b"0\r\n\r\n")
        assert r.json()["body"] == ""


def test_chunked_upload_with_curl(server, tmp_path):
    f = tmp_path / "data"
    f.write_bytes(bytes(range(256)) * 1000)
    r = curl("-H", "Transfer-Encoding: chunked", "-H", "Expect:", "--data-binary", f"@{f}",
             url(server, "/echo"))
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["body_length"] == 256000
    assert data["body"].encode("latin-1") == bytes(range(256)) * 1000


def test_streamed_body_has_no_limit(server, tmp_path):
    f = tmp_path / "big"
    f.write_bytes(b"z" * (5 * 1024 * 1024))
    r = curl("--data-binary", f"@{f}", url(server, "/stream-body"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"5242880\n"
    r = curl("-H", "Transfer-Encoding: chunked", "--data-binary", f"@{f}", url(server, "/stream-body"))
    assert r.stdout == b"5242880\n"


def test_100_continue_with_curl(server, tmp_path):
    f = tmp_path / "data"
    f.write_bytes(b"q" * 5000)
    r = curl("-v", "-H", "Expect: 100-continue", "--data-binary", f"@{f}", url(server, "/echo"))
    assert r.returncode == 0, r.stderr
    assert b"HTTP/1.1 100 Continue" in r.stderr
    assert json.loads(r.stdout)["body_length"] == 5000


def test_100_continue_raw_waits_for_the_interim_response(server):
    with Client(server.port) as c:
        c.send(build_request("POST", "/echo", {"Content-Length": "11", "Expect": "100-continue"}))
        # Nothing of the body sent yet: the server must answer with 100 first.
        assert c.read_until(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        c.send(b"hello world")
        r = c.read_response()
        assert r.status == 200
        assert r.json()["body"] == "hello world"
        # Next request on the same connection.
        assert c.request("GET", "/").body == b"Hello, world"


def test_413_with_expect_sends_no_100(server):
    with Client(server.port) as c:
        c.send(build_request("POST", "/echo", {"Content-Length": str(2 * 1024 * 1024),
                                               "Expect": "100-continue"}))
        r = c.read_response(allow_informational=True)
        assert r.status == 413
        assert c.closed_within(2)


def test_413_with_curl_large_upload(server, tmp_path):
    f = tmp_path / "big"
    f.write_bytes(b"z" * (3 * 1024 * 1024))
    r = curl("-o", "/dev/null", "-w", "%{http_code}", "-H", "Expect:", "--data-binary", f"@{f}",
             url(server, "/echo"))
    assert r.stdout == b"413", r.stderr


def test_413_chunked(server):
    with Client(server.port) as c:
        c.send(build_request("POST", "/echo", {"Transfer-Encoding": "chunked"})
               + b"200000\r\n" + b"a" * 1000)
        r = c.read_response()
        assert r.status == 413
        assert c.closed_within(2)


def test_early_reply_before_body_closes_cleanly(server):
    with Client(server.port) as c:
        c.send(build_request("POST", "/early-reply", {"Content-Length": "100000"}) + b"x" * 5000)
        r = c.read_response()
        assert r.status == 401
        assert r.header("connection") == "close"
        try:
            c.send(b"x" * 95000)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert c.closed_within(3)


def test_early_reply_without_body_keeps_alive(server):
    with Client(server.port) as c:
        r = c.request("GET", "/early-reply")
        assert r.status == 401
        assert c.request("GET", "/").body == b"Hello, world"


# --- malformed requests ---------------------------------------------------------------

H = "Host: x\r\n"
MALFORMED = [
    ("cl_and_te", f"POST / HTTP/1.1\r\n{H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("te_and_cl", f"POST / HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400),
    ("two_cl", f"POST / HTTP/1.1\r\n{H}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400),
    ("two_cl_differ", f"POST / HTTP/1.1\r\n{H}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
    ("cl_list", f"POST / HTTP/1.1\r\n{H}Content-Length: 5, 5\r\n\r\nhello", 400),
    ("cl_negative", f"POST / HTTP/1.1\r\n{H}Content-Length: -1\r\n\r\n", 400),
    ("cl_plus", f"POST / HTTP/1.1\r\n{H}Content-Length: +5\r\n\r\nhello", 400),
    ("bad_chunk_size", f"POST / HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk_size_overflow", f"POST / HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", 400),
    ("te_chunked_twice", f"POST / HTTP/1.1\r\n{H}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400),
    ("te_gzip", f"POST / HTTP/1.1\r\n{H}Transfer-Encoding: gzip\r\n\r\n", 501),
    ("te_on_http10", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("obs_fold", f"GET / HTTP/1.1\r\n{H}X-A: a\r\n b\r\n\r\n", 400),
    ("bare_cr", f"GET / HTTP/1.1\r\n{H}X-A: a\rX-B: b\r\n\r\n", 400),
    ("bare_cr_end", f"GET / HTTP/1.1\r\n{H}\r\rGET / HTTP/1.1\r\n{H}\r\n", 400),
    ("bare_lf", f"GET / HTTP/1.1\n{H}\n", 400),
    ("nul_in_value", f"GET / HTTP/1.1\r\n{H}X-A: a\x00b\r\n\r\n", 400),
    ("nul_in_target", "GET /a\x00b HTTP/1.1\r\n{H}\r\n", 400),
    ("space_before_colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    ("space_in_name", f"GET / HTTP/1.1\r\n{H}X A: b\r\n\r\n", 400),
    ("empty_name", f"GET / HTTP/1.1\r\n{H}: b\r\n\r\n", 400),
    ("http12", f"GET / HTTP/1.2\r\n{H}\r\n", 505),
    ("http09", "GET /\r\n\r\n", 505),
    ("bad_version", f"GET / HTTP/1.x\r\n{H}\r\n", 400),
    ("missing_host", "GET / HTTP/1.1\r\n\r\n", 400),
    ("two_hosts", f"GET / HTTP/1.1\r\n{H}{H}\r\n", 400),
    ("bad_host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    ("unknown_method", f"FOO / HTTP/1.1\r\n{H}\r\n", 501),
    ("lowercase_method", f"get / HTTP/1.1\r\n{H}\r\n", 501),
    ("garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400),
    ("long_uri", "GET /" + "a" * 9000 + f" HTTP/1.1\r\n{H}\r\n", 414),
    ("huge_headers", f"GET / HTTP/1.1\r\n{H}" + "".join(f"X-H{i}: {'v' * 1000}\r\n" for i in range(70)) + "\r\n", 431),
    ("one_huge_header", f"GET / HTTP/1.1\r\n{H}X-Big: {'v' * 70000}\r\n\r\n", 431),
    ("too_many_headers", f"GET / HTTP/1.1\r\n{H}" + "".join(f"X-H{i}: v\r\n" for i in range(120)) + "\r\n", 431),
    ("body_too_large", f"POST /echo HTTP/1.1\r\n{H}Content-Length: 2000000\r\n\r\n", 413),
    ("chunk_too_large", f"POST /echo HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n200000\r\n", 413),
    ("smuggle_after_body", f"POST /echo HTTP/1.1\r\n{H}Content-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
]


@pytest.mark.parametrize("name,request_text,status", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_request(server, name, request_text, status):
    data = request_text.encode("latin-1")
    with Client(server.port) as c:
        c.send(data)
        if name == "smuggle_after_body":
            first = c.read_response()
            assert first.status == 200 and first.json()["body"] == "abc"
        r = c.read_response()
        assert r.status == status, r
        assert r.header("connection") == "close"
        assert c.closed_within(3)
    with Client(server.port) as c:
        assert c.request("GET", "/").body == b"Hello, world"


def test_malformed_fed_byte_by_byte(server):
    data = f"POST / HTTP/1.1\r\n{H}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello".encode()
    with Client(server.port) as c:
        try:
            for b in data:
                c.send(bytes([b]))
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = c.read_response()
        assert r.status == 400
        assert c.closed_within(3)


def test_truncated_request_then_close(server):
    with Client(server.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
    with Client(server.port) as c:
        c.send(b"GET / HTT")
    time.sleep(0.1)
    with Client(server.port) as c:
        assert c.request("GET", "/").body == b"Hello, world"


def test_handler_exception_gives_500(server):
    with Client(server.port) as c:
        r = c.request("GET", "/throw")
        assert r.status == 500
        assert c.closed_within(3)
    with Client(server.port) as c:
        assert c.request("GET", "/").status == 200


# --- response framing -----------------------------------------------------------------


def test_chunked_response(server):
    with Client(server.port) as c:
        r = c.request("GET", "/chunked?n=5")
        assert r.header("transfer-encoding") == "chunked"
        assert r.body == b"".join(f"chunk {i}\n".encode() for i in range(5))
        r = c.request("GET", "/chunked?n=0")
        assert r.body == b""
        r = c.request("GET", "/chunked?n=4&delay=10")
        assert r.body == b"".join(f"chunk {i}\n".encode() for i in range(4))
        assert c.request("GET", "/").body == b"Hello, world"


def test_chunked_response_with_curl(server):
    r = curl(url(server, "/chunked?n=100&delay=1"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"".join(f"chunk {i}\n".encode() for i in range(100))


def test_no_body_statuses_keep_the_connection(server):
    with Client(server.port) as c:
        for code in (204, 304):
            r = c.request("GET", f"/status?code={code}")
            assert r.status == code
            assert r.header("connection") is None
            assert r.header("content-length") == "2"  # as for the full response; no body
        r = c.request("HEAD", "/status?code=200")
        assert r.header("content-length") == "2"
        assert c.request("GET", "/status?code=201").body == b"ok"
        assert c.request("GET", "/").body == b"Hello, world"
        assert not c.closed_within(0.1)


def test_handler_transfer_encoding_chunked_is_applied_once(server):
    with Client(server.port) as c:
        r = c.request("GET", "/status?code=200&cl=0&te=1")
        assert r.header("transfer-encoding") == "chunked"
        assert [k for k, _ in r.headers].count("transfer-encoding") == 1
        assert r.body == b"ok"
        r = c.request("GET", "/status?code=200&cl=0&te=1", {"Connection": "keep-alive"},
                      version="HTTP/1.0")
        assert r.header("transfer-encoding") is None
        assert r.body == b"ok"


def test_big_response(server):
    n = 20 * 1024 * 1024 + 7
    with Client(server.port, timeout=20) as c:
        r = c.request("GET", f"/big?bytes={n}")
        assert len(r.body) == n
        assert r.body[:26] == b"abcdefghijklmnopqrstuvwxyz"
        assert c.request("GET", "/").body == b"Hello, world"
    assert wait_for(lambda: stats(server)["big_done"] == 1)


def test_header_injection_is_refused(server):
    with Client(server.port) as c:
        r = c.request("GET", "/header-inject")
        assert r.status == 500
        assert "injected" not in r.header_names()
        assert "x-bad" not in r.header_names()
    r = curl("-i", url(server, "/header-inject"))
    assert b"Injected" not in r.stdout


# --- timeouts -------------------------------------------------------------------------


@pytest.fixture
def timeout_server(start_server):
    return start_server(SERVER, "--idle-timeout", "300", "--header-timeout", "500",
                        "--body-timeout", "500", "--write-timeout", "500")


def test_idle_keep_alive_connection_is_closed(timeout_server):
    with Client(timeout_server.port) as c:
        assert c.request("GET", "/").status == 200
        start = time.monotonic()
        assert c.closed_within(5)
        elapsed = time.monotonic() - start
        assert 0.15 < elapsed < 3, elapsed


def test_idle_fresh_connection_is_closed(timeout_server):
    with Client(timeout_server.port) as c:
        start = time.monotonic()
        assert c.closed_within(5)
        assert time.monotonic() - start < 3


def test_busy_keep_alive_connection_stays_open(timeout_server):
    with Client(timeout_server.port) as c:
        for _ in range(10):
            assert c.request("GET", "/").status == 200
            time.sleep(0.1)  # less than the idle timeout each time, 1 s in all


def test_slow_handler_is_not_cut_by_idle_timeout(timeout_server):
    with Client(timeout_server.port) as c:
        r = c.request("GET", "/slow?ms=1000")
        assert r.body == b"slept 1000\n"


def test_slowloris_header_is_cut_off(timeout_server):
    with Client(timeout_server.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        start = time.monotonic()
        cut = False
        for _ in range(40):  # 4 s of one byte every 100 ms
            try:
                c.send(b"a")
            except (BrokenPipeError, ConnectionResetError):
                cut = True
                break
            time.sleep(0.1)
            if time.monotonic() - start > 1.5:
                break
        elapsed = time.monotonic() - start
        data = c.read_to_close()
        assert cut or data, "still open after trickling for %.1fs" % elapsed
        assert time.monotonic() - start < 3
        if data:
            assert data.startswith(b"HTTP/1.1 408 ")


def test_slow_body_is_cut_off(timeout_server):
    with Client(timeout_server.port) as c:
        c.send(build_request("POST", "/echo", {"Content-Length": "100"}) + b"0123456789")
        start = time.monotonic()
        r = c.read_response()
        assert r.status == 408
        assert 0.3 < time.monotonic() - start < 3
        assert c.closed_within(2)


def test_trickled_body_within_gap_is_fine(timeout_server):
    with Client(timeout_server.port) as c:
        c.send(build_request("POST", "/echo", {"Content-Length": "10"}))
        for b in b"0123456789":  # 1 s in all, gaps of 100 ms < body timeout
            time.sleep(0.1)
            c.send(bytes([b]))
        r = c.read_response()
        assert r.json()["body"] == "0123456789"


def test_client_that_never_reads_is_cut_by_write_timeout(timeout_server):
    c = Client(timeout_server.port)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    c.send(build_request("GET", f"/big?bytes={256 * 1024 * 1024}"))
    try:
        assert wait_for(lambda: stats(timeout_server)["big_aborted"] == 1, timeout=8)
        got = len(c.read_to_close())
        assert got < 256 * 1024 * 1024
    finally:
        c.close()
    with Client(timeout_server.port) as c2:
        assert c2.request("GET", "/").status == 200


def test_slow_but_steady_reader_is_not_cut(timeout_server):
    n = 8 * 1024 * 1024
    with Client(timeout_server.port, timeout=20) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        c.send(build_request("GET", f"/big?bytes={n}"))
        time.sleep(0.2)
        got = 0
        head_done = False
        deadline = time.monotonic() + 15
        buf = b""
        while time.monotonic() < deadline:
            chunk = c.sock.recv(256 * 1024)
            if not chunk:
                break
            if not head_done:
                buf += chunk
                if b"\r\n\r\n" in buf:
                    head_done = True
                    got = len(buf.split(b"\r\n\r\n", 1)[1])
            else:
                got += len(chunk)
            if got >= n:
                break
            time.sleep(0.01)
        assert got == n


def test_slow_reader_of_a_finished_response_is_not_cut(timeout_server):
    # One write_response of 8 MiB, read slowly for longer than the idle timeout (300 ms):
    # the request is finished, but the connection must live while the client reads.
    n = 8 * 1024 * 1024
    with Client(timeout_server.port, timeout=20) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        c.send(build_request("GET", f"/bigone?bytes={n}"))
        time.sleep(0.4)
        version, status, _, headers = c.read_head()
        assert status == 200
        got = len(c.buf)
        c.buf.clear()
        while got < n:
            chunk = c.sock.recv(64 * 1024)
            assert chunk, f"closed after {got} bytes"
            got += len(chunk)
            time.sleep(0.002)
        assert got == n


def test_header_timeout_applies_to_a_pipelined_partial_request(start_server):
    server = start_server(SERVER, "--idle-timeout", "10000", "--header-timeout", "300")
    with Client(server.port) as c:
        c.send(build_request("GET", "/") + b"GET / HTTP/1.1\r\nHost: x\r\n")
        assert c.read_response().body == b"Hello, world"
        start = time.monotonic()
        r = c.read_response()
        assert r.status == 408
        assert time.monotonic() - start < 3
        assert c.closed_within(3)


def test_closed_client_runs_close_callback(server):
    before = stats(server)["close_callbacks"]
    c = Client(server.port)
    c.send(build_request("GET", "/slow?ms=500"))
    time.sleep(0.1)
    c.close()
    assert wait_for(lambda: stats(server)["close_callbacks"] == before + 1)
    time.sleep(0.6)  # the late answer is dropped without harm
    with Client(server.port) as c2:
        assert c2.request("GET", "/").status == 200


def half_closed_exchange(port, data):
    """Sends `data`, shuts down the sending side (as `nc -N` does) and reads to EOF."""
    c = Client(port)
    c.send(data)
    c.sock.shutdown(socket.SHUT_WR)
    responses = []
    try:
        while True:
            responses.append(c.read_response())
    except EOFError:
        pass
    assert not c.buf, bytes(c.buf)  # nothing but whole responses before the close
    c.close()
    return responses


def test_half_closed_client_gets_every_answered_request(server):
    # Answered at once, before the FIN is read: the responses go out, then the close.
    rs = half_closed_exchange(server.port, build_request("GET", "/") * 3
                              + build_request("POST", "/echo", body=b"abc"))
    assert [(r.status, r.body) for r in rs[:3]] == [(200, b"Hello, world")] * 3
    assert rs[3].json()["body"] == "abc"
    # A handler still running when the FIN arrives ends as if the client vanished.
    assert half_closed_exchange(server.port, build_request("GET", "/slow?ms=300")) == []


def test_half_closed_client_with_a_cut_request_is_closed(server):
    # Headers cut short, and a body shorter than its Content-Length: neither can end.
    for data in (b"GET / HTTP/1.1\r\nHost: x\r\n",
                 b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"):
        assert half_closed_exchange(server.port, data) == []
    with Client(server.port) as c:
        assert c.request("GET", "/").status == 200


def test_half_closed_http10_with_nc_style_client(server):
    rs = half_closed_exchange(server.port, b"GET / HTTP/1.0\r\n\r\n")
    assert len(rs) == 1 and rs[0].body == b"Hello, world"


# --- connection limits, xheaders ------------------------------------------------------


def test_max_connections(start_server):
    server = start_server(SERVER, "--max-connections", "2")
    a = Client(server.port)
    b = Client(server.port)
    assert a.request("GET", "/").status == 200
    assert b.request("GET", "/").status == 200
    c = Client(server.port)  # completes in the kernel's backlog
    c.send(build_request("GET", "/echo?third=1"))
    c.sock.settimeout(0.5)
    with pytest.raises(socket.timeout):
        c.sock.recv(100)
    c.sock.settimeout(5)
    a.close()
    r = c.read_response()
    assert r.json()["query"] == "third=1"
    b.close()
    c.close()


def test_xheaders(start_server):
    server = start_server(SERVER, "--xheaders")
    with Client(server.port) as c:
        assert c.request("GET", "/remote").body == b"127.0.0.1 http\n"
        r = c.request("GET", "/remote", {"X-Real-IP": "10.1.2.3", "X-Forwarded-Proto": "https"})
        assert r.body == b"10.1.2.3 https\n"
        r = c.request("GET", "/remote", {"X-Forwarded-For": "1.1.1.1, 2001:db8::1"})
        assert r.body == b"2001:db8::1 http\n"
        r = c.request("GET", "/remote", {"X-Forwarded-For": "1.1.1.1,  2.2.2.2 ",
                                         "X-Scheme": "https"})
        assert r.body == b"2.2.2.2 https\n"
        r = c.request("GET", "/remote", {"X-Real-IP": "not an ip", "X-Forwarded-Proto": "gopher"})
        assert r.body == b"127.0.0.1 http\n"
        r = c.request("GET", "/remote", {"X-Forwarded-Proto": "http, https"})
        assert r.body == b"127.0.0.1 https\n"


def test_xheaders_ignored_by_default(server):
    with Client(server.port) as c:
        r = c.request("GET", "/remote", {"X-Real-IP": "10.1.2.3", "X-Forwarded-Proto": "https"})
        assert r.body == b"127.0.0.1 http\n"


# --- load -----------------------------------------------------------------------------


def test_200_concurrent_keep_alive_clients(server):
    async def client(i):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            for j in range(20):
                body = f"{i}-{j}".encode()
                writer.write(build_request("POST", f"/echo?c={i}&r={j}", body=body))
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head
                length = None
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                data = json.loads(await reader.readexactly(length))
                assert data["query"] == f"c={i}&r={j}"
                assert data["body"] == body.decode()
            return True
        finally:
            writer.close()

    async def main():
        results = await asyncio.wait_for(
            asyncio.gather(*(client(i) for i in range(200)), return_exceptions=True), 60)
        errors = [r for r in results if r is not True]
        assert errors == []

    asyncio.run(main())
    assert wait_for(lambda: stats(server)["open_connections"] == 1)


# --- randomized: pipelines split at random points, abrupt disconnects ----------------


def _random_exchange(rng, port):
    reqs = []  # (bytes, method, check)
    for _ in range(rng.randint(1, 8)):
        kind = rng.choice(["hello", "echo", "echo_chunked", "chunked", "slow", "head", "204"])
        if kind == "hello":
            reqs.append((build_request("GET", "/"), "GET", b"Hello, world"))
        elif kind == "echo":
            body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 3000)))
            reqs.append((build_request("POST", "/echo", body=body), "POST", ("echo", body)))
        elif kind == "echo_chunked":
            body = bytes(rng.randint(32, 126) for _ in range(rng.randint(0, 3000)))
            chunks, i = [], 0
            while i < len(body):
                n = rng.randint(1, 700)
                chunks.append(b"%x\r\n%s\r\n" % (len(body[i:i + n]), body[i:i + n]))
                i += n
            raw = build_request("POST", "/echo", {"Transfer-Encoding": "chunked"}) \
                + b"".join(chunks) + b"0\r\n\r\n"
            reqs.append((raw, "POST", ("echo", body)))
        elif kind == "chunked":
            n = rng.randint(0, 20)
            reqs.append((build_request("GET", f"/chunked?n={n}"), "GET",
                         b"".join(f"chunk {i}\n".encode() for i in range(n))))
        elif kind == "slow":
            ms = rng.randint(0, 15)
            reqs.append((build_request("GET", f"/slow?ms={ms}"), "GET", f"slept {ms}\n".encode()))
        elif kind == "head":
            reqs.append((build_request("HEAD", "/"), "HEAD", b""))
        else:
            reqs.append((build_request("GET", "/status?code=204"), "GET", b""))
    data = b"".join(r[0] for r in reqs)
    abort_at = rng.randint(0, len(data)) if rng.random() < 0.25 else None
    c = Client(port)
    try:
        pos = 0
        while pos < len(data):
            n = rng.randint(1, 2000)
            end = min(len(data), pos + n)
            if abort_at is not None and end >= abort_at:
                c.send(data[pos:abort_at])
                return  # hang up mid-request (or right after the last byte)
            c.send(data[pos:end])
            pos = end
            if rng.random() < 0.2:
                time.sleep(0.001)
        abort_reading = rng.random() < 0.2
        for i, (_, method, want) in enumerate(reqs):
            if abort_reading and i == len(reqs) // 2:
                return  # hang up with responses pending
            r = c.read_response(method)
            assert r.status in (200, 204), r
            if isinstance(want, tuple):
                d = r.json()
                assert d["body"].encode("latin-1") == want[1]
            else:
                assert r.body == want
    finally:
        c.close()


def test_random_pipelines_and_disconnects(server):
    import random
    rng = random.Random(1234)
    deadline = time.monotonic() + 6
    n = 0
    while time.monotonic() < deadline:
        _random_exchange(rng, server.port)
        n += 1
    assert n > 20
    assert server.proc.poll() is None
    assert wait_for(lambda: stats(server)["open_connections"] == 1)
    with Client(server.port) as c:
        assert c.request("GET", "/").body == b"Hello, world"
