"""Throwaway PostgreSQL and Redis servers for the database tests, in temp dirs on free
loopback ports. As root, initdb and postgres run as the postgres user (postgres refuses
root). Tests skip when the server binaries are not installed."""
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from conftest import free_port


def pg_bin_dir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


class PgServer:
    def __init__(self):
        self.bin = pg_bin_dir()
        self.dir = tempfile.mkdtemp(prefix="tronada-pg-")
        self.user = None
        if os.geteuid() == 0:
            self.user = "postgres" if _has_user("postgres") else "nobody"
            pw = pwd.getpwnam(self.user)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.port = free_port()
        self.data = os.path.join(self.dir, "data")
        subprocess.run([f"{self.bin}/initdb", "-D", self.data, "-A", "trust", "-U", "postgres",
                        "-E", "UTF8", "--locale=C", "--no-sync"],
                       check=True, capture_output=True, user=self.user, timeout=120)
        self.proc = None
        self.start()

    @property
    def dsn(self):
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def start(self):
        log = open(os.path.join(self.dir, "server.log"), "ab")
        self.proc = subprocess.Popen(
            [f"{self.bin}/postgres", "-D", self.data, "-p", str(self.port), "-k", self.dir,
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=120"],
            stdout=log, stderr=log, user=self.user, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            r = subprocess.run([f"{self.bin}/pg_isready", "-h", "127.0.0.1", "-p", str(self.port)],
                               capture_output=True)
            if r.returncode == 0:
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("postgres did not start:\n" + open(os.path.join(self.dir, "server.log")).read())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _has_user(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


class RedisServer:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tronada-redis-")
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        self.close()
        raise RuntimeError("redis-server did not start")

    def close(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
