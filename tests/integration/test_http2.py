"""HTTP/2 (HTTP2Session + HTTPServer's protocol selection) against real clients: curl,
nghttp, h2load, and Python's h2 for frame-level cases and attacks. The server is
tests/support/http_test_server.cpp."""
import json
import signal
import socket
import ssl
import subprocess
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import hyperframe.frame
import pytest

SERVER = "http_test_server"


# --- a small blocking HTTP/2 client on Python's h2 ----------------------------------


class H2Client:
    def __init__(self, port, settings=None, sock=None):
        self.sock = sock or socket.create_connection(("127.0.0.1", port), timeout=10)
        self.conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()
        self.closed = False
        self.goaway = None
        self.responses = {}  # stream id -> dict(status, headers, body, ended, reset)

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path, method="GET", body=None, headers=(), end=True):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":path", path), (":scheme", "http"),
                (":authority", "localhost"), *headers]
        self.conn.send_headers(sid, hdrs, end_stream=end and body is None)
        if body is not None:
            self.conn.send_data(sid, body, end_stream=end)
        self.responses[sid] = {"status": None, "headers": [], "body": b"", "ended": False,
                               "reset": None}
        self.flush()
        return sid

    def read_events(self, timeout=10):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.closed = True
            return []
        events = self.conn.receive_data(data)
        for ev in events:
            r = self.responses.get(getattr(ev, "stream_id", None))
            if isinstance(ev, h2.events.ResponseReceived):
                r["headers"] = ev.headers
                r["status"] = int(dict(ev.headers)[":status"])
            elif isinstance(ev, h2.events.DataReceived):
                r["body"] += ev.data
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                r["ended"] = True
            elif isinstance(ev, h2.events.StreamReset):
                if r is not None:
                    r["reset"] = ev.error_code
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.goaway = ev
        self.flush()
        return events

    def wait(self, sid, timeout=10):
        deadline = time.monotonic() + timeout
        r = self.responses[sid]
        while not (r["ended"] or r["reset"] is not None):
            if self.closed or time.monotonic() > deadline:
                raise AssertionError(f"stream {sid} did not end: {r}")
            self.read_events(timeout=max(0.01, deadline - time.monotonic()))
        return r

    def get(self, path, **kw):
        return self.wait(self.request(path, **kw))

    def wait_closed(self, timeout=10):
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            try:
                self.read_events(timeout=max(0.01, deadline - time.monotonic()))
            except h2.exceptions.ProtocolError:
                pass
            except socket.timeout:
                break
        return self.closed

    def close(self):
        self.sock.close()


def raw_frames(port):
    """A socket that has sent the client preface and an empty SETTINGS frame."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + hyperframe.frame.SettingsFrame(0).serialize())
    return s


def read_until_closed(sock, timeout=10):
    """Reads until the server closes; returns all bytes (GOAWAY included)."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return data, True
        except socket.timeout:
            return data, False
        if not chunk:
            return data, True
        data += chunk
    return data, False


def goaway_code(data):
    """The error code of the first GOAWAY frame in a server byte stream, or None."""
    pos = 0
    while pos + 9 <= len(data):
        length = int.from_bytes(data[pos:pos + 3], "big")
        ftype = data[pos + 3]
        if ftype == 0x7 and pos + 9 + 8 <= len(data):
            return int.from_bytes(data[pos + 13:pos + 17], "big")
        pos += 9 + length
    return None


def stats(port):
    c = H2Client(port)
    r = c.get("/stats")
    c.close()
    return json.loads(r["body"])


def assert_healthy(port):
    """Another client is served normally."""
    c = H2Client(port)
    r = c.get("/")
    assert r["status"] == 200 and r["body"] == b"Hello, world"
    c.close()


@pytest.fixture
def start(start_server):
    """start_server, and at the end: every server exits cleanly (no sanitizer report,
    no leak)."""
    servers = []

    def go(*args):
        server = start_server(SERVER, *args)
        servers.append(server)
        return server

    yield go
    for server in servers:
        code = server.stop()
        err = server.proc.stderr.read().decode(errors="replace")
        assert code == 0, err[-3000:]
        assert "Sanitizer" not in err, err[-3000:]


@pytest.fixture
def h2server(start):
    return start()


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, timeout=60, **kw)


# --- real clients --------------------------------------------------------------------


