"""`tronada proxy` and `[route.proxy]` in front of real upstreams: our own http_test_server
and ws_echo, and a Python http.server app (apps/upstream.py) that the tests kill, slow
down and make sick."""
import asyncio
import concurrent.futures
import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import BIN, free_port, wait_for_port

TRONADA = str(BIN / "tronada")
APPS = Path(__file__).resolve().parent / "apps"
PYTHON = "/usr/bin/python3"


class Proc:
    def __init__(self, argv, port, env=None):
        self.port = port
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env=env)
        wait_for_port(port, self.proc)

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stderr(self):
        self.stop()
        return self.proc.stderr.read().decode(errors="replace")

    def rss_peak_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0


@pytest.fixture
def procs():
    started = []

    def start(argv, port, env=None):
        p = Proc(argv, port, env)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop(signal.SIGKILL)


@pytest.fixture
def upstream(procs):
    def start(name):
        port = free_port()
        return procs([PYTHON, str(APPS / "upstream.py"), str(port), name], port)
    return start


@pytest.fixture
def native(procs):
    def start():
        port = free_port()
        return procs([str(BIN / "http_test_server"), "--port", str(port)], port)
    return start


@pytest.fixture
def proxy(procs):
    def start(*targets, extra=()):
        port = free_port()
        argv = [TRONADA, "proxy", "-b", f"127.0.0.1:{port}", "--access-log", "off"]
        for t in targets:
            argv += ["--to", t]
        return procs(argv + list(extra), port)
    return start


def url(p):
    return f"http://127.0.0.1:{p.port}"


def request(port, method, path, body=None, headers=None, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        chunked = (headers or {}).get("Transfer-Encoding") == "chunked"
        c.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def test_get_passes_headers_both_ways(native, proxy):
    up = native()
    px = proxy(url(up))
    status, headers, body = request(px.port, "GET", "/echo?x=1", headers={
        "Host": "site.example", "Connection": "keep-alive, X-Hop", "X-Hop": "secret",
        "X-Custom": "kept", "X-Forwarded-For": "203.0.113.66"})
    assert status == 200
    seen = json.loads(body)
    names = {k.lower(): v for k, v in seen["headers"]}
    assert seen["uri"] == "/echo?x=1"
    assert names["host"] == "site.example"
    assert names["x-custom"] == "kept"
    assert names["x-forwarded-for"] == "127.0.0.1"  # the forged entry is not trusted
    assert names["x-forwarded-proto"] == "http"
    assert names["x-forwarded-host"] == "site.example"
    assert names["via"] == "1.1 tronada"
    assert "x-hop" not in names
    assert headers["Content-Type"].startswith("application/json")


def test_bodies_content_length_and_chunked(upstream, proxy):
    up = upstream("a")
    px = proxy(url(up))
    data = os.urandom(300_000)
    status, _, body = request(px.port, "POST", "/sha", body=data)
    assert status == 200
    assert body.decode() == f"{len(data)} {hashlib.sha256(data).hexdigest()}"

    def pieces():
        for i in range(0, len(data), 7000):
            yield data[i:i + 7000]
    status, _, body = request(px.port, "POST", "/sha", body=pieces(),
                              headers={"Transfer-Encoding": "chunked"})
    assert status == 200
    assert body.decode() == f"{len(data)} {hashlib.sha256(data).hexdigest()}"


def test_responses_head_304_chunked_and_keepalive(native, proxy):
    up = native()
    px = proxy(url(up))
    status, headers, body = request(px.port, "HEAD", "/bigone?bytes=1000")
    assert status == 200 and body == b"" and headers["Content-Length"] == "1000"
    status, _, body = request(px.port, "GET", "/status?code=304")
    assert status == 304 and body == b""
    status, _, body = request(px.port, "GET", "/chunked?n=5")
    assert status == 200 and len(body) > 0
    # Several requests on one client connection: all answered, in order.
    c = http.client.HTTPConnection("127.0.0.1", px.port, timeout=10)
    for i in range(20):
        c.request("GET", f"/echo?i={i}")
        r = c.getresponse()
        assert json.loads(r.read())["uri"] == f"/echo?i={i}"
    c.close()


def test_upstream_connections_are_reused(upstream, proxy):
    up = upstream("a")
    px = proxy(url(up))
    ports = set()
    for _ in range(20):
        status, headers, body = request(px.port, "GET", "/whoami")
        assert status == 200 and body == b"a"
        ports.add(headers["X-Peer-Port"])
    assert len(ports) == 1, ports


def test_round_robin_spreads_evenly(upstream, proxy):
    ups = [upstream(n) for n in "abc"]
    px = proxy(*[url(u) for u in ups])
    seen = [request(px.port, "GET", "/whoami")[2].decode() for _ in range(30)]
    assert {n: seen.count(n) for n in "abc"} == {"a": 10, "b": 10, "c": 10}


def test_least_conn_avoids_the_busy_upstream(upstream, proxy):
    a, b = upstream("a"), upstream("b")
    px = proxy(url(a), url(b), extra=["--policy", "least_conn"])
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        slow = pool.submit(request, px.port, "GET", "/slow?s=1.5")
        time.sleep(0.3)
        quick = [request(px.port, "GET", "/whoami")[2].decode() for _ in range(6)]
        busy = slow.result()[2].decode().split()[-1]
    assert all(n != busy for n in quick), (busy, quick)


def test_dead_upstream_is_skipped_and_all_dead_is_502(upstream, proxy):
    a = upstream("a")
    dead = f"http://127.0.0.1:{free_port()}"
    px = proxy(dead, url(a))
    answers = [request(px.port, "GET", "/whoami") for _ in range(10)]
    assert all(s == 200 and b == b"a" for s, _, b in answers)
    px2 = proxy(dead)
    status, _, body = request(px2.port, "GET", "/whoami")
    assert status == 502
    assert "upstream" in px2.stderr()


def test_slow_upstream_gets_504(upstream, proxy):
    a = upstream("a")
    px = proxy(url(a), extra=["--read-timeout", "0.5", "--max-fails", "0"])
    start = time.monotonic()
    status, _, _ = request(px.port, "GET", "/slow?s=3")
    assert status == 504
    assert time.monotonic() - start < 2.5
    # The upstream is not marked down by it (max-fails 0) and answers the next one.
    assert request(px.port, "GET", "/whoami")[0] == 200


def test_upstream_killed_under_load_fails_over(upstream, proxy):
    a, b = upstream("a"), upstream("b")
    px = proxy(url(a), url(b))
    results = []

    def client(n):
        out = []
        c = http.client.HTTPConnection("127.0.0.1", px.port, timeout=10)
        for _ in range(n):
            c.request("GET", "/whoami")
            r = c.getresponse()
            out.append((r.status, r.read()))
        c.close()
        return out

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(client, 100) for _ in range(8)]
        time.sleep(0.2)
        a.stop(signal.SIGKILL)
        for f in futures:
            results += f.result(timeout=30)  # none hangs
    assert len(results) == 800
    assert all(s == 200 for s, _ in results), [r for r in results if r[0] != 200][:5]
    assert results[-1][1] == b"b"


