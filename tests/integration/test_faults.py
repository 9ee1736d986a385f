"""Backends that fail on purpose, and what tronada's clients see.

php-fpm children killed with SIGKILL (before any output and mid-stream), php-fpm not
running, a FastCGI responder that never answers, and HTTP upstreams that never answer,
answer one byte at a time, or reset the connection (apps/faulty_peer.py). For each:
the faulty request gets the answer docs/proxy.md and docs/robustness.md document (502,
504 or a cut response that cannot be mistaken for a whole one), a healthy route of the
same server answers while the fault is going on, and after a few hundred faulty
requests the server holds exactly the fds it held before and about the same memory."""
import concurrent.futures
import http.client
import os
import select
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BUILD, BIN, ROOT, free_port, rss_kib, wait_for_port
from test_fastcgi import PHP_DIR, PHP_FPM, PHPFPM, wait_for_path
from test_proxy import APPS, PYTHON, Proc

TRONADA = str(BIN / "tronada")


def sanitized_build():
    try:
        cache = (BUILD / "CMakeCache.txt").read_text()
    except OSError:
        return False
    return any(line.startswith("TRONADA_SANITIZE:") and line.split("=", 1)[1].strip()
               for line in cache.splitlines())


# Under ASan a freed block sits in a quarantine (256 MiB by default) before it is reused,
# so RSS climbs with every request until the quarantine is full and says nothing about
# leaks. These runs switch the quarantine off; use-after-free is still caught by the rest
# of the suite, and LeakSanitizer still checks at exit (tronada must exit 0).
SERVER_ENV = dict(os.environ, ASAN_OPTIONS="quarantine_size_mb=0:detect_leaks=1",
                  LSAN_OPTIONS=f"suppressions={ROOT}/tests/lsan.supp")

# RSS may move a little without a leak: malloc keeps freed memory in per-thread arenas
# and size-class free lists, and the first use of a code path maps pages (a first 502
# page, a first timer wheel slot). 2 MiB is well above that noise (a few hundred KiB in
# the runs this was written with) and well below a leak of even 10 KiB per faulty
# request over the 200 requests each test sends (2 MB).
RSS_SLACK_KIB = 2048


