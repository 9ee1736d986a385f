"""The admin listener (issue 19): /metrics counts what was served, per route and backend,
summed by the master over `workers = 2`; /healthz; /readyz turns 503 the moment a drain
starts (and stays so through drain_delay while the public port still serves); the admin
port is not served on the public binds. Parsed with the real Prometheus parser."""
import concurrent.futures
import http.client
import os
import signal
import socket
import subprocess
import time

import pytest
from prometheus_client.openmetrics.parser import \
    text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus

from conftest import BIN, free_port, wait_for_port
from test_proxy import APPS, PYTHON, Proc

TRONADA = str(BIN / "tronada")


def get(port, path, headers=None, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def samples(text, parse=parse_prometheus):
    """{(name, frozenset(labels)): value} of every sample."""
    out = {}
    for family in parse(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def requests_total(metrics, route, backend, status):
    return metrics.get(("tronada_http_requests_total",
                        frozenset({"route": route, "backend": backend, "status": status}.items())))


def scrape(admin_port, accept=None):
    status, headers, body = get(admin_port, "/metrics", {"Accept": accept} if accept else None)
    assert status == 200
    return headers, body.decode()


def wait_until(predicate, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def serve(tmp_path):
    procs = []

    def start(workers=1, drain_delay="0s", extra_server=""):
        public = tmp_path / "public"
        public.mkdir(exist_ok=True)
        (public / "page.txt").write_text("hello\n")
        up_port = free_port()
        procs.append(Proc([PYTHON, str(APPS / "upstream.py"), str(up_port), "up"], up_port))
        port, admin = free_port(), free_port()
        config = tmp_path / "tronada.toml"
        config.write_text(f"""
[server]
bind = ["127.0.0.1:{port}"]
admin = "127.0.0.1:{admin}"
workers = {workers}
access_log = "off"
drain_delay = "{drain_delay}"
shutdown_timeout = "20s"
{extra_server}

[[route]]
path = "/app"
wsgi = {{ app = "pep3333:raw", pythonpath = ["{APPS}"], threads = 4 }}

[[route]]
path = "/up/"
strip_prefix = true
proxy = {{ to = ["http://127.0.0.1:{up_port}"] }}

[[route]]
path = "/old"
redirect = {{ to = "/page.txt", status = 301 }}

[[route]]
path = "/"
static.root = "{public}"
""")
        log = open(tmp_path / "serve.log", "wb")
        proc = subprocess.Popen([TRONADA, "serve", "-c", str(config)], stdout=log,
                                stderr=subprocess.STDOUT)
        procs.append(proc)
        wait_for_port(port, proc)
        wait_for_port(admin, proc)
        wait_until(lambda: get(admin, "/readyz")[0] == 200, "ready")
        return proc, port, admin

    yield start
    for p in procs:
        if isinstance(p, Proc):
            p.stop(signal.SIGKILL)
        elif p.poll() is None:
            p.kill()
            p.wait()


def test_counts_per_route_and_backend_summed_over_two_workers(serve):
    proc, port, admin = serve(workers=2)
    expected = {("/app", "wsgi", "2xx"): 0, ("/up/", "proxy", "2xx"): 0,
                ("/old", "redirect", "3xx"): 0, ("/", "static", "2xx"): 0,
                ("/", "static", "4xx"): 0}
    pids = set()

    def one(i):
        kind = i % 5
        if kind == 0:
            status, _, body = get(port, "/app/pid")
            return ("/app", "wsgi", "2xx"), status, body.decode()
        if kind == 1:
            return ("/up/", "proxy", "2xx"), get(port, "/up/whoami")[0], None
        if kind == 2:
            return ("/old", "redirect", "3xx"), get(port, "/old")[0], None
        if kind == 3:
            return ("/", "static", "2xx"), get(port, "/page.txt")[0], None
        return ("/", "static", "4xx"), get(port, "/missing")[0], None

    # New connections in parallel, so both workers take some: the master's sum is what is
    # checked, not one worker's count.
    sent = 0
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        while sent < 400 and (sent < 100 or len(pids) < 2):
            for key, status, pid in pool.map(one, range(sent, sent + 50)):
                assert status // 100 == int(key[2][0]), key
                expected[key] += 1
                if pid:
                    pids.add(pid)
            sent += 50
    assert len(pids) == 2, "both workers served WSGI requests"

    def matches():
        m = samples(scrape(admin)[1])
        return m if all(requests_total(m, *k) == v for k, v in expected.items()) else None

    metrics = wait_until(matches, f"counts {expected}")
    assert metrics[("tronada_workers", frozenset({"state": "live"}.items()))] == 2
    assert metrics[("tronada_workers", frozenset({"state": "ready"}.items()))] == 2
    assert metrics[("tronada_ready", frozenset())] == 1
    static_count = metrics[("tronada_http_request_duration_seconds_count",
                            frozenset({"route": "/", "backend": "static"}.items()))]
    assert static_count == expected[("/", "static", "2xx")] + expected[("/", "static", "4xx")]
    inf = metrics[("tronada_http_request_duration_seconds_bucket",
                   frozenset({"route": "/", "backend": "static", "le": "+Inf"}.items()))]
    assert inf == static_count
    assert metrics[("tronada_http_response_body_bytes_total",
                    frozenset({"route": "/", "backend": "static"}.items()))] >= \
        6 * expected[("/", "static", "2xx")]
    assert metrics[("process_cpu_seconds_total", frozenset())] > 0
    assert metrics[("process_open_fds", frozenset())] > 0

    # OpenMetrics when asked for, parsed by the strict OpenMetrics parser.
    headers, text = scrape(admin, "application/openmetrics-text; version=1.0.0")
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    om = samples(text, parse_openmetrics)
    assert om[("tronada_http_requests_total", frozenset(
        {"route": "/old", "backend": "redirect", "status": "3xx"}.items()))] >= \
        expected[("/old", "redirect", "3xx")]


def test_admin_paths_are_not_served_on_the_public_port(serve):
    proc, port, admin = serve()
    for path in ("/metrics", "/healthz", "/readyz"):
        status, _, body = get(port, path)
        assert status == 404, path
        assert b"tronada_" not in body
    assert get(admin, "/healthz")[0] == 200
    assert get(admin, "/page.txt")[0] == 404


def test_readiness_turns_503_when_a_drain_starts_and_serving_goes_on_for_drain_delay(serve):
    proc, port, admin = serve(drain_delay="3s")
    assert get(admin, "/readyz")[0] == 200
    assert get(admin, "/healthz")[0] == 200
    proc.send_signal(signal.SIGTERM)
    status, _, body = wait_until(lambda: (lambda r: r if r[0] == 503 else None)(
        get(admin, "/readyz")), "readyz 503")
    assert b"draining" in body
    # The public port still answers during drain_delay (a load balancer may still send).
    assert get(port, "/page.txt")[0] == 200
    assert get(admin, "/healthz")[0] == 200
    assert proc.wait(timeout=30) == 0


def test_static_command_admin_on_a_unix_socket(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    port = free_port()
    sock_path = tmp_path / "admin.sock"
    proc = subprocess.Popen([TRONADA, "static", str(tmp_path), "-b", f"127.0.0.1:{port}",
                             "--admin", f"unix:{sock_path}", "--access-log", "off"],
                            stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc)
        for _ in range(3):
            assert get(port, "/a.txt")[0] == 200

        def unix_get(path):
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(10)
                s.connect(str(sock_path))
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            return int(head.split()[1]), body.decode()

        def counted():
            status, text = unix_get("/metrics")
            m = samples(text)
            return requests_total(m, "/", "static", "2xx") == 3
        wait_until(counted, "3 static requests counted")
        # The first request looked the file up; the other two were answered from the
        # open-file cache without a coroutine, and count their bytes all the same.
        m = samples(unix_get("/metrics")[1])
        assert m[("tronada_http_response_body_bytes_total",
                  frozenset({"route": "/", "backend": "static"}.items()))] == 3
        assert unix_get("/readyz")[0] == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert not os.path.exists(sock_path)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_proxy_command_with_admin_exits_cleanly_after_serving():
    """`tronada proxy --admin`: the route (and its upstream series) outlives the metrics
    region on the way out; it used to write into the unmapped region (SIGSEGV)."""
    up_port = free_port()
    up = Proc([PYTHON, str(APPS / "upstream.py"), str(up_port), "up"], up_port)
    port, admin = free_port(), free_port()
    proc = subprocess.Popen([TRONADA, "proxy", "--to", f"http://127.0.0.1:{up_port}", "-b",
                             f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}",
                             "--access-log", "off"], stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc)
        assert get(port, "/whoami")[0] == 200
        wait_until(lambda: "tronada_upstream_connections{" in scrape(admin)[1], "gauges")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        up.stop(signal.SIGKILL)


def test_admin_address_that_is_a_public_bind_is_refused(tmp_path):
    port = free_port()
    r = subprocess.run([TRONADA, "static", str(tmp_path), "-b", f"127.0.0.1:{port}",
                        "--admin", f"127.0.0.1:{port}"], capture_output=True, timeout=30)
    assert r.returncode != 0