def test_upstream_dying_mid_body_cuts_the_response(upstream, proxy):
    a = upstream("a")
    px = proxy(url(a))
    c = http.client.HTTPConnection("127.0.0.1", px.port, timeout=10)
    c.request("GET", "/die-mid-body")
    r = c.getresponse()
    assert r.status == 200
    with pytest.raises(http.client.IncompleteRead):
        r.read()


def test_active_health_checks_take_a_sick_upstream_out(upstream, proxy):
    a, b = upstream("a"), upstream("b")
    px = proxy(url(a), url(b), extra=["--health-uri", "/health", "--health-interval", "0.2"])
    request(a.port, "GET", "/sick")
    time.sleep(0.8)
    seen = {request(px.port, "GET", "/whoami")[2] for _ in range(10)}
    assert seen == {b"b"}
    request(a.port, "GET", "/well")
    time.sleep(0.8)
    seen = {request(px.port, "GET", "/whoami")[2] for _ in range(10)}
    assert seen == {b"a", b"b"}


def test_websocket_through_the_proxy(procs, proxy):
    port = free_port()
    ws = procs([str(BIN / "ws_echo"), "--port", str(port)], port)
    px = proxy(url(ws))
    import websockets.client

    async def talk():
        async with websockets.client.connect(f"ws://127.0.0.1:{px.port}/ws") as conn:
            await conn.send("hello")
            assert await conn.recv() == "hello"
            blob = os.urandom(200_000)
            await conn.send(blob)
            assert await conn.recv() == blob
    asyncio.run(talk())


