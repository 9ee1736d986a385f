"""Memory per idle keep-alive HTTP/1.1 connection of `tronada static DIR` (project issue
18): RSS growth of the server's processes while 2,000 connections sit idle after one
request each. tests/alloc/idle_memory_test.cpp measures the heap bytes exactly; this
checks the real binary end to end, with the margin RSS needs (page granularity, the
allocator's arenas)."""
import resource
import socket
import time

import pytest

from conftest import BIN, Server, free_port, process_tree

CONNECTIONS = 2000
WARMUP = 100


def rss_bytes(pid):
    """Resident memory of pid and its children (workers), from smaps_rollup."""
    total = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
    return total


def open_idle(port, count, into):
    """Opens `count` connections, each answered once and left open."""
    request = b"GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n"
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        into.append(s)
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(4096)
            assert chunk, "connection closed before the response was complete"
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep and len(body) >= len(b"<h1>home</h1>\n"):
                break
        assert data.startswith(b"HTTP/1.1 200")


@pytest.fixture
def fd_room():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = CONNECTIONS + WARMUP + 200
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"needs {need} file descriptors, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_idle_keep_alive_connection_memory(tmp_path, fd_room):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<h1>home</h1>\n")
    port = free_port()
    server = Server([str(BIN / "tronada"), "static", str(site), "-b", f"127.0.0.1:{port}"], port)
    sockets = []
    try:
        # Warm-up connections stay open: the measured ones then start from a loop whose
        # pools, timer lists and arenas already exist.
        open_idle(port, WARMUP, sockets)
        time.sleep(0.2)
        before = rss_bytes(server.proc.pid)
        open_idle(port, CONNECTIONS, sockets)
        time.sleep(0.5)
        after = rss_bytes(server.proc.pid)
        per_connection = (after - before) / CONNECTIONS
        print(f"RSS growth per idle keep-alive connection: {per_connection:.0f} bytes")
        # Measured 2026-12-07 on a busy 2-core machine: about 1,200 bytes (2,159 before
        # the request state was given back while idle); 961 once the stream and the
        # connection shed their per-connection allocations and members (the heap test
        # says 985). nginx needs 532; the goal is 1 KiB. The bound leaves room for page
        # granularity and arena growth.
        assert per_connection <= 1536
    finally:
        for s in sockets:
            s.close()
        assert server.stop() == 0
