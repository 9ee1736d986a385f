"""Upstreams found by DNS: `tronada proxy --resolve-interval` and `[route.proxy]
resolve_interval` against a real dnsmasq started here, whose answers change while
tronada runs.

Every upstream listens on the same port on its own loopback address (127.0.0.2,
127.0.0.3...: all of 127/8 reaches lo on Linux), and dnsmasq maps one name to a set of
them from a hosts file that the tests rewrite, sending SIGHUP to make it reread."""
import concurrent.futures
import http.client
import http.server
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse

import pytest

from conftest import BIN, free_port, wait_for_port

TRONADA = str(BIN / "tronada")
DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
NAME = "backends.tronada.test"

pytestmark = pytest.mark.skipif(not os.path.exists(DNSMASQ), reason="dnsmasq is not installed")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        me = self.server.server_address[0]
        self.server.hits.append(url.path)
        if url.path == "/health" and self.server.sick:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if url.path == "/slow":
            time.sleep(float(urllib.parse.parse_qs(url.query).get("s", ["1"])[0]))
        body = me.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Upstream(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address):
        self.hits = []
        self.sick = False
        super().__init__(address, Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.shutdown()
        self.server_close()


def start_upstreams(addresses):
    """One upstream per address, all on one port (retried if the port is taken)."""
    for _ in range(20):
        port = free_port()
        started = []
        try:
            for a in addresses:
                started.append(Upstream((a, port)))
            return port, {a: u for a, u in zip(addresses, started)}
        except OSError:
            for u in started:
                u.stop()
    raise RuntimeError("no port free on every loopback address")


class Dnsmasq:
    def __init__(self, tmp):
        self.hosts = tmp / "hosts"
        self.hosts.write_text("")
        self.port = free_port()
        self.proc = subprocess.Popen([
            DNSMASQ, "--no-daemon", "--conf-file=/dev/null", f"--port={self.port}",
            "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
            f"--addn-hosts={self.hosts}", "--local-ttl=1", f"--pid-file={tmp / 'dnsmasq.pid'}",
            # As root dnsmasq would become nobody, who cannot reread the test's hosts file.
            *(["--user=root"] if os.geteuid() == 0 else []),
            "--log-facility=-"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # dnsmasq answers over TCP too: its TCP port tells us it is up.
        wait_for_port(self.port, self.proc)

    def answer(self, addresses):
        self.hosts.write_text("".join(f"{a} {NAME}\n" for a in addresses))
        self.proc.send_signal(signal.SIGHUP)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def dnsmasq(tmp_path):
    d = Dnsmasq(tmp_path)
    yield d
    d.kill()


@pytest.fixture
def upstreams():
    port, ups = start_upstreams(["127.0.0.2", "127.0.0.3", "127.0.0.4"])
    yield port, ups
    for u in ups.values():
        u.stop()


class Tronada:
    def __init__(self, argv, port, tmp):
        self.port = port
        self.log = open(tmp / "tronada.log", "w+b")
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self.log)
        wait_for_port(port, self.proc)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


@pytest.fixture
def tronada(tmp_path):
    started = []

    def start(argv, port):
        t = Tronada(argv, port, tmp_path)
        started.append(t)
        return t

    yield start
    for t in started:
        t.stop()
        t.log.close()


def get(port, path="/whoami", timeout=15):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def wait_for_answers(port, want, timeout=10.0):
    """Sends requests until the answers come from exactly the addresses in `want` (each
    seen within a window of requests, none from elsewhere); returns the last window."""
    deadline = time.monotonic() + timeout
    window = []
    while time.monotonic() < deadline:
        status, who = get(port)
        window = (window + [who if status == 200 else f"status {status}"])[-4 * len(want):]
        if len(window) == 4 * len(want) and set(window) == set(want):
            return window
        time.sleep(0.05)
    raise AssertionError(f"answers never came from exactly {sorted(want)}: last {window}")


def proxy_argv(port, up_port, dns, extra=()):
    return [TRONADA, "proxy", "-b", f"127.0.0.1:{port}", "--access-log", "off",
            "--to", f"http://{NAME}:{up_port}", "--resolve-interval", "1",
            "--resolver", f"127.0.0.1:{dns.port}", *extra]


def test_proxy_follows_dns_answers(dnsmasq, upstreams, tronada):
    up_port, ups = upstreams
    dnsmasq.answer(["127.0.0.2", "127.0.0.3"])
    port = free_port()
    t = tronada(proxy_argv(port, up_port, dnsmasq), port)

    # The first request waits for the first answer rather than connecting by a name
    # only our dnsmasq knows.
    assert get(port)[0] == 200

    # Traffic spreads over every address the name resolves to, and only those.
    window = wait_for_answers(port, {"127.0.0.2", "127.0.0.3"})
    assert window.count("127.0.0.2") == window.count("127.0.0.3")

    # An address added to DNS gets traffic within the interval, without a reload.
    dnsmasq.answer(["127.0.0.2", "127.0.0.3", "127.0.0.4"])
    wait_for_answers(port, {"127.0.0.2", "127.0.0.3", "127.0.0.4"}, timeout=6)

    # Slow requests in flight on every member, then 127.0.0.3 leaves DNS: it gets no new
    # request, and the slow ones it holds still complete.
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        slow = [pool.submit(get, port, "/slow?s=5") for _ in range(6)]
        deadline = time.monotonic() + 5
        while sum(h == "/slow" for h in ups["127.0.0.3"].hits) < 1:
            assert time.monotonic() < deadline, "no slow request reached 127.0.0.3"
            time.sleep(0.02)
        dnsmasq.answer(["127.0.0.2", "127.0.0.4"])
        wait_for_answers(port, {"127.0.0.2", "127.0.0.4"}, timeout=6)
        hits_after = len(ups["127.0.0.3"].hits)
        for _ in range(10):
            assert get(port)[1] in ("127.0.0.2", "127.0.0.4")
        assert len(ups["127.0.0.3"].hits) == hits_after
        results = [f.result(timeout=20) for f in slow]
    assert all(status == 200 for status, _ in results), results
    assert "127.0.0.3" in [who for _, who in results]

    # The DNS server goes away: the last good set keeps serving, and the log says so.
    dnsmasq.kill()
    time.sleep(3)
    wait_for_answers(port, {"127.0.0.2", "127.0.0.4"}, timeout=5)
    t.stop()
    log = t.output()
    assert f"DNS lookup of {NAME} failed" in log, log
    assert "keeping its last addresses (127.0.0.2, 127.0.0.4)" in log, log
    assert "draining 127.0.0.3" in log, log


def test_new_addresses_are_health_checked(dnsmasq, upstreams, tronada):
    up_port, ups = upstreams
    ups["127.0.0.4"].sick = True
    dnsmasq.answer(["127.0.0.2", "127.0.0.3"])
    port = free_port()
    tronada(proxy_argv(port, up_port, dnsmasq,
                       ["--health-uri", "/health", "--health-interval", "1"]), port)
    wait_for_answers(port, {"127.0.0.2", "127.0.0.3"})
    dnsmasq.answer(["127.0.0.2", "127.0.0.3", "127.0.0.4"])
    deadline = time.monotonic() + 6
    while "/health" not in ups["127.0.0.4"].hits:
        assert time.monotonic() < deadline, "127.0.0.4 was never checked"
        time.sleep(0.05)
    # A window of answers from the other two only: round robin would put 127.0.0.4 in
    # every window were it not marked down.
    time.sleep(0.5)
    wait_for_answers(port, {"127.0.0.2", "127.0.0.3"})
    ups["127.0.0.4"].sick = False
    wait_for_answers(port, {"127.0.0.2", "127.0.0.3", "127.0.0.4"}, timeout=6)


def test_config_resolve_interval_and_resolver(dnsmasq, upstreams, tronada, tmp_path):
    up_port, _ = upstreams
    dnsmasq.answer(["127.0.0.3", "127.0.0.4"])
    port = free_port()
    config = tmp_path / "tronada.toml"
    config.write_text(f"""
[server]
bind = ["127.0.0.1:{port}"]
access_log = "off"

[[route]]
path = "/"
[route.proxy]
to = ["http://{NAME}:{up_port}"]
resolve_interval = "1s"
resolver = "127.0.0.1:{dnsmasq.port}"
""")
    check = subprocess.run([TRONADA, "check", "-c", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert 'resolve_interval = "1s"' in check.stdout
    t = tronada([TRONADA, "serve", "-c", str(config)], port)
    assert get(port)[0] == 200
    wait_for_answers(port, {"127.0.0.3", "127.0.0.4"})
    dnsmasq.answer(["127.0.0.2"])
    wait_for_answers(port, {"127.0.0.2"}, timeout=6)
    # A reload makes new routes, which look the name up afresh: no request fails meanwhile.
    t.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        assert get(port) == (200, "127.0.0.2")


def test_resolver_flag_is_checked():
    r = subprocess.run([TRONADA, "proxy", "--to", "http://a.test:1", "--resolve-interval", "1",
                        "--resolver", "dns.example"], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0
    assert "IP address" in r.stderr, r.stderr


def start_responders(addresses):
    binary = BIN / "fcgi_responder"
    if not binary.exists():
        pytest.skip("fcgi_responder was not built (libfcgi-dev missing)")
    for _ in range(20):
        port = free_port()
        procs = [subprocess.Popen([str(binary), "--port", str(port), "--address", a],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for a in addresses]
        time.sleep(0.2)
        if all(p.poll() is None for p in procs):
            for a in addresses:
                deadline = time.monotonic() + 5
                while True:
                    try:
                        socket.create_connection((a, port), timeout=0.2).close()
                        break
                    except OSError:
                        assert time.monotonic() < deadline, f"responder on {a}:{port} is not up"
                        time.sleep(0.02)
            return port, procs
        for p in procs:
            p.kill()
            p.wait()
    raise RuntimeError("no port free on every loopback address")


def test_fastcgi_backend_follows_dns_answers(dnsmasq, tronada, tmp_path):
    fcgi_port, procs = start_responders(["127.0.0.2", "127.0.0.3"])
    try:
        root = tmp_path / "root"
        root.mkdir()
        (root / "echo.php").write_text("handled by the responder\n")
        dnsmasq.answer(["127.0.0.2"])
        port = free_port()
        config = tmp_path / "fastcgi.toml"
        config.write_text(f"""
[server]
bind = ["127.0.0.1:{port}"]
access_log = "off"

[[route]]
path = "/"
[route.fastcgi]
to = "{NAME}:{fcgi_port}"
root = "{root}"
resolve_interval = "1s"
resolver = "127.0.0.1:{dnsmasq.port}"
""")
        tronada([TRONADA, "serve", "-c", str(config)], port)

        def responders(n=6):
            seen = []
            for _ in range(n):
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                try:
                    c.request("GET", "/echo.php")
                    r = c.getresponse()
                    r.read()
                    seen.append(r.getheader("X-Responder-Address") if r.status == 200
                                else f"status {r.status}")
                finally:
                    c.close()
            return set(seen)

        def wait_for(want, timeout=8.0):
            deadline = time.monotonic() + timeout
            seen = set()
            while time.monotonic() < deadline:
                seen = responders()
                if seen == want:
                    return
                time.sleep(0.1)
            raise AssertionError(f"responders {seen}, wanted {want}")

        wait_for({"127.0.0.2"})
        dnsmasq.answer(["127.0.0.2", "127.0.0.3"])
        wait_for({"127.0.0.2", "127.0.0.3"})
        dnsmasq.answer(["127.0.0.3"])
        wait_for({"127.0.0.3"})
    finally:
        for p in procs:
            p.kill()
            p.wait()
