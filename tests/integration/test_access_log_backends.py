"""The access log of `tronada serve` for every backend: response body bytes on each line
(WSGI once wrote `-`), and in the JSON format the route, the upstream and its time.
Real backends: a WSGI app, apps/upstream.py behind the proxy, libfcgi's responder."""
import http.client
import json
import signal
import subprocess
import time

import pytest

from conftest import BIN, free_port, wait_for_port
from test_proxy import APPS, PYTHON, Proc

TRONADA = str(BIN / "tronada")


def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


@pytest.fixture
def served(tmp_path):
    procs = []

    def start(fmt):
        up_port = free_port()
        procs.append(Proc([PYTHON, str(APPS / "upstream.py"), str(up_port), "up"], up_port))
        fcgi_routes = ""
        fcgi = BIN / "fcgi_responder"
        if fcgi.exists():
            fcgi_port = free_port()
            p = subprocess.Popen([str(fcgi), "--port", str(fcgi_port)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(p)
            wait_for_port(fcgi_port, p)
            root = tmp_path / "fcgi-root"
            (root / "php").mkdir(parents=True, exist_ok=True)
            (root / "php" / "echo.php").write_text("handled by the responder\n")
            fcgi_routes = f"""
[[route]]
path = "/php/"
fastcgi = {{ to = "127.0.0.1:{fcgi_port}", root = "{root}" }}
"""
        public = tmp_path / "public"
        public.mkdir(exist_ok=True)
        (public / "page.txt").write_text("hello\n")
        port = free_port()
        log_path = tmp_path / f"access-{fmt}.log"
        config = tmp_path / f"tronada-{fmt}.toml"
        config.write_text(f"""
[server]
bind = ["127.0.0.1:{port}"]
access_log = "{log_path}"
access_log_format = "{fmt}"

[[route]]
path = "/app"
wsgi = {{ app = "pep3333:raw", pythonpath = ["{APPS}"], threads = 2 }}

[[route]]
path = "/up/"
strip_prefix = true
proxy = {{ to = ["http://127.0.0.1:{up_port}"] }}
{fcgi_routes}
[[route]]
path = "/"
static.root = "{public}"
""")
        proc = subprocess.Popen([TRONADA, "serve", "-c", str(config)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        wait_for_port(port, proc)
        return proc, port, log_path, up_port, bool(fcgi_routes)

    yield start
    for p in procs:
        if isinstance(p, Proc):
            p.stop(signal.SIGKILL)
        elif p.poll() is None:
            p.kill()
            p.wait()


def stop_and_read(proc, log_path):
    proc.terminate()  # flushes the access log
    proc.wait(timeout=20)
    return log_path.read_text().splitlines()


def test_json_lines_have_bytes_route_and_upstream(served):
    proc, port, log_path, up_port, has_fcgi = served("json")
    bodies = {"/app/pid": get(port, "/app/pid")[1], "/up/whoami": get(port, "/up/whoami")[1],
              "/page.txt": get(port, "/page.txt")[1]}
    if has_fcgi:
        bodies["/php/echo.php"] = get(port, "/php/echo.php")[1]
    lines = [json.loads(line) for line in stop_and_read(proc, log_path)]
    by_uri = {line["uri"]: line for line in lines}
    for uri, body in bodies.items():
        assert by_uri[uri]["status"] == 200, by_uri[uri]
        assert by_uri[uri]["bytes"] == len(body), (uri, by_uri[uri])
    assert by_uri["/app/pid"]["route"] == "/app"
    assert by_uri["/page.txt"]["route"] == "/"
    proxied = by_uri["/up/whoami"]
    assert proxied["route"] == "/up/"
    assert proxied["upstream"] == f"http://127.0.0.1:{up_port}"
    assert proxied["upstream_ms"] > 0
    assert proxied["upstream_ms"] <= proxied["duration_ms"]
    assert "upstream" not in by_uri["/app/pid"]


def test_combined_lines_count_wsgi_bytes(served):
    proc, port, log_path, _, _ = served("combined")
    status, body = get(port, "/app/pid")
    assert status == 200
    lines = stop_and_read(proc, log_path)
    line = next(line for line in lines if '"GET /app/pid HTTP/1.1"' in line)
    assert f" 200 {len(body)} " in line, line
