"""The bundled demo (demo/tronada.toml), as ./scripts/run serves it: the welcome page and
static files, the WSGI app and, when php-fpm is installed, the PHP page. The demo folder is
copied to a temp dir so php-fpm's socket and logs stay out of the source tree."""
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import BIN, ROOT, free_port, wait_for_port

DEMO = ROOT / "demo"
HAVE_PHP = any(Path("/usr/sbin").glob("php-fpm*"))

COMBINED = re.compile(
    r'^\S+ - - \[[^\]]+\] "(?P<method>\S+) (?P<uri>\S+) HTTP/[\d.]+" '
    r'(?P<status>\d{3}) (?:\d+|-) "[^"]*" "[^"]*"$')


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def demo(tmp_path):
    site = tmp_path / "demo"
    shutil.copytree(DEMO, site, ignore=shutil.ignore_patterns("run", "__pycache__"))
    procs = []
    if HAVE_PHP:
        fpm = subprocess.Popen([str(site / "php-fpm.sh")], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
        procs.append(fpm)
        sock = site / "run" / "php-fpm.sock"
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert fpm.poll() is None, "php-fpm exited"
            assert time.monotonic() < deadline, "php-fpm did not create its socket"
            time.sleep(0.05)
    port = free_port()
    log = open(tmp_path / "serve.log", "wb")
    server = subprocess.Popen(
        [str(BIN / "tronada"), "serve", "-c", str(site / "tronada.toml"),
         "-b", f"127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    procs.append(server)
    wait_for_port(port, server)
    yield port, server, tmp_path / "serve.log"
    for p in reversed(procs):
        stop(p)
    log.close()


def test_demo_config_checks():
    r = subprocess.run([str(BIN / "tronada"), "check", "-q", "-c", str(DEMO / "tronada.toml")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "is ok" in r.stderr


def test_demo_serves_every_route(demo):
    port, server, log = demo
    status, ctype, body = get(port, "/")
    assert status == 200 and ctype.startswith("text/html")
    assert "Welcome to tronada" in body
    assert get(port, "/hello.txt")[2] == "Hello from a static file.\n"
    assert get(port, "/style.css")[1].startswith("text/css")

    status, _, body = get(port, "/app")
    assert status == 200 and "Hello from a WSGI app" in body
    status, ctype, body = get(port, "/app/json")
    assert ctype == "application/json"
    assert json.loads(body)["script_name"] == "/app"

    if HAVE_PHP:
        status, _, body = get(port, "/php/")
        assert status == 200 and "Hello from PHP" in body
        assert "Request URI: /php/." in body

    stop(server)
    assert server.returncode == 0
    lines = [l for l in log.read_text().splitlines() if l.startswith("127.0.0.1 ")]
    parsed = [COMBINED.match(l) for l in lines]
    assert all(parsed), lines
    uris = [m["uri"] for m in parsed]
    assert "/" in uris and "/app/json" in uris
    assert all(m["status"] == "200" for m in parsed)