def test_curl_prior_knowledge_and_http1_on_the_same_port(h2server):
    port = h2server.port
    out = run(["curl", "-s", "--http2-prior-knowledge", "-d", "hello",
               "-w", "\n%{http_version}", f"http://127.0.0.1:{port}/echo?x=1"])
    body, version = out.stdout.decode().rsplit("\n", 1)
    assert version == "2"
    echo = json.loads(body)
    assert echo["version"] == "HTTP/2"
    assert echo["method"] == "POST" and echo["body"] == "hello" and echo["query"] == "x=1"
    assert echo["host"] == f"127.0.0.1:{port}"
    out = run(["curl", "-s", "-w", "\n%{http_version}", f"http://127.0.0.1:{port}/"])
    assert out.stdout.decode() == "Hello, world\n1.1"


def test_http1_client_sending_bytes_like_the_preface_start(h2server):
    # "P" then "OST": a prefix of the preface at first, HTTP/1 after all.
    s = socket.create_connection(("127.0.0.1", h2server.port), timeout=10)
    s.sendall(b"P")
    time.sleep(0.05)
    s.sendall(b"OST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
    data, _ = read_until_closed(s)
    assert data.startswith(b"HTTP/1.1 200")
    assert b'"body": "hi"' in data


class ByteByByte:
    """A socket whose first `n` bytes go out one send at a time."""

    def __init__(self, sock, n):
        self.sock, self.left = sock, n
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def sendall(self, data):
        while self.left and data:
            self.sock.sendall(data[:1])
            data, self.left = data[1:], self.left - 1
            time.sleep(0.002)
        if data:
            self.sock.sendall(data)

    def __getattr__(self, name):
        return getattr(self.sock, name)


def test_preface_arriving_a_byte_at_a_time(h2server):
    # Each proper prefix of the preface is undecided; the last byte decides HTTP/2, and
    # the SETTINGS behind it, sent separately, reach the session.
    sock = socket.create_connection(("127.0.0.1", h2server.port), timeout=10)
    c = H2Client(h2server.port, sock=ByteByByte(sock, 24))
    r = c.get("/")
    assert r["status"] == 200 and r["body"] == b"Hello, world"
    c.close()


def test_curl_large_body_both_ways(h2server):
    port = h2server.port
    out = run(["curl", "-s", "--http2-prior-knowledge", f"http://127.0.0.1:{port}/big?bytes=3000000"])
    assert len(out.stdout) == 3000000
    assert out.stdout[:26] == b"abcdefghijklmnopqrstuvwxyz"
    payload = b"z" * 2_500_000
    out = run(["curl", "-s", "--http2-prior-knowledge", "--data-binary", "@-",
               f"http://127.0.0.1:{port}/stream-body"], input=payload)
    assert out.stdout == b"2500000\n"


def test_nghttp_concurrent_streams(h2server):
    port = h2server.port
    urls = [f"http://127.0.0.1:{port}/chunked?n=5&delay=5&i={i}" for i in range(20)]
    out = run(["nghttp", "-n", "--stat", *urls])
    assert out.returncode == 0, out.stderr
    assert out.stdout.count(b"  200  ") == 20, out.stdout


def test_h2load_sanity(h2server):
    out = run(["h2load", "-n", "2000", "-c", "8", "-m", "10",
               f"http://127.0.0.1:{h2server.port}/"])
    text = out.stdout.decode()
    assert "2000 succeeded" in text, text


def test_head_and_204_have_no_body(h2server):
    c = H2Client(h2server.port)
    r = c.get("/status?code=204&cl=0")
    assert r["status"] == 204 and r["body"] == b""
    r = c.get("/", method="HEAD")
    assert r["status"] == 200 and r["body"] == b""
    c.close()


def test_header_injection_refused_and_handler_exception_is_500(h2server):
    c = H2Client(h2server.port)
    assert c.get("/header-inject")["status"] == 500
    assert c.get("/throw")["status"] == 500
    assert c.get("/")["status"] == 200
    c.close()


def test_body_over_limit_gets_413(start):
    server = start("--max-body", "1000")
    c = H2Client(server.port)
    r = c.get("/echo", method="POST", body=b"x" * 5000)
    assert r["status"] == 413
    r = c.get("/echo", method="POST", body=b"x" * 500)
    assert r["status"] == 200
    c.close()


# --- flow control --------------------------------------------------------------------


def test_one_byte_windows(h2server):
    c = H2Client(h2server.port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1})
    # Let the server see our SETTINGS before the request.
    sid = c.request("/bigone?bytes=300")
    r = c.responses[sid]
    frames = 0
    deadline = time.monotonic() + 20
    while not r["ended"] and time.monotonic() < deadline:
        events = c.read_events()
        frames += sum(isinstance(e, h2.events.DataReceived) and len(e.data) > 0 for e in events)
    assert r["ended"] and r["body"] == b"b" * 300
    assert frames >= 100  # it came a byte or so at a time
    assert_healthy(h2server.port)
    c.close()


