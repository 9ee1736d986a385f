"""SIGUSR2 binary upgrade (nginx's convention) of `tronada serve`, with workers = 2 (a
master and its workers) and without (one process, its own master); of the `tronada
wsgi` master; and of the commands that are one process, their own master: `static`,
`proxy`, `fastcgi` and `wsgi` without a master.

The binary runs from a copy in tmp; the test replaces that file (a package upgrade
does the same) and signals the master. The new master gets the listening sockets
(LISTEN_FDS) and a pipe; once one of its workers accepts it writes a byte, and the old
master drains and exits. Load runs throughout, over keep-alive and new connections;
not one request may fail. A WebSocket through a proxy route keeps echoing until the
old worker that holds it drains: then it gets a close frame with 1001 (going away), as
a client of any server that goes away does, and reconnects to the new one.

With a broken binary in place (one that exits, or one that never reports ready), the
old master logs why, stops it, and serves on."""
import asyncio
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import BIN, free_port, wait_for_port

APPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps")


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Load:
    """Clients that request / until stopped: keep-alive ones and one-shot ones."""

    def __init__(self, port, keepalive=2, oneshot=2, path="/index.html", body=b"hello\n"):
        self.port = port
        self.path = path
        self.body = body
        self.ok = 0
        self.failures = []
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(True,)) for _ in range(keepalive)]
        self.threads += [threading.Thread(target=self.run, args=(False,)) for _ in range(oneshot)]
        for t in self.threads:
            t.start()

    def run(self, keepalive):
        conn = None
        while not self.stopping.is_set():
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                conn.request("GET", self.path,
                             headers={} if keepalive else {"Connection": "close"})
                response = conn.getresponse()
                body = response.read()
                closing = response.getheader("Connection", "").lower() == "close"
                good = self.body(body) if callable(self.body) else body == self.body
                if response.status != 200 or not good:
                    with self.lock:
                        self.failures.append(f"status {response.status}")
                else:
                    with self.lock:
                        self.ok += 1
                if closing or not keepalive:
                    conn.close()
                    conn = None
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                # A keep-alive connection the server closed while idle (the drain closes
                # idle ones) is retried on a new connection, as every HTTP client does
                # for a request that was not answered on a reused connection.
                conn.close()
                conn = None
                if not keepalive:
                    with self.lock:
                        self.failures.append(repr(e))
            except Exception as e:  # noqa: BLE001 - every other error is a failure
                with self.lock:
                    self.failures.append(repr(e))
                if conn is not None:
                    conn.close()
                conn = None
            time.sleep(0.005)
        if conn is not None:
            conn.close()

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=15)


@pytest.fixture(params=[2, 1], ids=["workers=2", "workers=1"])
def site(request, tmp_path):
    """A copy of the binary in tmp and a config serving a static file and a WebSocket
    proxy route, with short drain and upgrade deadlines."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    binary = bindir / "tronada"
    shutil.copy2(BIN / "tronada", binary)
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("hello\n")
    port = free_port()
    ws_port = free_port()
    config = tmp_path / "tronada.toml"
    config.write_text(f"""
[server]
bind = ["127.0.0.1:{port}"]
workers = {request.param}
access_log = "off"
shutdown_timeout = "2s"
upgrade_timeout = "3s"
admin = "unix:{tmp_path}/admin.sock"
[[route]]
path = "/ws"
proxy = {{ to = "http://127.0.0.1:{ws_port}" }}
[[route]]
path = "/"
static = {{ root = "{www}" }}
""")
    return {"binary": binary, "config": config, "port": port, "ws_port": ws_port,
            "log": tmp_path / "error.log", "tmp": tmp_path, "workers": request.param}


def start(site, env=None):
    log = open(site["log"], "w")
    proc = subprocess.Popen([str(site["binary"]), "serve", "-c", str(site["config"])],
                            stdout=log, stderr=log, cwd=site["tmp"], env=env)
    log.close()
    wait_for_port(site["port"], proc)
    # Both workers up: the master logs nothing per worker, so wait for two children.
    if site["workers"] > 1:
        wait_until(lambda: len(children(proc.pid)) >= 2, 10, "two workers")
    return proc


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def admin_get(site, path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    try:
        sock.connect(str(site["tmp"] / "admin.sock"))
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
        return int(data.split()[1])
    finally:
        sock.close()


def log_text(site):
    return site["log"].read_text()


def replace_binary(site, source):
    """Writes a new file at the binary's path and renames it into place, as dpkg does."""
    new = site["binary"].with_name("tronada.new")
    if isinstance(source, str):
        new.write_text(source)
        new.chmod(0o755)
    else:
        shutil.copy2(source, new)
    os.replace(new, site["binary"])


def stop_tree(pid):
    if alive(pid):
        os.kill(pid, signal.SIGTERM)
        try:
            wait_until(lambda: not alive(pid), 10, f"pid {pid} to stop")
        except AssertionError:
            os.kill(pid, signal.SIGKILL)


