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
