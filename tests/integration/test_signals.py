"""SIGUSR1 ("reopen your log files", what logrotate sends) never stops a server: every
command survives it, in every process, and goes on answering. `systemctl kill -s USR1`
signals every process of the unit: the prefork parent, a WSGI master and its workers."""
import http.client
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BIN, process_tree, free_port, wait_for_port

APPS = Path(__file__).resolve().parent / "apps"


def get(port, path="/"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def commands(tmp_path, port):
    www = tmp_path / "www"
    www.mkdir(exist_ok=True)
    (www / "index.html").write_text("hi\n")
    config = tmp_path / "serve.toml"
    config.write_text(f'[server]\nbind = ["127.0.0.1:{port}"]\nworkers = 2\n'
                      f'access_log = "{tmp_path}/access.log"\n'
                      f'[[route]]\npath = "/"\nstatic = {{ root = "{www}" }}\n')
    return {
        "static": ["static", str(www)],
        "serve -w 2": ["serve", "-c", str(config)],
        "wsgi -w 2": ["wsgi", "hello:application", "-w", "2", "--pythonpath", str(APPS)],
        "proxy": ["proxy", "--to", "http://127.0.0.1:9"],
    }


@pytest.mark.parametrize("name", ["static", "serve -w 2", "wsgi -w 2", "proxy"])
def test_sigusr1_to_every_process_stops_nothing(tmp_path, name):
    port = free_port()
    argv = commands(tmp_path, port)[name]
    if name != "serve -w 2":
        argv += ["-b", f"127.0.0.1:{port}"]
    log = open(tmp_path / "stderr.log", "w+")
    proc = subprocess.Popen([str(BIN / "tronada"), *argv], stdout=subprocess.DEVNULL,
                            stderr=log, start_new_session=True)
    try:
        wait_for_port(port, proc)
        time.sleep(0.3)  # workers up
        before = process_tree(proc.pid)
        for pid in before:
            os.kill(pid, signal.SIGUSR1)
        time.sleep(0.5)
        log.seek(0)
        assert proc.poll() is None, log.read()[-2000:]
        assert all(os.path.exists(f"/proc/{pid}") for pid in before)
        expected = 502 if name == "proxy" else 200
        for _ in range(4):
            assert get(port) == expected
    finally:
        # The whole group: a master killed by the signal leaves its workers behind.
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def running(pid):
    """True while pid exists and is not a zombie (an orphan init has not reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_serve_workers_stop_when_their_master_is_killed(tmp_path):
    """A master killed with SIGKILL (the OOM killer, a careless kill -9) must not leave
    its workers serving the listening sockets on their own: each gets SIGTERM from the
    kernel (PR_SET_PDEATHSIG) and drains."""
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "a.txt").write_text("a\n")
    port = free_port()
    config = tmp_path / "tronada.toml"
    config.write_text(f"""
[server]
bind = ["127.0.0.1:{port}"]
workers = 2
access_log = "off"
[[route]]
path = "/"
static.root = "{tmp_path / 'public'}"
""")
    master = subprocess.Popen([str(BIN / "tronada"), "serve", "-c", str(config)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = []
    try:
        wait_for_port(port, master)
        deadline = time.monotonic() + 10
        while len(process_tree(master.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = process_tree(master.pid)[1:]
        assert len(workers) == 2
        master.kill()
        master.wait()
        deadline = time.monotonic() + 10
        alive = workers
        while alive and time.monotonic() < deadline:
            time.sleep(0.05)
            alive = [w for w in workers if running(w)]
        assert not alive, f"workers {alive} outlived their master"
    finally:
        if master.poll() is None:
            master.kill()
            master.wait()
        for w in workers:
            try:
                os.kill(w, signal.SIGKILL)
            except ProcessLookupError:
                pass