def test_100mb_upload_and_download_in_bounded_memory(upstream, native, proxy):
    a = upstream("a")
    px = proxy(url(a))
    chunk = os.urandom(1 << 20)
    h = hashlib.sha256()
    for _ in range(100):
        h.update(chunk)

    def body():
        for _ in range(100):
            yield chunk
    status, _, answer = request(px.port, "POST", "/sha", body=body(),
                                headers={"Content-Length": str(100 << 20)}, timeout=60)
    assert status == 200
    assert answer.decode() == f"{100 << 20} {h.hexdigest()}"

    up = native()
    px2 = proxy(url(up))
    s = socket.create_connection(("127.0.0.1", px2.port))
    s.sendall(b"GET /big?bytes=104857600 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    total = 0
    while True:
        data = s.recv(1 << 16)
        if not data:
            break
        total += len(data)
        if total < (4 << 20):
            time.sleep(0.001)  # a slow start: the proxy must not buffer ahead
    s.close()
    assert total > 100 << 20
    # Whole-process peak: a copy of either body would be 100 MiB.
    assert px.rss_peak_kib() < 40 * 1024, px.rss_peak_kib()
    assert px2.rss_peak_kib() < 40 * 1024, px2.rss_peak_kib()


def test_serve_config_proxy_route_with_strip_prefix(native, procs, tmp_path):
    up = native()
    port = free_port()
    config = tmp_path / "tronada.toml"
    config.write_text(f"""
[server]
bind = ["127.0.0.1:{port}"]
access_log = "off"

[[route]]
path = "/api/"
strip_prefix = true
[route.proxy]
to = ["{url(up)}"]
policy = "least_conn"
read_timeout = "5s"
""")
    check = subprocess.run([TRONADA, "check", "-c", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert 'policy = "least_conn"' in check.stdout
    procs([TRONADA, "serve", "-c", str(config)], port)
    status, _, body = request(port, "GET", "/api/echo?q=1")
    assert status == 200
    assert json.loads(body)["uri"] == "/echo?q=1"
    assert request(port, "GET", "/other")[0] == 404


def test_check_rejects_a_bad_upstream(tmp_path):
    config = tmp_path / "tronada.toml"
    config.write_text('[[route]]\npath = "/"\n[route.proxy]\nto = ["backend:80"]\n')
    check = subprocess.run([TRONADA, "check", "-c", str(config)], capture_output=True, text=True)
    assert check.returncode != 0
    assert "tronada.toml:4" in check.stderr, check.stderr


def test_upstream_dying_mid_body_resets_the_h2_stream(upstream, proxy):
    a = upstream("a")
    px = proxy(url(a))
    r = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "-o", "/dev/null",
                        f"{url(px)}/die-mid-body"], capture_output=True, text=True, timeout=20)
    assert r.returncode != 0, "a cut body must not look complete"
    # The upstream is gone now: the next request gets a whole 502 page over h2.
    gone = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "-w", "%{http_code}",
                           f"{url(px)}/whoami"], capture_output=True, text=True, timeout=20)
    assert gone.returncode == 0 and gone.stdout.endswith("502")


def test_https_upstream_is_verified(procs, proxy, tmp_path):
    crt, key = tmp_path / "c.pem", tmp_path / "k.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key),
                    "-out", str(crt)], check=True, capture_output=True)
    port = free_port()
    procs([str(BIN / "http_test_server"), "--port", str(port), "--certfile", str(crt),
           "--keyfile", str(key)], port)
    trusted = proxy(f"https://localhost:{port}", extra=["--upstream-ca", str(crt)])
    status, _, body = request(trusted.port, "GET", "/remote")
    assert status == 200 and b"https" in body
    untrusted = proxy(f"https://localhost:{port}")  # the system's CAs do not know it
    assert request(untrusted.port, "GET", "/remote")[0] == 502
    assert "certificate" in untrusted.stderr().lower()


def test_serve_mixes_static_wsgi_and_proxy_routes(native, procs, tmp_path):
    up = native()
    public = tmp_path / "public"
    public.mkdir()
    (public / "index.html").write_text("<h1>static</h1>\n")
    port = free_port()
    config = tmp_path / "tronada.toml"
    config.write_text(f"""
[server]
bind = ["127.0.0.1:{port}"]
access_log = "{tmp_path}/access.log"

[[route]]
path = "/api/"
strip_prefix = true
proxy = {{ to = ["{url(up)}"] }}

[[route]]
path = "/app"
wsgi = {{ app = "hello:application", pythonpath = ["{APPS}"] }}

[[route]]
path = "/"
static.root = "{public}"
""")
    server = procs([TRONADA, "serve", "-c", str(config)], port)
    assert request(port, "GET", "/")[2] == b"<h1>static</h1>\n"
    assert request(port, "GET", "/app")[2] == b"Hello, World!"
    status, _, body = request(port, "GET", "/api/echo")
    assert status == 200 and json.loads(body)["uri"] == "/echo"
    server.stop()


def test_malformed_and_oversized_upstream_responses_are_502(upstream, proxy):
    a = upstream("a")
    px = proxy(url(a), extra=["--max-fails", "0"])
    assert request(px.port, "GET", "/garbage")[0] == 502
    assert request(px.port, "GET", "/big-header")[0] == 502
    assert request(px.port, "GET", "/whoami")[2] == b"a"  # and the next one is fine
    log = px.stderr()
    assert "malformed response" in log