def test_zero_window_stall_times_out(start):
    server = start("--write-timeout", "400")
    c = H2Client(server.port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    c.request("/bigone?bytes=100000")
    t0 = time.monotonic()
    # We never open the window: the server must give up and close.
    assert c.wait_closed(timeout=10)
    assert time.monotonic() - t0 < 9
    assert_healthy(server.port)


def test_reset_mid_response_stops_the_handler(h2server):
    port = h2server.port
    before = stats(port)
    c = H2Client(port)
    sid = c.request("/big?bytes=100000000")
    while len(c.responses[sid]["body"]) < 200000:
        c.read_events()
    c.conn.reset_stream(sid, error_code=8)  # CANCEL
    c.flush()
    # The same connection goes on serving.
    r = c.get("/")
    assert r["status"] == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        after = stats(port)
        if after["big_aborted"] > before["big_aborted"]:
            break
        time.sleep(0.05)
    assert after["big_aborted"] == before["big_aborted"] + 1
    assert after["big_done"] == before["big_done"]
    c.close()


def test_many_concurrent_streams(h2server):
    c = H2Client(h2server.port)
    # Wait for the server's SETTINGS so h2 knows the stream limit.
    c.read_events()
    assert c.conn.remote_settings.max_concurrent_streams == 100
    sids = [c.request("/slow?ms=200") for _ in range(100)]
    for sid in sids:
        r = c.wait(sid)
        assert r["status"] == 200 and r["body"] == b"slept 200\n"
    c.close()


def test_streams_beyond_the_limit_are_refused(h2server):
    s = raw_frames(h2server.port)
    enc = h2.connection.H2Connection().encoder
    block = enc.encode([(":method", "GET"), (":path", "/slow?ms=300"), (":scheme", "http"),
                        (":authority", "x")])
    out = b""
    for i in range(120):
        f = hyperframe.frame.HeadersFrame(1 + 2 * i, flags=["END_HEADERS", "END_STREAM"])
        f.data = block if i == 0 else enc.encode([(":method", "GET"), (":path", "/slow?ms=300"),
                                                  (":scheme", "http"), (":authority", "x")])
        out += f.serialize()
    s.sendall(out)
    data, _ = read_until_closed(s, timeout=1.5)
    # Some streams are refused with RST_STREAM(REFUSED_STREAM = 7) or the connection gets a
    # protocol error; either way nothing beyond 100 is served.
    rst = data.count(b"\x00\x00\x04\x03")
    assert rst >= 20 or goaway_code(data) is not None
    s.close()
    assert_healthy(h2server.port)


# --- attacks -------------------------------------------------------------------------


def test_settings_flood_is_cut_off(h2server):
    s = raw_frames(h2server.port)
    flood = hyperframe.frame.SettingsFrame(0, settings={0x4: 65535}).serialize() * 20000
    try:
        s.sendall(flood)
    except (ConnectionResetError, BrokenPipeError):
        pass
    data, closed = read_until_closed(s)
    assert closed
    assert_healthy(h2server.port)


def test_ping_flood_is_cut_off(h2server):
    s = raw_frames(h2server.port)
    flood = hyperframe.frame.PingFrame(0, opaque_data=b"12345678").serialize() * 20000
    try:
        s.sendall(flood)
    except (ConnectionResetError, BrokenPipeError):
        pass
    data, closed = read_until_closed(s)
    assert closed
    assert_healthy(h2server.port)


def test_oversized_header_block_gets_431(h2server):
    c = H2Client(h2server.port)
    big = [(f"x-big-{i}", "v" * 4000) for i in range(20)]  # 80 KB > 64 KiB
    r = c.get("/", headers=big)
    assert r["status"] == 431 or r["reset"] is not None
    assert c.get("/")["status"] == 200
    c.close()


def test_continuation_flood_closes_the_connection(h2server):
    s = raw_frames(h2server.port)
    enc = h2.connection.H2Connection().encoder
    block = enc.encode([(":method", "GET"), (":path", "/"), (":scheme", "http")])
    out = hyperframe.frame.HeadersFrame(1, data=block).serialize()  # no END_HEADERS
    for _ in range(1000):
        out += hyperframe.frame.ContinuationFrame(1, data=b"").serialize()
    try:
        s.sendall(out)
    except (ConnectionResetError, BrokenPipeError):
        pass
    data, closed = read_until_closed(s)
    assert closed
    assert goaway_code(data) not in (None, 0)
    assert_healthy(h2server.port)


def test_rapid_reset_gets_goaway(h2server):
    s = raw_frames(h2server.port)
    enc = h2.connection.H2Connection().encoder
    out = b""
    for i in range(2000):
        sid = 1 + 2 * i
        block = enc.encode([(":method", "GET"), (":path", "/slow?ms=1000"), (":scheme", "http"),
                            (":authority", "x")])
        out += hyperframe.frame.HeadersFrame(sid, data=block,
                                             flags=["END_HEADERS", "END_STREAM"]).serialize()
        out += hyperframe.frame.RstStreamFrame(sid, error_code=8).serialize()
    try:
        s.sendall(out)
    except (ConnectionResetError, BrokenPipeError):
        pass
    data, closed = read_until_closed(s)
    assert closed
    assert goaway_code(data) == 0xB  # ENHANCE_YOUR_CALM
    assert_healthy(h2server.port)


def test_garbage_after_preface_closes(h2server):
    s = socket.create_connection(("127.0.0.1", h2server.port), timeout=10)
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\xff" * 100)
    data, closed = read_until_closed(s)
    assert closed
    assert_healthy(h2server.port)


# --- timeouts and shutdown -------------------------------------------------------------


def test_idle_connection_gets_goaway(start):
    server = start("--idle-timeout", "300")
    c = H2Client(server.port)
    assert c.get("/")["status"] == 200
    assert c.wait_closed(timeout=10)
    assert c.goaway is not None and c.goaway.error_code == 0


def test_graceful_shutdown_finishes_in_flight_streams(start):
    # curl, not h2: Python's h2 treats frames after a GOAWAY as a protocol error.
    server = start("--graceful")
    curl = subprocess.Popen(["curl", "-s", "--http2-prior-knowledge",
                             f"http://127.0.0.1:{server.port}/slow?ms=700"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.3)
    server.proc.send_signal(signal.SIGTERM)
    out, _ = curl.communicate(timeout=20)
    assert out == b"slept 700\n"
    assert curl.returncode == 0
    assert server.proc.wait(timeout=10) == 0


# --- TLS -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    key, crt = d / "key.pem", d / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(crt), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    return crt, key


@pytest.fixture
def tls_server(start, cert):
    crt, key = cert
    return start("--certfile", str(crt), "--keyfile", str(key))


def test_tls_alpn_h2_and_http1_fallback(tls_server, cert):
    port = tls_server.port
    crt = str(cert[0])
    out = run(["curl", "-s", "--cacert", crt, "-w", "\n%{http_version}",
               f"https://localhost:{port}/remote"])
    assert out.stdout.decode() == "127.0.0.1 https\n\n2"
    out = run(["curl", "-s", "--http1.1", "--cacert", crt, "-w", "\n%{http_version}",
               f"https://localhost:{port}/remote"])
    assert out.stdout.decode() == "127.0.0.1 https\n\n1.1"
    # A client without ALPN at all gets HTTP/1.1.
    ctx = ssl.create_default_context(cafile=crt)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            assert s.selected_alpn_protocol() is None
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data, _ = read_until_closed(s)
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"Hello, world")


def test_tls_h2_with_python_client(tls_server, cert):
    ctx = ssl.create_default_context(cafile=str(cert[0]))
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    raw = socket.create_connection(("127.0.0.1", tls_server.port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    assert s.selected_alpn_protocol() == "h2"
    c = H2Client(0, sock=s)
    r = c.get("/big?bytes=1000000")
    assert r["status"] == 200 and len(r["body"]) == 1000000
    c.close()


def test_tls_h2load_and_nghttp(tls_server):
    port = tls_server.port
    out = run(["h2load", "-n", "1000", "-c", "4", "-m", "10", f"https://127.0.0.1:{port}/"])
    text = out.stdout.decode()
    assert "1000 succeeded" in text and "Application protocol: h2" in text, text
    out = run(["nghttp", "-n", "--stat", f"https://127.0.0.1:{port}/"])
    assert out.returncode == 0, out.stderr


def test_tls_without_http2(start, cert):
    crt, key = cert
    server = start("--certfile", str(crt), "--keyfile", str(key), "--no-http2")
    out = run(["curl", "-s", "--cacert", str(crt), "-w", "\n%{http_version}",
               f"https://localhost:{server.port}/"])
    assert out.stdout.decode() == "Hello, world\n1.1"


def test_preface_without_http2_is_505(start):
    # With HTTP/2 off the preface reaches the HTTP/1 parser, which refuses it.
    server = start("--no-http2")
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    data, closed = read_until_closed(s)
    assert data.startswith(b"HTTP/1.1 505") and closed
