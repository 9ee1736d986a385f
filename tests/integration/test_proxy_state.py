"""Proxy upstream state that must survive what happens around it: a config reload
(SIGHUP) keeps a frozen upstream out, and connects that fail while a request looks for an
upstream are logged. Real upstreams (apps/upstream.py) on loopback."""
import http.client
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BIN, free_port, wait_for_port

TRONADA = str(BIN / "tronada")
APPS = Path(__file__).resolve().parent / "apps"
PYTHON = "/usr/bin/python3"


@pytest.fixture
def procs():
    started = []

    def start(argv, port, **kwargs):
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, **kwargs)
        started.append(p)
        wait_for_port(port, p)
        return p

    yield start
    for p in started:
        if p.poll() is None:
            p.send_signal(signal.SIGCONT)
            p.kill()
            p.wait()


def start_upstream(procs, name):
    port = free_port()
    p = procs([PYTHON, str(APPS / "upstream.py"), str(port), name], port,
              stderr=subprocess.DEVNULL)
    p.port = port
    return p


def whoami(port, timeout=20):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", "/whoami")
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def wait_for(fn, what, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return
        time.sleep(0.05)
    raise AssertionError(what)


def test_reload_keeps_a_frozen_upstream_out(procs, tmp_path):
    a, b = start_upstream(procs, "a"), start_upstream(procs, "b")
    port = free_port()
    config = tmp_path / "tronada.toml"
    config.write_text(f"""
[server]
bind = ["127.0.0.1:{port}"]
access_log = "off"

[[route]]
path = "/"
[route.proxy]
to = ["http://127.0.0.1:{a.port}", "http://127.0.0.1:{b.port}"]
health_uri = "/health"
health_interval = "200ms"
health_timeout = "300ms"
read_timeout = "60s"
""")
    log_path = tmp_path / "tronada.log"
    with open(log_path, "wb") as log_file:
        front = procs([TRONADA, "serve", "-c", str(config)], port, stderr=log_file)

    def log():
        return log_path.read_text(errors="replace")

    assert {whoami(port)[1] for _ in range(6)} == {b"a", b"b"}
    # Frozen: the kernel still accepts its connections, nothing answers. Only the health
    # check's timeout can find it.
    a.send_signal(signal.SIGSTOP)
    wait_for(lambda: f"upstream http://127.0.0.1:{a.port} failed its health check" in log(),
             "the frozen upstream never failed its health check:\n" + log())
    assert {whoami(port)[1] for _ in range(6)} == {b"b"}

    front.send_signal(signal.SIGHUP)
    wait_for(lambda: "configuration reloaded" in log(), "no reload:\n" + log())
    # Straight after the reload, before the new route's own checks could time out: a
    # request sent to `a` would wait for read_timeout (60 s) and fail here.
    for _ in range(6):
        assert whoami(port) == (200, b"b")

    a.send_signal(signal.SIGCONT)
    wait_for(lambda: f"upstream http://127.0.0.1:{a.port} is healthy again" in log(),
             "the thawed upstream never came back:\n" + log())
    assert b"a" in {whoami(port)[1] for _ in range(6)}


def test_refused_connects_are_logged_and_rate_limited(procs, tmp_path):
    b = start_upstream(procs, "b")
    dead = free_port()  # nothing listens: connects are refused
    port = free_port()
    log_path = tmp_path / "proxy.log"
    with open(log_path, "wb") as log_file:
        front = procs([TRONADA, "proxy", "-b", f"127.0.0.1:{port}", "--access-log", "off",
                       "--max-fails", "0", "--to", f"http://127.0.0.1:{dead}",
                       "--to", f"http://127.0.0.1:{b.port}"], port, stderr=log_file)
    for _ in range(60):
        assert whoami(port) == (200, b"b")
    front.terminate()
    front.wait(timeout=20)
    log = log_path.read_text(errors="replace")
    lines = [line for line in log.splitlines()
             if f"upstream http://127.0.0.1:{dead}: cannot connect" in line]
    assert lines, log
    # Thirty of the sixty requests met the dead upstream; one line a second says so.
    assert len(lines) < 30, log


def test_health_timeout_flag_is_checked():
    bad = subprocess.run([TRONADA, "proxy", "--to", "http://127.0.0.1:1",
                          "--health-timeout", "-1"], capture_output=True, text=True)
    assert bad.returncode != 0
    assert "--health-timeout" in bad.stderr
    help_text = subprocess.run([TRONADA, "proxy", "--help"], capture_output=True,
                               text=True).stdout
    assert "--health-timeout" in help_text
