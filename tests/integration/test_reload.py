"""SIGHUP: certificate reload in every server command, and in `tronada serve` a config
reload that swaps the route table for new requests (in-flight ones finish on the old),
keeps the old config when the new one has an error, forwards to forked workers, and
fails no request when it comes ten times under load; and a WebSocket proxied through a
route that a reload drops keeps working (the sanitizer stage runs that one under ASan)."""
import asyncio
import http.client
import http.server
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import BIN, free_port, wait_for_port
from test_tls_cli import make_ca, make_cert

TRONADA = str(BIN / "tronada")
APPS = Path(__file__).resolve().parent / "apps"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = make_ca(d, "reload-ca")
    return {"ca": ca,
            "first": make_cert(d, "first", ca, ("localhost", "127.0.0.1")),
            "second": make_cert(d, "second", ca, ("localhost", "127.0.0.1"))}


class Running:
    """A tronada command with its log in a file, on a free port."""

    def __init__(self, tmp_path, *args):
        self.port = free_port()
        self.log_path = tmp_path / f"tronada-{self.port}.log"
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen([TRONADA, *args, "-b", f"127.0.0.1:{self.port}"],
                                     stdout=self.log_file, stderr=self.log_file)
        wait_for_port(self.port, self.proc)

    def log(self):
        return self.log_path.read_text(errors="replace")

    def hup(self):
        self.proc.send_signal(signal.SIGHUP)

    def wait_for_log(self, text, count=1, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log().count(text) >= count:
                return
            assert self.proc.poll() is None, self.log()
            time.sleep(0.05)
        raise AssertionError(f"{text!r} x{count} not logged:\n{self.log()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
        self.log_file.close()
        return self.proc.returncode


@pytest.fixture
def start(tmp_path):
    procs = []

    def run(*args):
        p = Running(tmp_path, *args)
        procs.append(p)
        return p

    yield run
    for p in procs:
        p.stop()


def peer_cn(sock):
    return dict(x[0] for x in sock.getpeercert()["subject"])["commonName"]


def tls_connection(port, pki):
    ctx = ssl.create_default_context(cafile=str(pki["ca"][0]))
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    conn.connect()
    return conn


def get(conn, path="/"):
    conn.request("GET", path)
    r = conn.getresponse()
    return r.status, r.read()


def poll(fn, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


# --- certificates ------------------------------------------------------------------------


def test_sighup_reloads_the_certificate_and_keeps_open_connections(start, pki, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("hi\n")
    crt, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    shutil.copy(pki["first"][0], crt)
    shutil.copy(pki["first"][1], key)
    server = start("static", str(site), "--certfile", str(crt), "--keyfile", str(key))

    old = tls_connection(server.port, pki)
    assert peer_cn(old.sock) == "first"
    assert get(old) == (200, b"hi\n")

    shutil.copy(pki["second"][0], crt)
    shutil.copy(pki["second"][1], key)
    server.hup()
    server.wait_for_log("TLS certificates reloaded")

    new = tls_connection(server.port, pki)
    assert peer_cn(new.sock) == "second"
    assert get(new) == (200, b"hi\n")
    # The connection opened before the reload still works, with its old certificate.
    assert get(old) == (200, b"hi\n")
    assert peer_cn(old.sock) == "first"
    old.close()
    new.close()


def test_a_broken_certificate_on_reload_keeps_the_old_one(start, pki, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("hi\n")
    crt, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    shutil.copy(pki["first"][0], crt)
    shutil.copy(pki["first"][1], key)
    server = start("static", str(site), "--certfile", str(crt), "--keyfile", str(key))
    first = tls_connection(server.port, pki)  # serving: the SIGHUP handler is in place
    assert get(first) == (200, b"hi\n")
    first.close()
    shutil.copy(pki["second"][1], key)  # now mismatched
    server.hup()
    server.wait_for_log("TLS reload failed, keeping the old certificates")
    conn = tls_connection(server.port, pki)
    assert peer_cn(conn.sock) == "first"
    assert get(conn) == (200, b"hi\n")
    conn.close()


# --- serve: the config -------------------------------------------------------------------


def write_config(path, root, extra=""):
    path.write_text(f'[server]\naccess_log = "off"\n{extra}\n'
                    f'[[route]]\npath = "/"\n[route.static]\nroot = "{root}"\n')


@pytest.fixture
def two_sites(tmp_path):
    roots = []
    for name in ("old", "new"):
        d = tmp_path / name
        d.mkdir()
        (d / "index.html").write_text(f"{name} site\n")
        roots.append(d)
    return roots


def plain_get(port, path="/"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        return get(conn, path)
    finally:
        conn.close()


def test_config_reload_swaps_routes(start, tmp_path, two_sites):
    cfg = tmp_path / "tronada.toml"
    write_config(cfg, two_sites[0])
    server = start("serve", "-c", str(cfg))
    assert plain_get(server.port) == (200, b"old site\n")
    write_config(cfg, two_sites[1])
    server.hup()
    server.wait_for_log("configuration reloaded")
    assert plain_get(server.port) == (200, b"new site\n")


def test_a_bad_config_keeps_the_old_one(start, tmp_path, two_sites):
    cfg = tmp_path / "tronada.toml"
    write_config(cfg, two_sites[0])
    server = start("serve", "-c", str(cfg))
    assert plain_get(server.port) == (200, b"old site\n")
    cfg.write_text(cfg.read_text() + "\n[[route]]\npath = \"/x\"\nbogus = 1\n")
    server.hup()
    server.wait_for_log("config reload failed")
    log = server.log()
    # Reported as `tronada check` does, with the file and the line.
    check = subprocess.run([TRONADA, "check", "-c", str(cfg)], capture_output=True, timeout=20)
    assert check.returncode != 0
    reported = check.stderr.decode().strip().split("error: ", 1)[1]  # FILE:LINE:COLUMN: ...
    assert reported.startswith(f"{cfg}:")
    assert reported in log
    assert plain_get(server.port) == (200, b"old site\n")
    # A backend that fails to set up (a missing root) is refused the same way.
    write_config(cfg, tmp_path / "missing")
    server.hup()
    server.wait_for_log("config reload failed", count=2)
    assert plain_get(server.port) == (200, b"old site\n")
    # And a good one after that is taken.
    write_config(cfg, two_sites[1])
    server.hup()
    server.wait_for_log("configuration reloaded")
    assert plain_get(server.port) == (200, b"new site\n")


def test_a_changed_bind_is_logged_as_needing_a_restart(tmp_path, two_sites):
    # Without -b, so that the file's bind is the one in force.
    cfg = tmp_path / "tronada.toml"
    port, other = free_port(), free_port()
    write_config(cfg, two_sites[0], f'bind = "127.0.0.1:{port}"')
    p = subprocess.Popen([TRONADA, "serve", "-c", str(cfg)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        wait_for_port(port, p)
        assert plain_get(port) == (200, b"old site\n")
        write_config(cfg, two_sites[1], f'bind = "127.0.0.1:{other}"')
        p.send_signal(signal.SIGHUP)
        # The routes are reloaded; the listener stays where it was.
        assert poll(lambda: plain_get(port) == (200, b"new site\n"))
    finally:
        p.terminate()
        _, err = p.communicate(timeout=20)
    assert "listen addresses (bind) changed: restart tronada to apply it" in err.decode()
    with socket.socket() as s:  # never bound
        s.bind(("127.0.0.1", other))


class SlowUpstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        time.sleep(1.5)
        body = b"slow answer\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_in_flight_requests_finish_on_the_old_routes(start, tmp_path, two_sites):
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowUpstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    cfg = tmp_path / "tronada.toml"
    proxy_route = (f'[[route]]\npath = "/slow"\n[route.proxy]\n'
                   f'to = "http://127.0.0.1:{upstream.server_address[1]}"\n')
    write_config(cfg, two_sites[0])
    cfg.write_text(proxy_route + cfg.read_text())
    server = start("serve", "-c", str(cfg))
    result = {}
    t = threading.Thread(target=lambda: result.update(r=plain_get(server.port, "/slow")))
    t.start()
    time.sleep(0.5)  # the request is with the upstream now
    write_config(cfg, two_sites[1])  # no /slow route any more
    server.hup()
    server.wait_for_log("configuration reloaded")
    t.join(timeout=20)
    upstream.shutdown()
    upstream.server_close()
    assert result["r"] == (200, b"slow answer\n")
    assert plain_get(server.port, "/slow")[0] == 404


def test_workers_reload_too(start, tmp_path, two_sites):
    cfg = tmp_path / "tronada.toml"
    write_config(cfg, two_sites[0])
    server = start("serve", "-c", str(cfg), "-w", "2")
    server.wait_for_log("serving 1 route(s)", count=2)
    time.sleep(0.5)  # each worker installs its SIGHUP handler just after
    write_config(cfg, two_sites[1])
    server.hup()
    server.wait_for_log("configuration reloaded", count=2)
    for _ in range(20):  # new connections land on either worker
        assert plain_get(server.port) == (200, b"new site\n")


@pytest.fixture
def ws_upstream():
    port = free_port()
    proc = subprocess.Popen(["/usr/bin/python3", str(APPS / "tornado_ws_echo.py"), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc)
        yield port
    finally:
        proc.kill()
        proc.wait()


def test_reload_with_an_open_websocket_tunnel(start, tmp_path, two_sites, ws_upstream):
    # The tunnel outlives the request that opened it, and so the route table the reload
    # drops: whatever it uses (its idle timer list) must be its own, not the route's.
    import websockets.client

    cfg = tmp_path / "tronada.toml"
    ws_route = (f'[[route]]\npath = "/ws"\n[route.proxy]\n'
                f'to = "http://127.0.0.1:{ws_upstream}"\n')
    write_config(cfg, two_sites[0])
    cfg.write_text(ws_route + cfg.read_text())
    server = start("serve", "-c", str(cfg))

    async def talk():
        async with websockets.client.connect(f"ws://127.0.0.1:{server.port}/ws",
                                             open_timeout=10, close_timeout=10) as ws:
            await ws.send("before")
            assert await asyncio.wait_for(ws.recv(), 10) == "before"
            for round in range(2):
                # The first reload keeps a /ws route (a new one), the second drops it.
                if round == 0:
                    write_config(cfg, two_sites[1])
                    cfg.write_text(ws_route + cfg.read_text())
                else:
                    write_config(cfg, two_sites[1])
                server.hup()
                await asyncio.to_thread(server.wait_for_log, "configuration reloaded",
                                        round + 1)
                await asyncio.sleep(0.2)  # the old table is freed from a loop callback
                for i in range(20):
                    await ws.send(f"after {round} {i}")
                    assert await asyncio.wait_for(ws.recv(), 10) == f"after {round} {i}"
                blob = os.urandom(100_000)
                await ws.send(blob)
                assert await asyncio.wait_for(ws.recv(), 10) == blob
    try:
        asyncio.run(talk())
    except Exception as e:  # the server's log says why (under ASan: the report)
        raise AssertionError(f"{e!r}; the server said:\n{server.log()[-6000:]}") from e
    assert plain_get(server.port) == (200, b"new site\n")
    assert plain_get(server.port, "/ws")[0] == 404  # the route is gone; the tunnel was not
    assert server.proc.poll() is None, server.log()
    assert "AddressSanitizer" not in server.log()
    assert server.stop() == 0, server.log()
    assert "AddressSanitizer" not in server.log() and "runtime error" not in server.log()


# --- under load ----------------------------------------------------------------------------


def test_ten_sighups_under_load_fail_no_request(start, pki, tmp_path, two_sites):
    cfg = tmp_path / "tronada.toml"
    crt, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    shutil.copy(pki["first"][0], crt)
    shutil.copy(pki["first"][1], key)
    tls = f'[server.tls]\ncert = "{crt}"\nkey = "{key}"\n'

    def config(root):
        write_config(cfg, root)
        cfg.write_text(cfg.read_text().replace("[[route]]", tls + "\n[[route]]", 1))

    config(two_sites[0])
    server = start("serve", "-c", str(cfg))
    ctx = ssl.create_default_context(cafile=str(pki["ca"][0]))
    stop = threading.Event()
    counts = {"ok": 0, "failed": []}
    lock = threading.Lock()

    def record(ok, what=None):
        with lock:
            if ok:
                counts["ok"] += 1
            else:
                counts["failed"].append(what)

    def keep_alive_client():
        conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=10)
        while not stop.is_set():
            try:
                status, body = get(conn)
                record(status == 200 and body in (b"old site\n", b"new site\n"), (status, body))
            except Exception as e:  # noqa: BLE001 - every failure counts
                record(False, repr(e))
                conn.close()
        conn.close()

    def new_connection_client():
        while not stop.is_set():
            conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=10)
            try:
                status, body = get(conn)
                record(status == 200, (status, body))
            except Exception as e:  # noqa: BLE001
                record(False, repr(e))
            finally:
                conn.close()

    threads = [threading.Thread(target=f) for f in (keep_alive_client, keep_alive_client,
                                                    new_connection_client,
                                                    new_connection_client)]
    for t in threads:
        t.start()
    try:
        assert poll(lambda: counts["ok"] > 0)
        for i in range(10):
            time.sleep(0.2)
            config(two_sites[i % 2])
            src = pki["second" if i % 2 else "first"]
            shutil.copy(src[0], crt)
            shutil.copy(src[1], key)
            server.hup()
        server.wait_for_log("configuration reloaded", count=10, timeout=20)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=20)
    assert counts["failed"] == []
    assert counts["ok"] > 20
    assert server.proc.poll() is None