def test_upgrade_hands_over_without_a_failed_request(site):
    ws_echo = subprocess.Popen([str(BIN / "ws_echo"), "--port", str(site["ws_port"])],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # A stand-in for systemd's notify socket: the new master must report its PID.
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(site["tmp"] / "notify.sock"))
    notify.settimeout(0)
    env = dict(os.environ, NOTIFY_SOCKET=str(site["tmp"] / "notify.sock"))
    old = start(site, env)
    new_pid = None
    load = None
    try:
        wait_for_port(site["ws_port"], ws_echo)
        old_workers = children(old.pid)
        load = Load(site["port"])
        ws_result = {}

        async def websocket_session():
            import websockets.client
            import websockets.exceptions
            async with websockets.client.connect(
                    f"ws://127.0.0.1:{site['port']}/ws") as conn:
                ws_result["opened"] = True
                echoes = 0
                try:
                    while True:
                        await conn.send(f"ping {echoes}")
                        assert await asyncio.wait_for(conn.recv(), 10) == f"ping {echoes}"
                        echoes += 1
                        ws_result["echoes"] = echoes
                        await asyncio.sleep(0.05)
                except websockets.exceptions.ConnectionClosed as e:
                    ws_result["closed"] = e.rcvd.code if e.rcvd else None

        ws_thread = threading.Thread(target=lambda: asyncio.run(websocket_session()))
        ws_thread.start()
        wait_until(lambda: ws_result.get("echoes", 0) >= 3, 10, "the WebSocket to echo")
        time.sleep(0.3)

        replace_binary(site, BIN / "tronada")
        os.kill(old.pid, signal.SIGUSR2)
        # The old master exits once the new one serves and its own workers drained.
        old.wait(timeout=30)
        assert old.returncode == 0
        text = log_text(site)
        started = re.search(r"SIGUSR2: started the new binary (\S+) \(pid (\d+)\)", text)
        assert started, text
        assert started.group(1) == str(site["binary"])
        new_pid = int(started.group(2))
        assert "is ready: this master stops accepting, drains and exits" in text
        assert alive(new_pid)
        for pid in old_workers:
            assert not alive(pid)
        if site["workers"] > 1:
            assert len(children(new_pid)) == 2
        # The new master runs the file now at the path, not the replaced one.
        assert os.readlink(f"/proc/{new_pid}/exe") == str(site["binary"])
        messages = []
        while True:
            try:
                messages.append(notify.recv(4096).decode())
            except BlockingIOError:
                break
        assert f"MAINPID={new_pid}\nREADY=1" in messages
        # The admin socket is the new master's now (the old one left the path alone).
        wait_until(lambda: admin_get(site, "/readyz") == 200, 10, "/readyz 200 from the new master")
        served_before = load.ok
        wait_until(lambda: load.ok > served_before + 20, 10, "requests to the new master")
        load.stop()
        assert load.failures == []
        ws_thread.join(timeout=15)
        # The tunnel lived on the old worker: it echoed until that worker drained,
        # which closed it with 1001.
        assert ws_result.get("echoes", 0) >= 3
        assert ws_result.get("closed") == 1001
    finally:
        if load:
            load.stop()
        if old.poll() is None:
            old.kill()
            old.wait()
        if new_pid:
            stop_tree(new_pid)
        ws_echo.terminate()
        ws_echo.wait()
        notify.close()


@pytest.mark.parametrize("broken,why", [
    ("#!/bin/sh\nexit 1\n", "exited with status 1 before it was ready"),
    ("#!/bin/sh\nexec sleep 60\n", "was not ready within 3000 ms (upgrade_timeout)"),
])
def test_a_broken_binary_leaves_the_old_one_serving(site, broken, why):
    old = start(site)
    load = None
    try:
        load = Load(site["port"])
        replace_binary(site, broken)
        os.kill(old.pid, signal.SIGUSR2)
        time.sleep(0.2)
        os.kill(old.pid, signal.SIGUSR2)
        wait_until(lambda: "binary upgrade failed" in log_text(site), 15, "the failure")
        text = log_text(site)
        assert why in text, text
        assert "this master keeps serving" in text
        if "sleep" in broken:
            assert "SIGUSR2 refused: an upgrade is in flight already" in text
        served = load.ok
        wait_until(lambda: load.ok > served + 20, 10, "more requests")
        load.stop()
        assert load.failures == []
        assert old.poll() is None
        if site["workers"] > 1:
            assert len(children(old.pid)) >= 2
    finally:
        if load:
            load.stop()
        old.terminate()
        old.wait(timeout=30)


