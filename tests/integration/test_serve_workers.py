"""`tronada serve` with `workers = 2` and routes whose backends keep loop state (a
FastCGI pool, a proxy group with health checks): each worker has a loop of its own.

The parent builds every route once before forking to report config errors before
binding. A FastCGI pool or a health check made there used to create the parent's loop,
and the forked workers inherited it: one epoll and one wakeup eventfd shared by two
processes, so one worker's events were delivered to the other."""
import ctypes
import errno
import http.client
import os
import platform
import subprocess
import threading
import time

import pytest

from conftest import BIN, child_pids, free_port, wait_for_port
from test_fastcgi import PHP_DIR, PHP_FPM, PHPFPM, stop

pytestmark = pytest.mark.skipif(PHP_FPM is None, reason="php-fpm is not installed")


def get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def epoll_fds(pid):
    fds = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:[eventpoll]":
                fds.append(int(fd))
        except OSError:
            pass
    return fds


def same_file(pid1, fd1, pid2, fd2):
    """kcmp(2): whether two processes' descriptors are one open file (None: cannot tell)."""
    if platform.machine() != "x86_64":
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    result = libc.syscall(312, pid1, pid2, 0, fd1, fd2)  # SYS_kcmp, KCMP_FILE
    if result < 0:
        return None if ctypes.get_errno() in (errno.ENOSYS, errno.EPERM) else False
    return result == 0


def test_workers_do_not_share_an_epoll_with_each_other(tmp_path):
    fpm = PHPFPM(tmp_path, children=4)
    port = free_port()
    config = tmp_path / "tronada.toml"
    config.write_text(f"""
[server]
bind = ["127.0.0.1:{port}"]
workers = 2
access_log = "off"
[[route]]
path = "/"
fastcgi = {{ to = "unix:{fpm.sock}", root = "{PHP_DIR}" }}
""")
    server = subprocess.Popen([str(BIN / "tronada"), "serve", "-c", str(config)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, server)
        deadline = time.monotonic() + 10
        while len(child_pids(server.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        a, b = child_pids(server.pid)[:2]
        shared = [same_file(a, fa, b, fb) for fa in epoll_fds(a) for fb in epoll_fds(b)]
        if not shared or None in shared:
            pytest.skip("kcmp(2) is not available here to compare the workers' epolls")
        assert not any(shared), "two workers share one epoll instance"
    finally:
        stop(server)
        fpm.stop()


def test_two_workers_with_fastcgi_and_proxy_routes_each_run_their_own_loop(tmp_path):
    # Each worker keeps its own FastCGI connections alive, one php-fpm child each.
    fpm = PHPFPM(tmp_path, children=16)
    upstream_port = free_port()
    upstream = subprocess.Popen([str(BIN / "tronada"), "static", str(PHP_DIR), "-b",
                                 f"127.0.0.1:{upstream_port}", "--log-level", "warning"])
    wait_for_port(upstream_port, upstream)
    port = free_port()
    config = tmp_path / "tronada.toml"
    config.write_text(f"""
[server]
bind = ["127.0.0.1:{port}"]
workers = 2
access_log = "off"

[[route]]
path = "/up/"
strip_prefix = true
proxy = {{ to = ["http://127.0.0.1:{upstream_port}"], health_uri = "/plain.txt", health_interval = "200ms" }}

[[route]]
path = "/"
fastcgi = {{ to = "unix:{fpm.sock}", root = "{PHP_DIR}" }}
""")
    server = subprocess.Popen([str(BIN / "tronada"), "serve", "-c", str(config)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, server)
        failures = []

        def client(n):
            for i in range(60):
                path = "/hello.php" if (i + n) % 2 else "/up/plain.txt"
                try:
                    status, body = get(port, path)
                    if status != 200 or not body:
                        failures.append((path, status, body[:80]))
                except OSError as e:
                    failures.append((path, repr(e)))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not failures, failures[:5]
        assert server.poll() is None, "the server died"
    finally:
        stop(server)
        err = server.stderr.read().decode(errors="replace")
        stop(upstream)
        fpm.stop()
    assert server.returncode == 0, err[-3000:]
