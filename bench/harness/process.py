"""A server under test as a process: started pinned in its own session, waited on
until it answers, and stopped with its whole process group."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from .common import HOST, log
from .procfs import proc_tree


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    """A running server process (its own session, pinned with taskset)."""

    live = []  # every started server, for cleanup

    def __init__(self, spec, port, workdir, cpu):
        self.spec = spec
        self.port = port
        self.workdir = workdir
        self.log_path = Path(workdir) / f"{spec.name}.log"
        argv = ["taskset", "-c", str(cpu)] + spec.command(port, workdir)
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=workdir,
                                     start_new_session=True)
        Server.live.append(self)

    @property
    def pid(self):
        return self.proc.pid

    def pids(self):
        return proc_tree(self.pid)

    def alive(self):
        return self.proc.poll() is None

    def log_tail(self, n=15):
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def wait_ready(self, timeout=20.0):
        """Waits until the port accepts and the server answers one request."""
        deadline = time.monotonic() + timeout
        last_error = None
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.spec.name} exited with status "
                                   f"{self.proc.returncode}:\n{self.log_tail()}")
            try:
                with socket.create_connection((HOST, self.port), timeout=2) as s:
                    s.settimeout(5)
                    self.spec.probe(s)
                return
            except (OSError, ValueError) as e:
                last_error = e
                time.sleep(0.05)
        raise RuntimeError(f"{self.spec.name} not ready on port {self.port} after "
                           f"{timeout:.0f} s ({last_error}):\n{self.log_tail()}")

    def stop(self):
        if self in Server.live:
            Server.live.remove(self)
        if self.alive():
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=5)
        # Stragglers of the group (nginx workers) die with it, but make sure.
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.log_file.close()

    @classmethod
    def stop_all(cls):
        for server in list(cls.live):
            try:
                server.stop()
            except Exception as e:  # keep stopping the others
                log(f"warning: stopping {server.spec.name}: {e}")