def test_wsgi_master_upgrades_too(tmp_path):
    """`tronada wsgi -w 2`: the WorkerSupervisor master takes SIGUSR2 the same way."""
    binary = tmp_path / "tronada"
    shutil.copy2(BIN / "tronada", binary)
    port = free_port()
    log_path = tmp_path / "wsgi.log"
    with open(log_path, "w") as log:
        old = subprocess.Popen([str(binary), "wsgi", "hello:application", "-w", "2",
                                "-b", f"127.0.0.1:{port}", "--pythonpath", APPS],
                               stdout=log, stderr=log, cwd=APPS)
    new_pid = None
    load = None
    try:
        wait_for_port(port, old)
        wait_until(lambda: log_path.read_text().count(") ready") >= 2, 20, "two workers")
        load = Load(port, path="/", body=b"Hello, World!")
        new = tmp_path / "tronada.new"
        shutil.copy2(BIN / "tronada", new)
        os.replace(new, binary)
        os.kill(old.pid, signal.SIGUSR2)
        old.wait(timeout=40)
        assert old.returncode == 0
        text = log_path.read_text()
        started = re.search(r"SIGUSR2: started the new binary (\S+) \(pid (\d+)\)", text)
        assert started, text
        new_pid = int(started.group(2))
        assert alive(new_pid)
        served = load.ok
        wait_until(lambda: load.ok > served + 20, 10, "requests to the new master")
        load.stop()
        assert load.failures == []
    finally:
        if load:
            load.stop()
        if old.poll() is None:
            old.kill()
            old.wait()
        if new_pid:
            stop_tree(new_pid)


def one_backend_command(kind, tmp_path, port):
    """The argv of `tronada KIND` serving on `port`, the peers it needs (started here),
    and what a good answer is, for the load."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("hello\n")
    bind = ["-b", f"127.0.0.1:{port}", "--upgrade-timeout", "10s", "--access-log", "off"]
    if kind == "static":
        return [kind, str(www)] + bind, [], "/index.html", b"hello\n"
    if kind == "proxy":
        # A tronada static server is the upstream: quick and never the one to fail.
        up_port = free_port()
        upstream = subprocess.Popen([str(BIN / "tronada"), "static", str(www), "-b",
                                     f"127.0.0.1:{up_port}", "--access-log", "off"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(up_port, upstream)
        return ([kind, "--to", f"http://127.0.0.1:{up_port}"] + bind, [upstream],
                "/index.html", b"hello\n")
    if kind == "fastcgi":
        responder = BIN / "fcgi_responder"
        if not responder.exists():
            pytest.skip("fcgi_responder was not built (libfcgi-dev missing)")
        fcgi_port = free_port()
        peer = subprocess.Popen([str(responder), "--port", str(fcgi_port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(fcgi_port, peer)
        (www / "echo.php").write_text("handled by the responder\n")
        # libfcgi serves one connection at a time: a connection the old process kept
        # alive would hold it until the old process exits (as php-fpm's children are held
        # by kept-alive connections), so each request gets its own.
        return ([kind, "--to", f"127.0.0.1:{fcgi_port}", "--root", str(www), "--no-keep-conn"]
                + bind, [peer],
                "/echo.php", lambda body: b"REQUEST_METHOD=GET" in body)
    assert kind == "wsgi"
    # --timeout 0 with one worker: no master, the app runs in this one process.
    return ([kind, "hello:application", "--timeout", "0", "--pythonpath", APPS] + bind, [],
            "/", b"Hello, World!")


@pytest.mark.parametrize("kind", ["static", "proxy", "fastcgi", "wsgi"])
def test_single_process_commands_upgrade_too(tmp_path, kind):
    """`tronada static`, `proxy`, `fastcgi` and `wsgi` without a master are their own
    master: SIGUSR2 hands the sockets over under load, the new process serves and the
    old one drains and exits."""
    binary = tmp_path / "tronada"
    shutil.copy2(BIN / "tronada", binary)
    port = free_port()
    argv, peers, path, body = one_backend_command(kind, tmp_path, port)
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log:
        old = subprocess.Popen([str(binary)] + argv, stdout=log, stderr=log, cwd=tmp_path)
    new_pid = None
    load = None
    try:
        wait_for_port(port, old, timeout=20)
        load = Load(port, path=path, body=body)
        wait_until(lambda: load.ok > 10, 10, "requests to the old process")
        new = tmp_path / "tronada.new"
        shutil.copy2(BIN / "tronada", new)
        os.replace(new, binary)
        os.kill(old.pid, signal.SIGUSR2)
        old.wait(timeout=30)
        assert old.returncode == 0
        text = log_path.read_text()
        started = re.search(r"SIGUSR2: started the new binary (\S+) \(pid (\d+)\)", text)
        assert started, text
        new_pid = int(started.group(2))
        assert new_pid != old.pid
        assert "serving 1 inherited socket(s)" in text
        assert "is ready: this master stops accepting, drains and exits" in text
        assert alive(new_pid)
        # The old process is gone: whatever is answered now, the new one answers.
        served = load.ok
        wait_until(lambda: load.ok > served + 20, 10, "requests to the new process")
        load.stop()
        assert load.failures == [], text
        assert alive(new_pid)
    finally:
        if load:
            load.stop()
        if old.poll() is None:
            old.kill()
            old.wait()
        if new_pid:
            stop_tree(new_pid)
        for peer in peers:
            peer.terminate()
            peer.wait()