class Tronada:
    """`tronada ARGS...` with its log in a file, for fd and memory readings."""

    def __init__(self, tmp, port, *args):
        self.port = port
        self.log = tmp / f"tronada-{port}.log"
        self.logf = open(self.log, "wb")
        self.proc = subprocess.Popen([TRONADA, *args], stdout=self.logf,
                                     stderr=subprocess.STDOUT, env=SERVER_ENV)
        wait_for_port(port, self.proc)

    def fds(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def fd_targets(self):
        out = []
        for fd in os.listdir(f"/proc/{self.proc.pid}/fd"):
            try:
                out.append(os.readlink(f"/proc/{self.proc.pid}/fd/{fd}"))
            except OSError:
                pass
        return sorted(out)

    def rss_kib(self):
        return rss_kib(self.proc.pid)

    def log_text(self):
        if not self.logf.closed:
            self.logf.flush()
        return self.log.read_text(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        return self.proc.returncode


@pytest.fixture
def servers(tmp_path):
    started = []

    def start(*args):
        port = free_port()
        t = Tronada(tmp_path, port, *[a.format(port=port) for a in args])
        started.append(t)
        return t

    yield start
    for t in started:
        code = t.stop()
        assert code == 0, t.log_text()[-4000:]  # LeakSanitizer fails the exit under ASan
        assert "LeakSanitizer" not in t.log_text()


@pytest.fixture
def peers():
    started = []

    def start(script, *args):
        port = free_port()
        p = Proc([PYTHON, str(APPS / script), str(port), *args], port)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop(signal.SIGKILL)


def get(port, path, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def raw_get(port, path, timeout=10):
    """The whole byte stream of one request on its own connection, read to EOF or reset."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    data = b""
    try:
        while True:
            piece = s.recv(65536)
            if not piece:
                break
            data += piece
    except ConnectionResetError:
        pass
    s.close()
    return data


def is_cut(raw):
    """True if a response is visibly incomplete: chunked without the last chunk, or a
    Content-Length the body falls short of."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        return not body.endswith(b"0\r\n\r\n")
    for line in lower.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return len(body) < int(line.split(b":")[1])
    return False


class Healthy:
    """Keeps asking a healthy path (one kept-alive connection) while a fault goes on."""

    def __init__(self, port, path, expect):
        self.port, self.path, self.expect = port, path, expect
        self.answers = []
        self.stop_flag = False
        self.pool = concurrent.futures.ThreadPoolExecutor(1)
        self.future = self.pool.submit(self.run)
        self.wait_for(2)

    def run(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self.stop_flag:
            c.request("GET", self.path)
            r = c.getresponse()
            self.answers.append((r.status, r.read()))
            time.sleep(0.01)
        c.close()

    def wait_for(self, n, timeout=10):
        deadline = time.monotonic() + timeout
        while len(self.answers) < n:
            assert not self.future.done(), self.future.result()
            assert time.monotonic() < deadline, self.answers
            time.sleep(0.01)

    def during(self, fault):
        """fault() and how many healthy answers came while it ran."""
        before = len(self.answers)
        result = fault()
        return result, len(self.answers) - before

    def finish(self):
        # Answers after the fault too: the healthy connection survived it.
        self.wait_for(len(self.answers) + 2)
        self.stop_flag = True
        self.future.result(timeout=15)
        self.pool.shutdown()
        assert all(s == 200 and b == self.expect for s, b in self.answers), self.answers[:5]


def settle_fds(server, baseline, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.fds() == baseline:
            return
        time.sleep(0.05)
    raise AssertionError(f"fds {server.fds()} != baseline {baseline}: {server.fd_targets()}")


def no_leak(server, fault, warmup=20, rounds=200, concurrency=40, healthy=None):
    """Runs `fault` (a callable doing one faulty request and checking its answer) `warmup`
    times, takes the server's fd count and RSS, runs it `rounds` more times (in parallel),
    and checks both came back. `healthy` is re-asked after each round so that pooled
    connections to healthy backends are in the same state at both readings."""
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda _: fault(), range(warmup)))
        if healthy:
            healthy()
        time.sleep(0.3)
        fds0, rss0 = server.fds(), server.rss_kib()
        list(pool.map(lambda _: fault(), range(rounds)))
    if healthy:
        healthy()
    settle_fds(server, fds0)
    rss1 = server.rss_kib()
    assert rss1 - rss0 < RSS_SLACK_KIB, (rss0, rss1)
    return {"fds": (fds0, server.fds()), "rss_kib": (rss0, rss1)}


def report(name, figures):
    # Shown with pytest -s; docs/robustness.md quotes these.
    print(f"\n[faults] {name}: fds {figures['fds'][0]} -> {figures['fds'][1]}, "
          f"RSS {figures['rss_kib'][0]} -> {figures['rss_kib'][1]} KiB")


# --- php-fpm -----------------------------------------------------------------------

php = pytest.mark.skipif(PHP_FPM is None, reason="php-fpm is not installed")


@pytest.fixture
def fpm(tmp_path):
    f = PHPFPM(tmp_path, children=3)
    yield f
    f.stop()


def php_server(servers, fpm, *extra):
    return servers("fastcgi", "--to", "unix:" + fpm.sock, "--root", str(PHP_DIR),
                   "-b", "127.0.0.1:{port}", "--max-conns", "3", "--access-log", "off",
                   "--read-timeout", "5", *extra)


def kill_php_child(port, tmp_path, mode, n, method="GET", kills=1):
    """One request to fault.php whose php-fpm child is SIGKILLed once it has started (and,
    in stream mode, once the client has the head and a first line); again, up to `kills`
    times, if the request is retried on another child. Returns the raw response bytes."""
    pidfile = tmp_path / f"pid-{mode}-{n}"
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    s.sendall(f"{method} /fault.php?mode={mode}&pidfile={pidfile} HTTP/1.1\r\nHost: x\r\n"
              "Content-Length: 0\r\n\r\n".encode())
    data = b""
    killed = set()
    deadline = time.monotonic() + 10
    while len(killed) < kills:
        text = pidfile.read_text() if pidfile.exists() else ""
        if text and int(text) not in killed:
            if mode == "stream":
                while b"line 0\n" not in data:
                    piece = s.recv(65536)
                    assert piece, data
                    data += piece
            killed.add(int(text))
            os.kill(int(text), signal.SIGKILL)
            continue
        if killed and select.select([s], [], [], 0.01)[0]:
            break  # answered without another try
        assert time.monotonic() < deadline, "the script did not start"
        time.sleep(0.01)
    try:
        while True:
            piece = s.recv(65536)
            if not piece:
                break
            data += piece
            if mode == "quiet" and b"\r\n\r\n" in data and is_complete(data):
                break  # an answer on a kept-alive connection: no EOF follows
    except ConnectionResetError:
        pass
    s.close()
    return data


def is_complete(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


@php
def test_php_child_killed_before_output_is_502(servers, fpm, tmp_path):
    t = php_server(servers, fpm)
    assert get(t.port, "/hello.php") == (200, b"Hello, World!")  # connections now reused
    healthy = Healthy(t.port, "/hello.php", b"Hello, World!")
    # A POST is not run twice: 502 at once.
    raw = kill_php_child(t.port, tmp_path, "quiet", 0, method="POST")
    assert raw.startswith(b"HTTP/1.1 502 "), raw[:200]
    # A GET that was on a reused connection looks like a connection php-fpm recycled,
    # and is tried again, up to 3 attempts in all while it keeps landing on reused
    # connections (which it does depends on the pool); when the last dies too, 502.
    raw = kill_php_child(t.port, tmp_path, "quiet", 1, method="GET", kills=3)
    assert raw.startswith(b"HTTP/1.1 502 "), raw[:200]
    healthy.finish()
    # php-fpm starts new children and the next requests are served.
    for _ in range(6):
        assert get(t.port, "/hello.php") == (200, b"Hello, World!")
    log = t.log_text()
    assert log.count("kept-alive connection closed, retrying") <= 2, log
    assert "502 POST /fault.php" in log and "502 GET /fault.php" in log


@php
def test_php_child_killed_mid_stream_cuts_the_response(servers, fpm, tmp_path):
    t = php_server(servers, fpm)
    healthy = Healthy(t.port, "/hello.php", b"Hello, World!")
    raw = kill_php_child(t.port, tmp_path, "stream", 0)
    assert raw.startswith(b"HTTP/1.1 200 "), raw[:200]
    assert b"line 0\n" in raw
    assert is_cut(raw), raw[-200:]  # no last chunk: the client knows it is not whole
    healthy.finish()
    for _ in range(6):
        assert get(t.port, "/hello.php") == (200, b"Hello, World!")
    assert "after the response began; closing the connection" in t.log_text()


@php
def test_php_child_kills_leak_nothing(servers, fpm, tmp_path):
    t = php_server(servers, fpm)
    counter = iter(range(1_000_000))

    def fault():
        n = next(counter)
        mode = "stream" if n % 2 else "quiet"
        raw = kill_php_child(t.port, tmp_path, mode, n, method="POST")
        if mode == "quiet":
            assert raw.startswith(b"HTTP/1.1 502 "), raw[:200]
        else:
            assert is_cut(raw)

    # Fewer rounds than the others: each kill waits for php-fpm to fork a new child.
    # Three at a time, one per child.
    figures = no_leak(t, fault, warmup=6, rounds=60, concurrency=3,
                      healthy=lambda: get(t.port, "/hello.php"))
    report("php-fpm child SIGKILL", figures)


def test_fastcgi_backend_not_running_is_502_at_once(servers, tmp_path):
    t = servers("fastcgi", "--to", f"unix:{tmp_path}/nobody.sock", "--root", str(PHP_DIR),
                "-b", "127.0.0.1:{port}", "--access-log", "off")
    t2 = servers("fastcgi", "--to", f"127.0.0.1:{free_port()}", "--root", str(PHP_DIR),
                 "-b", "127.0.0.1:{port}", "--access-log", "off")
    for server in (t, t2):
        start = time.monotonic()
        assert get(server.port, "/hello.php")[0] == 502
        assert time.monotonic() - start < 2  # refused, not timed out
        assert get(server.port, "/page.html")[0] == 200  # static files need no backend

        def fault(server=server):
            assert get(server.port, "/hello.php")[0] == 502
        report("FastCGI refused", no_leak(server, fault))


def test_fastcgi_backend_that_never_answers_is_504(servers, peers):
    silent = peers("faulty_peer.py")
    t = servers("fastcgi", "--to", f"127.0.0.1:{silent.port}", "--root", str(PHP_DIR),
                "-b", "127.0.0.1:{port}", "--access-log", "off", "--read-timeout", "0.3",
                "--max-conns", "64")
    healthy = Healthy(t.port, "/plain.txt", (PHP_DIR / "plain.txt").read_bytes())
    start = time.monotonic()
    (status, _), answered = healthy.during(lambda: get(t.port, "/hello.php"))
    assert status == 504
    assert time.monotonic() - start >= 0.3
    assert answered >= 2  # static files served while the FastCGI request waited
    healthy.finish()
    assert "timed out" in t.log_text()

    def fault():
        assert get(t.port, "/hello.php")[0] == 504
    report("FastCGI silent", no_leak(t, fault))


# --- HTTP upstreams ------------------------------------------------------------------


@pytest.fixture
def proxied(servers, peers, tmp_path):
    """`tronada serve` with /bad/ proxied to faulty_peer.py (300 ms read timeout, never
    marked down) and /good/ to apps/upstream.py."""
    bad = peers("faulty_peer.py")
    good = peers("upstream.py", "good")
    config = tmp_path / "faults.toml"
    port = free_port()
    config.write_text(f"""
[server]
bind = ["127.0.0.1:{port}"]
access_log = "off"

[[route]]
path = "/bad/"
strip_prefix = true
[route.proxy]
to = ["http://127.0.0.1:{bad.port}"]
read_timeout = "300ms"
max_fails = 0

[[route]]
path = "/good/"
strip_prefix = true
[route.proxy]
to = ["http://127.0.0.1:{good.port}"]
""")
    t = Tronada(tmp_path, port, "serve", "-c", str(config))
    t.bad_port = bad.port
    yield t
    code = t.stop()
    assert code == 0, t.log_text()[-4000:]
    assert "LeakSanitizer" not in t.log_text()


def good(t):
    assert get(t.port, "/good/whoami") == (200, b"good")


def test_upstream_that_never_answers_is_504(proxied):
    t = proxied
    healthy = Healthy(t.port, "/good/whoami", b"good")
    start = time.monotonic()
    (status, _), answered = healthy.during(lambda: get(t.port, "/bad/silent"))
    assert status == 504
    assert time.monotonic() - start >= 0.3
    assert answered >= 2
    healthy.finish()
    assert "timed out" in t.log_text()

    def fault():
        assert get(t.port, "/bad/silent")[0] == 504
    report("upstream silent", no_leak(t, fault, healthy=lambda: good(t)))


def test_upstream_answering_byte_by_byte_arrives_whole(proxied):
    t = proxied
    healthy = Healthy(t.port, "/good/whoami", b"good")
    # 20 ms between bytes, ~3 s in all: the 300 ms read timeout is between reads.
    (status, body), answered = healthy.during(lambda: get(t.port, "/bad/trickle?n=64&ms=20"))
    assert status == 200
    assert body == bytes(b"abcdefghijklmnopqrstuvwxyz"[i % 26] for i in range(64))
    assert answered >= 10
    healthy.finish()

    def fault():
        status, body = get(t.port, "/bad/trickle?n=40&ms=2")
        assert status == 200 and len(body) == 40
    report("upstream trickle", no_leak(t, fault, healthy=lambda: good(t)))


def test_upstream_reset_before_answering_is_502(proxied):
    t = proxied
    healthy = Healthy(t.port, "/good/whoami", b"good")
    assert get(t.port, "/bad/reset")[0] == 502
    healthy.finish()

    def fault():
        assert get(t.port, "/bad/reset")[0] == 502
    report("upstream reset", no_leak(t, fault, healthy=lambda: good(t)))


def test_upstream_reset_mid_body_cuts_the_response(proxied):
    t = proxied
    healthy = Healthy(t.port, "/good/whoami", b"good")
    raw = raw_get(t.port, "/bad/reset-mid")
    assert raw.startswith(b"HTTP/1.1 200 "), raw[:200]
    assert is_cut(raw), raw
    healthy.finish()
    assert "after the response began" in t.log_text()

    def fault():
        raw = raw_get(t.port, "/bad/reset-mid")
        assert raw.startswith(b"HTTP/1.1 200 ") and is_cut(raw)
    report("upstream reset mid-body", no_leak(t, fault, healthy=lambda: good(t)))


def test_upstream_dying_on_a_reused_connection_does_not_run_a_post_twice(proxied):
    # A kept-alive connection (after /ka) reused for a request the upstream dies on
    # looks like the keep-alive race; only an idempotent request is sent again.
    t = proxied
    def count(path):
        return int(get(t.bad_port, f"/count?p={path}")[1])

    c = http.client.HTTPConnection("127.0.0.1", t.port, timeout=10)
    c.request("GET", "/bad/ka")
    assert c.getresponse().read() == b"ka"
    c.request("POST", "/bad/reset", body=b"pay once")
    r = c.getresponse()
    assert r.status == 502
    r.read()
    assert count("reset") == 1  # not resent
    c.request("GET", "/bad/ka")
    assert c.getresponse().read() == b"ka"
    c.request("GET", "/bad/reset")
    r = c.getresponse()
    assert r.status == 502
    r.read()
    c.close()
    assert count("reset") == 3  # the GET went again, on a new connection
    assert "retrying" in t.log_text()
