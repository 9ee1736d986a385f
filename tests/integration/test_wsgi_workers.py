"""`tronada wsgi` worker supervision: the master replaces workers that crash, exit,
hang or grow, recycles them after --max-requests, stops them gracefully, and says why in
its log; other clients never notice."""
import http.client
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import BIN, free_port, wait_for_port

APPS = Path(__file__).resolve().parent / "apps"


class Master:
    """A `tronada wsgi` master whose log goes to a file (a full pipe would stall it)."""

    def __init__(self, spec, *args, env=None):
        self.port = free_port()
        self.log = tempfile.TemporaryFile()
        e = dict(os.environ if env is None else env)
        # ASan would turn the app's segfault into a report and exit(1); the test wants
        # the signal itself to reach the master.
        e["ASAN_OPTIONS"] = (e.get("ASAN_OPTIONS", "") + ":handle_segv=0").lstrip(":")
        argv = [str(BIN / "tronada"), "wsgi", spec, "-b", f"127.0.0.1:{self.port}",
                "--pythonpath", str(APPS), *args]
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=e,
                                     cwd=str(APPS))
        wait_for_port(self.port, self.proc)

    def output(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def wait_for_log(self, text, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not in the log:\n{self.output()}")

    def get(self, path, timeout=30):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def pid(self):
        status, body = self.get("/pid")
        assert status == 200
        return int(body)

    def worker_pids(self, n, timeout=20.0):
        pids = set()
        deadline = time.monotonic() + timeout
        while len(pids) < n and time.monotonic() < deadline:
            pids.add(self.pid())
        assert len(pids) == n, pids
        return pids

    def stop(self, timeout=40):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def master():
    started = []

    def start(spec, *args, **kw):
        m = Master(spec, *args, **kw)
        started.append(m)
        return m

    yield start
    for m in started:
        m.stop()


class Load:
    """Clients sending requests (a new connection each) until stopped, counting
    failures: what "other clients are unaffected" means."""

    def __init__(self, m, clients=4, path="/slow?0.005"):
        self.m = m
        self.path = path
        self.ok = 0
        self.failures = []
        self.pids = set()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.run) for _ in range(clients)]
        for t in self.threads:
            t.start()

    def run(self):
        while not self.stopping.is_set():
            try:
                status, body = self.m.get(self.path)
                with self.lock:
                    if status == 200:
                        self.ok += 1
                        self.pids.add(int(body))
                    else:
                        self.failures.append(status)
            except Exception as e:  # noqa: BLE001
                with self.lock:
                    self.failures.append(repr(e))

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join()


