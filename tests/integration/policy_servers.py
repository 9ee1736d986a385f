"""`tronada serve` instances and a plain HTTP upstream for the route-policy tests
(rate limits, CORS): real processes on loopback ports, stopped by the fixtures."""
import http.client
import http.server
import re
import signal
import subprocess
import threading

from conftest import BIN, free_port, wait_for_port

TRONADA = str(BIN / "tronada")


class Tronada:
    """`tronada serve -c CONFIG` on a free port, with the admin listener on another."""

    def __init__(self, config):
        self.port = free_port()
        self.admin = free_port()
        self.proc = subprocess.Popen(
            [TRONADA, "serve", "-c", str(config), "-b", f"127.0.0.1:{self.port}",
             "--admin", f"127.0.0.1:{self.admin}", "--access-log", "off"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_for_port(self.port, self.proc)
        wait_for_port(self.admin, self.proc)

    def request(self, method, path, headers=None, body=None, port=None):
        conn = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, r.headers, r.read()
        finally:
            conn.close()

    def metric(self, name):
        """The sum of every sample of `name` on /metrics."""
        _, _, body = self.request("GET", "/metrics", port=self.admin)
        total = 0.0
        for line in body.decode().splitlines():
            m = re.match(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$", line)
            if m:
                total += float(m.group(1))
        return total

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                out, err = self.proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                out, err = self.proc.communicate()
            return out.decode(errors="replace") + err.decode(errors="replace")
        return ""


class Upstream:
    """A small HTTP server in a thread: answers every request with JSON, records what it
    was asked, and sets headers a route's policy must replace or merge with."""

    def __init__(self):
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                outer.requests.append((self.command, self.path, dict(self.headers)))
                body = b'{"ok": true}\n'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Access-Control-Allow-Origin", "https://backend-said.example")
                self.send_header("Vary", "Accept-Encoding")
                self.send_header("X-Request-Id", "r-1")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_OPTIONS = do_HEAD = _answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
