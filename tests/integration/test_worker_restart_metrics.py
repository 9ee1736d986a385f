"""Worker restarts by cause (issue 19): `tronada_worker_restarts_total{cause=...}`, counted
by the master and read on its admin listener. A worker killed with SIGKILL is a `signal`
restart, one that exits by itself an `exit`, one stuck past --timeout a `timeout`, one
recycled after --max-requests a `max_requests`, every worker replaced on SIGHUP a
`reload`; for `tronada wsgi` (WorkerSupervisor) and `tronada serve` workers
(fork_processes). Parsed with the real Prometheus parser."""
import os
import signal
import subprocess
import time

import pytest

from conftest import BIN, free_port, wait_for_port
from test_operations import get, samples, scrape, wait_until
from test_wsgi_workers import Master

TRONADA = str(BIN / "tronada")
CAUSES = ("signal", "exit", "timeout", "max_requests", "max_memory", "reload")


def restarts(admin):
    m = samples(scrape(admin)[1])
    return {c: m[("tronada_worker_restarts_total", frozenset({"cause": c}.items()))]
            for c in CAUSES}


def expect(admin, **counts):
    want = {c: counts.get(c, 0) for c in CAUSES}
    return wait_until(lambda: (lambda got: got if got == want else None)(restarts(admin)),
                      f"restarts {want} (last {restarts(admin)})")


@pytest.fixture
def master():
    started = []

    def start(*args):
        admin = free_port()
        m = Master("faults:application", "--admin", f"127.0.0.1:{admin}", *args)
        started.append(m)
        wait_for_port(admin, m.proc)
        return m, admin

    yield start
    for m in started:
        m.stop()


def test_wsgi_master_counts_kill_exit_and_reload(master):
    m, admin = master("-w", "2")
    expect(admin)  # every cause shown, at zero
    victim = next(iter(m.worker_pids(2)))
    os.kill(victim, signal.SIGKILL)
    m.wait_for_log(f"(pid {victim}) was killed by signal 9")
    expect(admin, signal=1)
    m.worker_pids(2)  # its replacement serves
    try:
        m.get("/exit3", timeout=10)
    except Exception:  # noqa: BLE001 - the worker exits under the request
        pass
    expect(admin, signal=1, exit=1)
    m.worker_pids(2)
    m.proc.send_signal(signal.SIGHUP)
    expect(admin, signal=1, exit=1, reload=2)


def test_wsgi_master_counts_timeouts_and_recycling(master):
    m, admin = master("-w", "1", "--timeout", "2", "--max-requests", "5")
    for _ in range(5):
        assert m.get("/pid")[0] == 200
    expect(admin, max_requests=1)
    try:
        m.get("/hang", timeout=15)
    except Exception:  # noqa: BLE001 - the stuck worker is killed under the request
        pass
    expect(admin, max_requests=1, timeout=1)


def test_wsgi_master_counts_memory_recycling(master):
    # The limit sits above what an idle worker uses in this build (ASan builds are big).
    probe, _ = master("-w", "1")
    limit_mib = int(probe.get("/rss")[1]) // (1024 * 1024) + 100
    probe.stop()
    m, admin = master("-w", "1", "--max-memory", f"{limit_mib}MiB")
    for _ in range(4):
        assert m.get("/alloc?40")[0] == 200
    m.wait_for_log(f"over --max-memory {limit_mib} MiB")
    expect(admin, max_memory=1)


def children(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def test_serve_workers_killed_show_up_as_signal_restarts(tmp_path):
    port, admin = free_port(), free_port()
    (tmp_path / "page.txt").write_text("hello\n")
    config = tmp_path / "tronada.toml"
    config.write_text(f"""
[server]
bind = ["127.0.0.1:{port}"]
admin = "127.0.0.1:{admin}"
workers = 2
access_log = "off"

[[route]]
path = "/"
static.root = "{tmp_path}"
""")
    proc = subprocess.Popen([TRONADA, "serve", "-c", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc)
        wait_for_port(admin, proc)
        wait_until(lambda: len(children(proc.pid)) == 2, "two workers")
        expect(admin)
        victim = children(proc.pid)[0]
        os.kill(victim, signal.SIGKILL)
        expect(admin, signal=1)
        wait_until(lambda: len(children(proc.pid)) == 2 and victim not in children(proc.pid),
                   "a replacement")
        assert get(port, "/page.txt")[0] == 200
        # The replacement takes the dead worker's metrics slot; the counters stay.
        time.sleep(0.2)
        assert restarts(admin)["signal"] == 1
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