def wait_for_new_worker(m, old, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if m.pid() not in old:
            return
        time.sleep(0.02)
    raise AssertionError("no new worker took over")


def crash_and_check(m, path, reason):
    """Sends `path` (which kills its worker) while other clients keep going, and checks
    the master logs `reason` and a new worker serves."""
    old = m.worker_pids(2)
    load = Load(m)
    time.sleep(0.3)
    with pytest.raises((http.client.HTTPException, ConnectionError, socket.timeout, OSError)):
        m.get(path, timeout=30)
    m.wait_for_log(reason)
    wait_for_new_worker(m, old)
    time.sleep(0.3)
    load.stop()
    # Requests the dying worker had already accepted (at most one per load client) die
    # with it; nothing else may fail.
    assert len(load.failures) <= 4, load.failures
    assert load.ok > 10
    return old


def test_segfault_in_the_app_is_logged_and_the_worker_replaced(master):
    m = master("faults:application", "-w", "2")
    crash_and_check(m, "/segv", "was killed by signal 11 (Segmentation fault)")
    assert "starting a new one" in m.output()


def test_exit_status_is_logged_and_the_worker_replaced(master):
    m = master("faults:application", "-w", "2")
    crash_and_check(m, "/exit3", "exited with status 3")


def test_sigkill_mentions_the_oom_killer(master):
    m = master("faults:application", "-w", "2")
    old = m.worker_pids(2)
    os.kill(min(old), signal.SIGKILL)
    m.wait_for_log("was killed by signal 9 (Killed — often the kernel's OOM killer; see dmesg)")
    wait_for_new_worker(m, old)


def test_hung_app_is_killed_after_timeout(master):
    m = master("faults:application", "-w", "2", "--timeout", "2")
    old = m.worker_pids(2)
    load = Load(m)
    t0 = time.monotonic()
    # The stuck request's connection is closed when its worker is killed.
    with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
        m.get("/hang", timeout=60)
    waited = time.monotonic() - t0
    assert waited < 30
    m.wait_for_log("was stuck in the app longer than --timeout 2s and was killed")
    wait_for_new_worker(m, old)
    load.stop()
    assert len(load.failures) <= 4, load.failures
    assert load.ok > 10


def test_slow_requests_under_the_timeout_are_not_killed(master):
    m = master("faults:application", "-w", "1", "--timeout", "2")
    pid = m.pid()
    assert m.get("/slow?1")[0] == 200
    assert m.pid() == pid
    assert "stuck" not in m.output()


def test_max_requests_recycles_without_failing_a_request(master):
    m = master("faults:application", "-w", "2", "--threads", "2", "--max-requests", "40",
               "--max-requests-jitter", "10")
    load = Load(m, clients=6, path="/slow?0.002")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if m.output().count("was recycled after") >= 4:
            break
        time.sleep(0.1)
    load.stop()
    out = m.output()
    assert out.count("was recycled after") >= 4, out
    assert load.failures == [], load.failures
    assert len(load.pids) >= 4
    # The master logs the requests each served: its 40..50, plus the few it had
    # already accepted when it stopped accepting.
    counts = [int(n) for n in re.findall(r"was recycled after (\d+) requests", out)]
    assert all(40 <= n < 80 for n in counts), counts


def test_max_memory_recycles_a_growing_worker(master):
    # The limit sits above what an idle worker uses in this build (ASan builds are big).
    probe = master("faults:application", "-w", "1")
    baseline = int(probe.get("/rss")[1])
    probe.stop()
    limit_mib = baseline // (1024 * 1024) + 100
    m = master("faults:application", "-w", "1", "--max-memory", f"{limit_mib}MiB")
    first = m.pid()
    load = Load(m, clients=2, path="/slow?0.01")
    for _ in range(4):
        assert m.get("/alloc?40")[0] == 200
    m.wait_for_log("was recycled: RSS ")
    m.wait_for_log(f"over --max-memory {limit_mib} MiB")
    wait_for_new_worker(m, {first})
    load.stop()
    assert load.failures == [], load.failures


def test_sigterm_finishes_requests_in_flight(master):
    m = master("faults:application", "-w", "2", "--threads", "2")
    m.worker_pids(2)
    results = []

    def slow():
        try:
            results.append(m.get("/slow?1.5"))
        except Exception as e:  # noqa: BLE001
            results.append(repr(e))

    threads = [threading.Thread(target=slow) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    m.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join()
    assert m.proc.wait(timeout=30) == 0
    assert [r[0] for r in results] == [200] * 4, results
    out = m.output()
    assert "stopping 2 worker(s)" in out
    assert "all workers stopped" in out


def test_workers_dying_at_start_up_make_the_master_give_up(tmp_path):
    env = dict(os.environ)
    env["TRONADA_TEST_MARKER"] = str(tmp_path / "imported")
    port = free_port()
    p = subprocess.run([str(BIN / "tronada"), "wsgi", "startup_crash:application", "-w", "2",
                        "-b", f"127.0.0.1:{port}", "--pythonpath", str(APPS)],
                       capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 1
    assert "before it was ready to serve" in p.stderr
    assert "workers keep dying at start-up" in p.stderr
    assert "exited with status 4" in p.stderr


def test_file_wrapper_streams_a_big_file_without_growing(master, tmp_path):
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        block = os.urandom(1024 * 1024)
        for _ in range(50):
            f.write(block)
    # ASan keeps freed blocks in quarantine; without a small one every piece that went
    # through malloc would look like growth.
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=4").lstrip(":")
    m = master("faults:application", "-w", "1", env=env)
    status, body = m.get("/rss")
    before = int(body)
    conn = http.client.HTTPConnection("127.0.0.1", m.port, timeout=60)
    conn.request("GET", "/file?" + str(big))
    r = conn.getresponse()
    assert r.status == 200
    assert int(r.getheader("Content-Length")) == 50 * 1024 * 1024
    got = 0
    while True:
        piece = r.read(1024 * 1024)
        if not piece:
            break
        got += len(piece)
    conn.close()
    assert got == 50 * 1024 * 1024
    status, body = m.get("/rss")
    after = int(body)
    # Bounded by the response high-water mark, not the file size.
    assert after - before < 20 * 1024 * 1024, (before, after)
    # The bytes never went through Python: the file's read() was not called.
    assert m.get("/reads") == (200, b"0")


# --------------------------------------------------------------------------------------
# examples/wsgi_mixed: native, WebSocket and Flask routes in one server


def test_wsgi_mixed_example_answers_on_all_three_routes(start_server):
    import asyncio
    import json
    import websockets

    s = start_server("wsgi_mixed")
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
    conn.request("GET", "/native")
    r = conn.getresponse()
    assert (r.status, r.read()) == (200, b"hello from C++\n")
    conn.request("GET", "/app/hello/tronada")
    r = conn.getresponse()
    assert r.status == 200
    assert json.loads(r.read()) == {"hello": "tronada", "from": "flask"}
    conn.request("GET", "/app/")
    r = conn.getresponse()
    assert r.status == 200 and b"hello from Flask" in r.read()
    # Flask sees the mount point: its redirect keeps the /app prefix.
    conn.request("GET", "/app/home")
    r = conn.getresponse()
    r.read()
    assert r.status == 302 and r.getheader("Location").endswith("/app/")
    conn.close()

    async def echo():
        async with websockets.connect(f"ws://127.0.0.1:{s.port}/ws") as ws:
            await ws.send("ping")
            assert await ws.recv() == "ping"

    asyncio.run(echo())


def test_max_wait_answers_503_instead_of_queueing_forever(master):
    """One thread, a slow app and ten clients at once: the requests that waited longer
    than --max-wait for the thread get 503 with Retry-After at once; none hang."""
    m = master("faults:application", "--threads", "1", "--max-wait", "300ms")
    results = []
    lock = threading.Lock()

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", m.port, timeout=20)
        try:
            conn.request("GET", "/slow?0.5")
            r = conn.getresponse()
            r.read()
            with lock:
                results.append((r.status, r.getheader("Retry-After")))
        except Exception as e:  # noqa: BLE001 - recorded as a failure
            with lock:
                results.append((repr(e), None))
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 10, results
    statuses = [s for s, _ in results]
    assert set(statuses) <= {200, 503}, results
    assert 200 in statuses and 503 in statuses, results
    assert all(retry == "1" for s, retry in results if s == 503), results
    m.wait_for_log("over max_wait: 503")


def test_max_wait_rejects_a_malformed_duration():
    p = subprocess.run([str(BIN / "tronada"), "wsgi", "app:application", "--max-wait", "soon"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "--max-wait" in p.stderr and "soon" in p.stderr, p.stderr
