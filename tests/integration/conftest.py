"""Shared fixtures: where the built binaries are, free ports, and servers started and
stopped around a test."""
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("TRONADA_BUILD_DIR", ROOT / "build"))
BIN = BUILD / "bin"


def child_pids(pid):
    """The direct children of pid (empty once it has exited)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def process_tree(pid):
    """pid and all its descendants, parents before children."""
    pids = [pid]
    for p in pids:  # grows while walked: each child's children are appended in turn
        pids += [c for c in child_pids(p) if c not in pids]
    return pids


def rss_kib(pid):
    """A process's resident memory in KiB (VmRSS), 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc=None, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listening on port {port} after {timeout}s")


class Server:
    def __init__(self, argv, port):
        self.port = port
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_for_port(port, self.proc)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def start_server():
    """start_server(name, *args) starts build/bin/<name> --port P and returns it."""
    servers = []

    def start(name, *args):
        port = free_port()
        server = Server([str(BIN / name), "--port", str(port), *args], port)
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()
