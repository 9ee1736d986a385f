#!/usr/bin/python3
"""tronada's benchmark harness: starts servers, loads them, writes docs/benchmarks.md.

    /usr/bin/python3 bench/run.py --quick echo            # one workload, short runs
    /usr/bin/python3 bench/run.py http-plaintext http-close
    /usr/bin/python3 bench/run.py all                     # every workload
    /usr/bin/python3 bench/run.py --list

The server runs pinned to one CPU (--server-cpu, default 0) and the load generator to
another (--client-cpu, default 1), both with taskset. Each workload starts its servers
once (memory workloads: once per round), then runs ROUNDS rounds interleaved across
servers (the order rotates each round); each run is a warm-up followed by a measured
window. Reported: the median and min-max of throughput, the median p50/p99 latency,
and the server's CPU time per request (utime+stime of the server's process tree from
/proc/<pid>/stat over the measured window, divided by the requests completed).

Results go to stdout and, unless --no-write, into docs/benchmarks.md between the
markers <!-- bench:WORKLOAD --> and <!-- /bench:WORKLOAD --> (other sections are kept;
a missing section is appended), with a plot in docs/img/bench-WORKLOAD.png.

A server whose binary or interpreter module is missing is skipped with a note; so is a
workload whose load generator is missing. Servers are killed on exit, error or Ctrl-C.
Standard library only, plus matplotlib for the plots (skipped with a note if absent).
"""

import argparse
import datetime
import getpass
import json
import os
import platform
import re
import resource
import shutil
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("TRONADA_BUILD_DIR", ROOT / "build"))
BIN = BUILD / "bin"
PEERS = Path(__file__).resolve().parent / "peers"
DOC = ROOT / "docs" / "benchmarks.md"
IMG = ROOT / "docs" / "img"
PYTHON = "/usr/bin/python3"  # Debian's, whatever python3 comes first on PATH
CLK_TCK = os.sysconf("SC_CLK_TCK")
HOST = "127.0.0.1"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# Processes


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def proc_tree(root_pid):
    """root_pid and all its descendants, from /proc/*/stat."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        parents.setdefault(int(fields[1]), []).append(int(entry))
    pids, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(parents.get(pid, []))
    return pids


def cpu_ticks(pids):
    """utime + stime (clock ticks) summed over pids; vanished pids count 0."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)
    return total


def memory(pids):
    """Rss, Pss and Private (clean + dirty) in bytes, summed over pids (smaps_rollup)."""
    out = {"rss": 0, "pss": 0, "private": 0}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                text = f.read()
        except OSError:
            continue
        kb = {}
        for line in text.splitlines():
            m = re.match(r"(\w+):\s+(\d+) kB", line)
            if m:
                kb[m.group(1)] = int(m.group(2))
        out["rss"] += kb.get("Rss", 0) * 1024
        out["pss"] += kb.get("Pss", 0) * 1024
        out["private"] += (kb.get("Private_Clean", 0) + kb.get("Private_Dirty", 0)) * 1024
    return out


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


# --------------------------------------------------------------------------------------
# Protocols: readiness probes and the one request an idle connection makes

ECHO_LINE = b"x" * 63 + b"\n"
HTTP_REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ValueError("connection closed")
        data += chunk
    return data


def echo_send(sock):
    sock.sendall(ECHO_LINE)


def echo_receive(sock):
    if recv_exact(sock, len(ECHO_LINE)) != ECHO_LINE:
        raise ValueError("echo mismatch")


def echo_roundtrip(sock):
    echo_send(sock)
    echo_receive(sock)


WS_HANDSHAKE = (b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n")
WS_PAYLOAD = b"x" * 64
WS_MASK = b"\x12\x34\x56\x78"
# A masked binary frame (clients must mask) and the unmasked echo the server sends back.
WS_FRAME = (b"\x82" + bytes([0x80 | len(WS_PAYLOAD)]) + WS_MASK +
            bytes(b ^ WS_MASK[i % 4] for i, b in enumerate(WS_PAYLOAD)))
WS_ECHO = b"\x82" + bytes([len(WS_PAYLOAD)]) + WS_PAYLOAD


def ws_open_send(sock):
    sock.sendall(WS_HANDSHAKE)


def ws_open_receive(sock):
    """Reads the 101 head, then does one message round trip."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ValueError("connection closed during the WebSocket handshake")
        data += chunk
    if not data.startswith(b"HTTP/1.1 101 "):
        raise ValueError(f"WebSocket handshake refused: {data[:40]!r}")
    ws_roundtrip(sock)


def ws_roundtrip(sock):
    sock.sendall(WS_FRAME)
    if recv_exact(sock, len(WS_ECHO)) != WS_ECHO:
        raise ValueError("websocket echo mismatch")


def http_send(sock):
    sock.sendall(HTTP_REQUEST)


def http_roundtrip(sock):
    http_send(sock)
    return http_receive(sock)


def http_receive(sock):
    """Reads one whole response to GET / (Content-Length or chunked); returns it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ValueError("connection closed before the response headers")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    if not re.match(rb"HTTP/1\.[01] 200 ", status):
        raise ValueError(f"unexpected status line {status!r}")
    m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    if m:
        body += recv_exact(sock, int(m.group(1)) - len(body)) if int(m.group(1)) > len(body) else b""
    elif re.search(rb"(?im)^transfer-encoding:\s*chunked", head):
        while not body.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                raise ValueError("connection closed in a chunked body")
            body += chunk
    return head, body


# --------------------------------------------------------------------------------------
# Servers


class Spec:
    """How to start one server and probe it; `missing()` names what is absent, if any."""

    def __init__(self, name, label, proto, command, missing, version=None):
        self.name = name
        self.label = label
        self.proto = proto
        self._command = command
        self._missing = missing
        self._version = version

    def command(self, port, workdir):
        return self._command(port, workdir)

    def missing(self):
        return self._missing()

    def version(self):
        try:
            return self._version() if self._version else ""
        except Exception:
            return ""

    def probe(self, sock):
        if self.proto == "tcp":
            return  # TLS / HTTP/2 servers: accepting is enough; h2load checks the rest
        if self.proto == "echo":
            echo_roundtrip(sock)
        elif self.proto == "ws":
            ws_open_send(sock)
            ws_open_receive(sock)
        else:
            http_roundtrip(sock)


def missing_binary(path, hint):
    return lambda: None if os.access(path, os.X_OK) else f"`{os.path.relpath(path, ROOT)}` missing ({hint})"


def missing_tornado():
    r = subprocess.run([PYTHON, "-c", "import tornado"], capture_output=True)
    return None if r.returncode == 0 else "Python module tornado missing (python3-tornado)"


def tornado_version():
    r = subprocess.run([PYTHON, "-c", "import tornado; print(tornado.version)"],
                       capture_output=True, text=True)
    return f"Tornado {r.stdout.strip()}" if r.returncode == 0 else ""


def nginx_path():
    return shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)


def nginx_version():
    r = subprocess.run([nginx_path(), "-v"], capture_output=True, text=True)
    return r.stderr.strip().replace("nginx version: ", "")


def nginx_command(port, workdir):
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    conns = max(1024, min(nofile - 100, 30000))
    configure = subprocess.run([nginx_path(), "-V"], capture_output=True, text=True).stderr
    temp_paths = [f"client_body_temp_path {workdir}/client_body;"]
    for module in ("proxy", "fastcgi", "uwsgi", "scgi"):
        if f"--without-http_{module}_module" not in configure:
            temp_paths.append(f"{module}_temp_path {workdir}/{module};")
    # Its best configuration for this test: one worker, no access log, keep-alive
    # connections that are never cut short by a request count or a short timeout.
    conf = f"""
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile {nofile};
pid {workdir}/nginx-{port}.pid;
error_log {workdir}/nginx-error.log warn;
events {{
    worker_connections {conns};
    multi_accept on;
}}
http {{
    access_log off;
    default_type text/plain;
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    {" ".join(temp_paths)}
    server {{
        listen {HOST}:{port} backlog=4096;
        location / {{
            return 200 "Hello, world";
        }}
    }}
}}
"""
    conf_path = Path(workdir) / f"nginx-{port}.conf"
    conf_path.write_text(conf)
    return [nginx_path(), "-p", str(workdir), "-e", f"{workdir}/nginx-error.log",
            "-c", str(conf_path)]


def bench_cert(workdir):
    """A self-signed certificate for the TLS workloads (made once per run)."""
    crt, key = Path(workdir) / "cert.pem", Path(workdir) / "key.pem"
    if not crt.exists():
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key),
                        "-out", str(crt), "-days", "2", "-subj", "/CN=localhost"],
                       check=True, capture_output=True)
    return crt, key


def nginx_h2_command(tls):
    """nginx with `listen ... http2` (prior knowledge on clear text; ALPN with ssl)."""
    def command(port, workdir):
        argv = nginx_command(port, workdir)
        conf_path = Path(argv[-1])
        conf = conf_path.read_text()
        listen = f"listen {HOST}:{port} backlog=4096;"
        if tls:
            crt, key = bench_cert(workdir)
            new = (f"listen {HOST}:{port} ssl http2 backlog=4096;\n"
                   f"        ssl_certificate {crt};\n        ssl_certificate_key {key};")
        else:
            new = f"listen {HOST}:{port} http2 backlog=4096;"
        conf_path.write_text(conf.replace(listen, new))
        return argv
    return command


def h2o_version():
    r = subprocess.run(["h2o", "--version"], capture_output=True, text=True)
    return r.stdout.splitlines()[0] if r.returncode == 0 and r.stdout else ""


def h2o_command(tls):
    """h2o with one thread serving a file with `Hello, world` (its static handler, with
    its open-file cache: its fastest way to answer without mruby)."""
    def command(port, workdir):
        docroot = Path(workdir) / "h2o-root"
        docroot.mkdir(exist_ok=True)
        (docroot / "index.html").write_text("Hello, world")
        ssl = ""
        if tls:
            crt, key = bench_cert(workdir)
            ssl = f"\n  ssl:\n    certificate-file: {crt}\n    key-file: {key}"
        # As root h2o would switch to `nobody`, who cannot write in the work directory.
        conf = f"""user: {getpass.getuser()}
num-threads: 1
pid-file: {workdir}/h2o-{port}.pid
error-log: {workdir}/h2o-{port}-error.log
max-connections: 30000
listen:
  host: {HOST}
  port: {port}{ssl}
hosts:
  default:
    paths:
      /:
        file.dir: {docroot}
"""
        conf_path = Path(workdir) / f"h2o-{port}.conf"
        conf_path.write_text(conf)
        return ["h2o", "-c", str(conf_path)]
    return command


def tronada_h2_command(tls):
    """tests/support/http_test_server: an HTTPServer answering `/` with `Hello, world`
    (HTTP/2 by prior knowledge on clear text, by ALPN over TLS)."""
    def command(port, workdir):
        argv = [str(BIN / "http_test_server"), "--port", str(port), "--address", HOST]
        if tls:
            crt, key = bench_cert(workdir)
            argv += ["--certfile", str(crt), "--keyfile", str(key)]
        return argv
    return command


SERVERS = {
    "tronada-echo": Spec(
        "tronada-echo", "tronada (0b_tcpserver)", "echo",
        lambda port, wd: [str(BIN / "0b_tcpserver"), "--port", str(port), "--address", HOST],
        missing_binary(BIN / "0b_tcpserver", "run ./scripts/build")),
    "tornado-echo": Spec(
        "tornado-echo", "Tornado TCPServer", "echo",
        lambda port, wd: [PYTHON, str(PEERS / "tornado_echo.py"), "--port", str(port),
                          "--address", HOST],
        missing_tornado, tornado_version),
    "tronada-ws": Spec(
        "tronada-ws", "tronada (ws_echo)", "ws",
        lambda port, wd: [str(BIN / "ws_echo"), "--port", str(port), "--address", HOST],
        missing_binary(BIN / "ws_echo", "run ./scripts/build")),
    "tornado-ws": Spec(
        "tornado-ws", "Tornado WebSocketHandler", "ws",
        lambda port, wd: [PYTHON, str(PEERS / "tornado_ws_echo.py"), "--port", str(port),
                          "--address", HOST],
        missing_tornado, tornado_version),
    "nginx": Spec(
        "nginx", "nginx", "http", nginx_command,
        lambda: None if nginx_path() else "nginx missing (nginx-light)", nginx_version),
    "tornado-http": Spec(
        "tornado-http", "Tornado hello", "http",
        lambda port, wd: [PYTHON, str(PEERS / "tornado_hello.py"), "--port", str(port),
                          "--address", HOST],
        missing_tornado, tornado_version),
    "tronada-http": Spec(
        "tronada-http", "tronada (01_getting_started)", "http",
        lambda port, wd: [str(BIN / "01_getting_started"), "--port", str(port),
                          "--address", HOST],
        missing_binary(BIN / "01_getting_started", "not built: run ./scripts/build")),
}

# WSGI: the same app module (bench/peers/wsgi_hello.py, flask_hello.py) behind each
# server, one worker process each; access logs off where a server has them on.
def missing_module(module, package):
    def check():
        r = subprocess.run([PYTHON, "-c", f"import {module}"], capture_output=True)
        return None if r.returncode == 0 else f"Python module {module} missing ({package})"
    return check


def missing_all(*checks):
    def check():
        for c in checks:
            why = c()
            if why:
                return why
        return None
    return check


def gunicorn_version():
    r = subprocess.run(["/usr/bin/gunicorn", "--version"], capture_output=True, text=True)
    return (r.stdout or r.stderr).strip()


def uwsgi_version():
    r = subprocess.run(["/usr/bin/uwsgi", "--version"], capture_output=True, text=True)
    return f"uWSGI {r.stdout.strip()}"


for _app, _module, _dep in (("wsgi", "wsgi_hello", "json"), ("flask", "flask_hello", "flask")):
    _spec = f"{_module}:application"
    _need = missing_module(_dep, "python3-flask")
    SERVERS[f"tronada-{_app}"] = Spec(
        f"tronada-{_app}", "tronada wsgi (1 thread)", "http",
        lambda port, wd, _spec=_spec: [
            str(BIN / "tronada"), "wsgi", _spec, "-b", f"{HOST}:{port}",
            "--pythonpath", str(PEERS), "--log-level", "warning"],
        missing_all(missing_binary(BIN / "tronada", "run ./scripts/build"), _need))
    SERVERS[f"gunicorn-sync-{_app}"] = Spec(
        f"gunicorn-sync-{_app}", "gunicorn (sync, 1 worker)", "http",
        lambda port, wd, _spec=_spec: [
            "/usr/bin/gunicorn", "-w", "1", "-k", "sync", "--backlog", "1024",
            "-b", f"{HOST}:{port}", "--chdir", str(PEERS), _spec],
        missing_all(missing_binary("/usr/bin/gunicorn", "apt-get install gunicorn"), _need),
        gunicorn_version)
    SERVERS[f"gunicorn-gthread-{_app}"] = Spec(
        f"gunicorn-gthread-{_app}", "gunicorn (gthread, 4 threads)", "http",
        lambda port, wd, _spec=_spec: [
            "/usr/bin/gunicorn", "-w", "1", "-k", "gthread", "--threads", "4",
            "--backlog", "1024", "-b", f"{HOST}:{port}", "--chdir", str(PEERS), _spec],
        missing_all(missing_binary("/usr/bin/gunicorn", "apt-get install gunicorn"), _need),
        gunicorn_version)
    SERVERS[f"uwsgi-{_app}"] = Spec(
        f"uwsgi-{_app}", "uWSGI (--http-socket, 1 process)", "http",
        lambda port, wd, _spec=_spec: [
            "/usr/bin/uwsgi", "--plugin", "python3", "--http-socket", f"{HOST}:{port}",
            "--chdir", str(PEERS), "--module", _spec, "--processes", "1",
            "--listen", "1024", "--disable-logging", "--die-on-term"],
        missing_all(missing_binary("/usr/bin/uwsgi",
                                   "apt-get install uwsgi-core uwsgi-plugin-python3"), _need),
        uwsgi_version)
    SERVERS[f"tornado-{_app}"] = Spec(
        f"tornado-{_app}", "Tornado WSGIContainer", "http",
        lambda port, wd, _spec=_spec: [
            PYTHON, str(PEERS / "tornado_wsgi.py"), _spec, "--port", str(port),
            "--address", HOST],
        missing_all(missing_tornado, _need), tornado_version)

def php_fpm_path():
    found = sorted(Path("/usr/sbin").glob("php-fpm*"))
    return str(found[0]) if found else None


def php_fpm_conf(workdir, port):
    """A php-fpm pool of 2 static children on a Unix socket, in the server's workdir.
    Each gateway gets its own pool of this configuration: a php-fpm child serves one
    kept-alive connection at a time, so two gateways keeping connections to one pool
    would starve each other between rounds."""
    sock = f"{workdir}/php-{port}.sock"
    user = "user = root\ngroup = root\n" if os.geteuid() == 0 else ""
    conf = Path(workdir) / f"php-fpm-{port}.conf"
    conf.write_text(f"""[global]
error_log = {workdir}/php-fpm-{port}.log
daemonize = no
pid = {workdir}/php-fpm-{port}.pid
[bench]
{user}listen = {sock}
listen.mode = 0666
pm = static
pm.max_children = 2
pm.max_requests = 0
""")
    return sock, [php_fpm_path(), "-F", "-y", str(conf)] + (["-R"] if os.geteuid() == 0 else [])


def with_php_fpm(port, workdir, server_argv):
    """php-fpm and a gateway in one process group (the harness pins and stops both)."""
    # nginx's worker runs as an unprivileged user: it must reach the socket in here.
    os.chmod(workdir, 0o755)
    sock, fpm = php_fpm_conf(workdir, port)
    # php-fpm leaves the process group, so the shell stops it itself on SIGTERM.
    script = (f"{shlex.join(fpm)} & FPM=$!; "
              f"while [ ! -S {shlex.quote(sock)} ]; do sleep 0.05; done; "
              f"{shlex.join(server_argv(sock))} & SRV=$!; "
              "trap 'kill $SRV $FPM 2>/dev/null; wait' TERM INT; "
              "wait $SRV; kill $FPM 2>/dev/null; wait")
    return ["/bin/sh", "-c", script]


def nginx_php_command(port, workdir):
    def argv(sock):
        conf = f"""
daemon off;
master_process on;
worker_processes 1;
pid {workdir}/nginx-php-{port}.pid;
error_log {workdir}/nginx-php-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    client_body_temp_path {workdir}/client_body;
    fastcgi_temp_path {workdir}/fastcgi;
    upstream php {{ server unix:{sock}; keepalive 2; }}
    server {{
        listen {HOST}:{port} backlog=4096;
        root {PEERS / "php"};
        index index.php;
        location / {{ try_files $uri $uri/ /index.php$is_args$args; }}
        location ~ \\.php$ {{
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_keep_conn on;
            fastcgi_pass php;
        }}
    }}
}}
"""
        conf_path = Path(workdir) / f"nginx-php-{port}.conf"
        conf_path.write_text(conf)
        return [nginx_path(), "-p", str(workdir), "-e", f"{workdir}/nginx-php-error.log",
                "-c", str(conf_path)]
    return with_php_fpm(port, workdir, argv)


def tronada_php_command(port, workdir):
    return with_php_fpm(port, workdir, lambda sock: [
        str(BIN / "tronada"), "fastcgi", "--to", f"unix:{sock}", "--root", str(PEERS / "php"),
        "-b", f"{HOST}:{port}", "--max-conns", "2", "--log-level", "warning"])


def with_upstream(port, workdir, gateway_argv):
    """A fixed upstream (nginx answering `Hello, world`, as in http-plaintext) and a
    gateway in one process group, so both are pinned to the server CPU and the CPU time
    counts both: the gateways differ only in their own cost."""
    up_port = free_port()
    upstream = nginx_command(up_port, workdir)
    script = (f"{shlex.join(upstream)} & UP=$!; "
              f"for i in $(seq 200); do curl -s -o /dev/null http://{HOST}:{up_port}/ && break; "
              "sleep 0.05; done; "
              f"{shlex.join(gateway_argv(up_port))} & SRV=$!; "
              "trap 'kill $SRV $UP 2>/dev/null; wait' TERM INT; "
              "wait $SRV; kill $UP 2>/dev/null; wait")
    return ["/bin/sh", "-c", script]


def nginx_proxy_command(port, workdir):
    def argv(up_port):
        conf = f"""
daemon off;
master_process on;
worker_processes 1;
pid {workdir}/nginx-proxy-{port}.pid;
error_log {workdir}/nginx-proxy-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    client_body_temp_path {workdir}/client_body;
    proxy_temp_path {workdir}/proxy;
    upstream up {{ server {HOST}:{up_port}; keepalive 64; keepalive_requests 100000000; }}
    server {{
        listen {HOST}:{port} backlog=4096;
        location / {{
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
        }}
    }}
}}
"""
        conf_path = Path(workdir) / f"nginx-proxy-{port}.conf"
        conf_path.write_text(conf)
        return [nginx_path(), "-p", str(workdir), "-e", f"{workdir}/nginx-proxy-error.log",
                "-c", str(conf_path)]
    return with_upstream(port, workdir, argv)


def tronada_proxy_command(port, workdir):
    return with_upstream(port, workdir, lambda up_port: [
        str(BIN / "tronada"), "proxy", "--to", f"http://{HOST}:{up_port}",
        "-b", f"{HOST}:{port}", "--access-log", "off", "--log-level", "warning"])


def missing_php_fpm():
    return None if php_fpm_path() else "php-fpm missing (apt-get install php-fpm)"


SERVERS["nginx-php"] = Spec(
    "nginx-php", "nginx fastcgi_pass (keepalive 2) → php-fpm (2 children)", "http",
    nginx_php_command,
    missing_all(missing_php_fpm, lambda: None if nginx_path() else "nginx missing (nginx-light)"),
    nginx_version)
SERVERS["tronada-php"] = Spec(
    "tronada-php", "tronada fastcgi (--max-conns 2) → php-fpm (2 children)", "http",
    tronada_php_command,
    missing_all(missing_php_fpm, missing_binary(BIN / "tronada", "run ./scripts/build")))

SERVERS["nginx-proxy"] = Spec(
    "nginx-proxy", "nginx proxy_pass (upstream keepalive 64) → nginx", "http",
    nginx_proxy_command, lambda: None if nginx_path() else "nginx missing (nginx-light)",
    nginx_version)
SERVERS["tronada-proxy"] = Spec(
    "tronada-proxy", "tronada proxy → nginx", "http", tronada_proxy_command,
    missing_all(lambda: None if nginx_path() else "nginx missing (nginx-light)",
                missing_binary(BIN / "tronada", "run ./scripts/build")))

# http-db: a handler doing one PostgreSQL query per request. One postgres for the whole
# run (tests/integration/db_servers.py: a temp dir, a free port, run as the postgres user
# when root), unpinned: the servers' CPU time counts only the application.
_PG_SERVER = None


def pg_server():
    global _PG_SERVER
    if _PG_SERVER is None:
        sys.path.insert(0, str(ROOT / "tests" / "integration"))
        import atexit
        from db_servers import PgServer
        _PG_SERVER = PgServer()
        atexit.register(_PG_SERVER.close)
    return _PG_SERVER


def missing_postgres():
    return None if list(Path("/usr/lib/postgresql").glob("*/bin/postgres")) else \
        "postgresql missing (apt-get install postgresql)"


SERVERS["tronada-db"] = Spec(
    "tronada-db", "tronada (08_async_db, pg::Pool of 10)", "http",
    lambda port, wd: [str(BIN / "08_async_db"), "--dsn", pg_server().dsn, "--pool", "10",
                      "--port", str(port), "--address", HOST],
    missing_all(missing_postgres, missing_binary(BIN / "08_async_db", "run ./scripts/build")))
SERVERS["tornado-db"] = Spec(
    "tornado-db", "Tornado + asyncpg (pool of 10)", "http",
    lambda port, wd: [PYTHON, str(PEERS / "tornado_pg.py"), "--dsn",
                      f"postgresql://postgres@127.0.0.1:{pg_server().port}/postgres",
                      "--pool", "10", "--port", str(port), "--address", HOST],
    missing_all(missing_postgres, missing_tornado, missing_module("asyncpg", "python3-asyncpg")),
    tornado_version)

# The `client` workload measures load generators, not servers: two nginx instances
# (the fixed server), one loaded by wrk and one by our HTTP client.
for _name, _label in (("client-wrk", "wrk → nginx"),
                      ("client-tronada", "AsyncHTTPClient (http_client_bench) → nginx")):
    SERVERS[_name] = Spec(
        _name, _label, "http", nginx_command,
        lambda: None if nginx_path() else "nginx missing (nginx-light)", nginx_version)
for _tls, _suffix in ((False, "h2c"), (True, "h2-tls")):
    SERVERS[f"nginx-{_suffix}"] = Spec(
        f"nginx-{_suffix}", f"nginx ({_suffix})", "tcp", nginx_h2_command(_tls),
        lambda: None if nginx_path() else "nginx missing (nginx-light)", nginx_version)
    SERVERS[f"h2o-{_suffix}"] = Spec(
        f"h2o-{_suffix}", f"h2o ({_suffix})", "tcp", h2o_command(_tls),
        lambda: None if shutil.which("h2o") else "h2o missing (apt-get install h2o)", h2o_version)
    SERVERS[f"tronada-{_suffix}"] = Spec(
        f"tronada-{_suffix}", f"tronada ({_suffix}, http_test_server)", "tcp",
        tronada_h2_command(_tls),
        missing_binary(BIN / "http_test_server", "not built: run ./scripts/build"))


# Framework workloads: tronada's Application against Tornado's with the same handlers
# (bench/framework_bench.cpp, bench/peers/tornado_framework.py), and the framework
# against a bare HTTPServer delegate.
def framework_command(routes):
    return lambda port, wd: [str(BIN / "framework_bench"), "--port", str(port), "--address",
                             HOST, "--routes", str(routes)]


def tornado_framework_command(routes):
    return lambda port, wd: [PYTHON, str(PEERS / "tornado_framework.py"), "--port", str(port),
                             "--address", HOST, "--routes", str(routes)]


for _routes in (3, 50):
    SERVERS[f"tronada-routes{_routes}"] = Spec(
        f"tronada-routes{_routes}", f"tronada Application, {_routes} rules", "http",
        framework_command(_routes),
        missing_binary(BIN / "framework_bench", "not built: run ./scripts/build"))
    SERVERS[f"tornado-routes{_routes}"] = Spec(
        f"tornado-routes{_routes}", f"Tornado Application, {_routes} rules", "http",
        tornado_framework_command(_routes), missing_tornado, tornado_version)
SERVERS["tronada-bare"] = Spec(
    "tronada-bare", "tronada HTTPServer delegate (http_test_server)", "http",
    tronada_h2_command(False),
    missing_binary(BIN / "http_test_server", "not built: run ./scripts/build"))
# HTTPS over HTTP/1.1: the h2-tls servers; wrk offers no ALPN, so they answer HTTP/1.1.
SERVERS["nginx-https"] = Spec(
    "nginx-https", "nginx (HTTPS)", "tcp", nginx_h2_command(True),
    lambda: None if nginx_path() else "nginx missing (nginx-light)", nginx_version)
SERVERS["tronada-https"] = Spec(
    "tronada-https", "tronada (HTTPS, http_test_server)", "tcp", tronada_h2_command(True),
    missing_binary(BIN / "http_test_server", "not built: run ./scripts/build"))


# --------------------------------------------------------------------------------------
# Load generators


def parse_duration_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    if not m:
        raise ValueError(f"bad wrk duration {text!r}")
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}[m.group(2)]
    return float(m.group(1)) * scale


def parse_wrk(out):
    res = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise RuntimeError(f"cannot parse wrk output:\n{out}")
    res["rps"] = float(m.group(1))
    m = re.search(r"(\d+) requests in ([\d.]+\w+)", out)
    res["requests"] = int(m.group(1))
    res["seconds"] = parse_duration_ms(m.group(2)) / 1e3
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s+{pct}(?:\.0+)?%\s+([\d.]+\w+)", out, re.M)
        res[key] = parse_duration_ms(m.group(1)) if m else None
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    res["errors"] = errors
    return res


def run_wrk(opts, port, conns, seconds, close, path="/", tls=False):
    argv = ["taskset", "-c", str(opts.client_cpu), "wrk", "-t1", f"-c{conns}",
            f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "5s"]  # whole seconds only
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(f"{'https' if tls else 'http'}://{HOST}:{port}{path}")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    if r.returncode != 0:
        raise RuntimeError(f"wrk failed ({r.returncode}): {(r.stderr or r.stdout).strip()[:500]}")
    return parse_wrk(r.stdout)


def run_h2load(opts, port, conns, seconds, tls, streams=10):
    scheme = "https" if tls else "http"
    argv = ["taskset", "-c", str(opts.client_cpu), "h2load", "-t1", f"-c{conns}",
            f"-m{streams}", f"-D{max(1, round(seconds))}", f"{scheme}://{HOST}:{port}/"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    out = r.stdout
    m = re.search(r"finished in ([\d.]+)(\w+), ([\d.]+) req/s", out)
    n = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", out)
    if r.returncode != 0 or not m or not n:
        raise RuntimeError(f"h2load failed ({r.returncode}): {(r.stderr or out).strip()[:500]}")
    if tls and "Application protocol: h2" not in out:
        raise RuntimeError("h2load did not negotiate h2")
    seconds_run = parse_duration_ms(m.group(1) + m.group(2)) / 1e3
    done, ok = int(n.group(2)), int(n.group(3))
    # h2load reports no latency percentiles, only min/max/mean.
    return {"rps": ok / seconds_run if seconds_run else 0.0, "requests": ok,
            "seconds": seconds_run, "p50_ms": None, "p99_ms": None,
            "errors": int(n.group(4)) + int(n.group(5)) + int(n.group(6))}


def run_http_client_bench(opts, port, conns, seconds):
    argv = ["taskset", "-c", str(opts.client_cpu), str(BIN / "http_client_bench"), "--port",
            str(port), "-c", str(conns), "-d", str(seconds)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    try:
        data = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError(f"http_client_bench failed ({r.returncode}): {r.stderr.strip()}")
    return {"rps": data["rps"], "requests": data["requests"], "seconds": data["seconds"],
            "p50_ms": data["p50_us"] / 1e3, "p99_ms": data["p99_us"] / 1e3,
            "errors": data["errors"]}


def run_echo_client(opts, port, conns, seconds, ws_path=None):
    argv = ["taskset", "-c", str(opts.client_cpu), str(BIN / "echo_client"), "--port",
            str(port), "-c", str(conns), "-d", str(seconds), "--size", "64"]
    if ws_path:
        argv += ["--websocket", ws_path]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    try:
        data = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError(f"echo_client failed ({r.returncode}): {r.stderr.strip()}")
    return {"rps": data["rps"], "requests": data["round_trips"], "seconds": data["seconds"],
            "p50_ms": data["p50_us"] / 1e3, "p99_ms": data["p99_us"] / 1e3,
            "errors": data["errors"] + data["mismatches"]}


# --------------------------------------------------------------------------------------
# Workloads


class Workload:
    def __init__(self, name, title, kind, servers, reference, what, concurrency=None,
                 close=False, path="/", tls=False):
        self.name = name
        self.title = title
        self.kind = kind  # "throughput", "memory", "loop"
        self.servers = servers
        self.reference = reference
        self.what = what
        self.concurrency = concurrency or []
        self.close = close
        self.path = path  # what wrk asks for
        self.tls = tls  # wrk over https (HTTP/1.1: wrk offers no ALPN)


WORKLOADS = {
    "loop": Workload(
        "loop", "IOLoop callbacks and timers against raw libuv", "loop", [], None,
        "`build/bin/loop_bench` pinned to the server CPU: the same callback and timer "
        "workloads through tronada's IOLoop and written directly on libuv, 5 rounds "
        "interleaved in one process."),
    "echo": Workload(
        "echo", "Line echo round trips", "throughput", ["tronada-echo", "tornado-echo"],
        "tornado-echo",
        "`build/bin/echo_client` (bench/echo_client.cpp): N connections, each sending a "
        "64-byte line and waiting for it to come back before sending the next. "
        "Throughput is round trips per second.", concurrency=[64]),
    "idle": Workload(
        "idle", "Memory per idle echo connection", "memory",
        ["tronada-echo", "tornado-echo"], "tornado-echo",
        "N TCP connections to the echo server, each echoing one line and then staying "
        "open; server memory before and after (smaps_rollup of the server's process "
        "tree), divided by N. Kernel socket buffers are not counted."),
    "ws-echo": Workload(
        "ws-echo", "WebSocket echo round trips", "throughput", ["tronada-ws", "tornado-ws"],
        "tornado-ws",
        "`build/bin/echo_client --websocket /ws` (bench/echo_client.cpp): N WebSockets, "
        "each sending a 64-byte binary message and waiting for its echo before sending "
        "the next; no compression (not offered). Goal: 20x Tornado's round trips per "
        "second.", concurrency=[100]),
    "ws-idle": Workload(
        "ws-idle", "Memory per idle WebSocket", "memory", ["tronada-ws", "tornado-ws"],
        "tornado-ws",
        "N WebSockets to the echo server, each doing the "
        "handshake and one 64-byte round trip and then staying open; server memory "
        "before and after (smaps_rollup), divided by N. Kernel socket buffers are not "
        "counted."),
    "http-plaintext": Workload(
        "http-plaintext", "HTTP/1.1 hello world, keep-alive", "throughput",
        ["nginx", "tornado-http", "tronada-http"], "nginx",
        "`wrk -t1 -cN --latency` on `GET /` answered with `Hello, world`; connections "
        "kept alive.", concurrency=[64, 256]),
    "http-close": Workload(
        "http-close", "HTTP/1.1 hello world, `Connection: close`", "throughput",
        ["nginx", "tornado-http", "tronada-http"], "nginx",
        "`wrk -t1 -cN --latency -H 'Connection: close'`: a new TCP connection per "
        "request.", concurrency=[64], close=True),
    "http-idle": Workload(
        "http-idle", "Memory per idle keep-alive HTTP connection", "memory",
        ["nginx", "tornado-http", "tronada-http"], "nginx",
        "N connections, each sending one `GET /`, reading the response and staying "
        "open; server memory before and after (smaps_rollup of the server's process "
        "tree: nginx's master and worker), divided by N. Kernel socket buffers are not "
        "counted."),
    "client": Workload(
        "client", "HTTP client requests/s against a fixed server, vs wrk", "throughput",
        ["client-wrk", "client-tronada"], "client-wrk",
        "The same nginx (`return 200`) loaded by `wrk -t1 -cN` and by "
        "`build/bin/http_client_bench -c N` (bench/http_client_bench.cpp: N coroutines "
        "fetching with one AsyncHTTPClient over N kept-alive connections), each pinned to "
        "the client CPU. The ratio column is the client's requests/s over wrk's (goal "
        "≥ 0.7×); the CPU column is nginx's.", concurrency=[64]),
    "wsgi-hello": Workload(
        "wsgi-hello", "WSGI hello world, one worker", "throughput",
        ["uwsgi-wsgi", "gunicorn-sync-wsgi", "gunicorn-gthread-wsgi", "tornado-wsgi",
         "tronada-wsgi"], "uwsgi-wsgi",
        "`wrk -t1 -cN --latency` on `GET /` of bench/peers/wsgi_hello.py (a list with one "
        "bytes object and a Content-Length), served by `tronada wsgi` (1 thread), gunicorn "
        "(sync; gthread with 4 threads), uWSGI (`--http-socket --plugin python3 --listen "
        "1024`, 1 process) and Tornado's WSGIContainer; one worker process each, no "
        "access log.", concurrency=[64]),
    "flask-hello": Workload(
        "flask-hello", "Flask hello world, one worker", "throughput",
        ["uwsgi-flask", "gunicorn-sync-flask", "gunicorn-gthread-flask", "tornado-flask",
         "tronada-flask"], "uwsgi-flask",
        "As `wsgi-hello` with bench/peers/flask_hello.py (Debian's Flask) returning "
        "`Hello, world` from one route.", concurrency=[64]),
    "php-hello": Workload(
        "php-hello", "PHP hello world through php-fpm (2 children)", "throughput",
        ["nginx-php", "tronada-php"], "nginx-php",
        "`wrk -t1 -cN --latency` on `GET /` of bench/peers/php/index.php (`echo \"Hello, "
        "world\"`) through nginx (`fastcgi_pass` with `fastcgi_keep_conn on` and an "
        "upstream `keepalive 2`) and through `tronada fastcgi --max-conns 2`; each gateway "
        "with its own php-fpm pool of the same configuration (static, 2 children, Unix "
        "socket), started in the gateway's process group so both are pinned to the server "
        "CPU and their CPU time includes PHP's.", concurrency=[64]),
    "proxy-hello": Workload(
        "proxy-hello", "Reverse proxy to a fixed upstream, hello world", "throughput",
        ["nginx-proxy", "tronada-proxy"], "nginx-proxy",
        "`wrk -t1 -cN --latency` on `GET /` through nginx (`proxy_pass` to an upstream "
        "block with `keepalive 64`, HTTP/1.1, Host and X-Forwarded-For/-Proto/-Host set) "
        "and through `tronada proxy --to` (its defaults, which add the same fields and "
        "Via); the upstream is an nginx answering `Hello, world`, one per gateway, in the "
        "gateway's process group so both are pinned to the server CPU and their CPU time "
        "includes the upstream's.", concurrency=[64]),
    "http-db": Workload(
        "http-db", "HTTP handler doing one PostgreSQL query", "throughput",
        ["tornado-db", "tronada-db"], "tornado-db",
        "`wrk -t1 -cN --latency` on `GET /` of examples/08_async_db (every row of a "
        "one-row table as JSON through `pg::Pool`) and of bench/peers/tornado_pg.py (the "
        "same with Tornado 6 and asyncpg, Debian's async driver); pools of 10 connections "
        "to one PostgreSQL 15 on loopback, which runs unpinned and is not counted in the "
        "servers' CPU.", concurrency=[64]),
    "https": Workload(
        "https", "HTTPS (HTTP/1.1 over TLS), hello world, keep-alive", "throughput",
        ["nginx-https", "tronada-https"], "nginx-https",
        "`wrk -t1 -cN --latency https://...` (TLS 1.3, P-256 self-signed certificate, "
        "no ALPN so HTTP/1.1) on `GET /` answered with `Hello, world`; the handshakes "
        "happen during the warm-up.", concurrency=[64], tls=True),
    "framework": Workload(
        "framework", "Framework overhead: Application + RequestHandler against a bare "
        "HTTPServer delegate", "throughput", ["tronada-bare", "tronada-http"], "tronada-bare",
        "`wrk -t1 -cN --latency` on `GET /` answered with `Hello, world` by the tour's "
        "01_getting_started (Application, routing, a RequestHandler per request, default "
        "headers, ETag) and by an HTTPServer delegate answering directly "
        "(tests/support/http_test_server). Goal: overhead under 10% (ratio ≥ 0.9×).",
        concurrency=[64]),
    "json": Workload(
        "json", "JSON serialisation handler", "throughput",
        ["tornado-routes3", "tronada-routes3"], "tornado-routes3",
        "`wrk -t1 -cN --latency` on `GET /json`: a handler serialising "
        "`{\"message\": \"Hello, World!\"}` per request (nlohmann::json through "
        "write_json; Tornado's write(dict)). bench/framework_bench.cpp and "
        "bench/peers/tornado_framework.py.", concurrency=[64], path="/json"),
    "routes": Workload(
        "routes", "Route lookup: the last of 50 regex rules against a 3-rule table",
        "throughput",
        ["tronada-routes3", "tronada-routes50", "tornado-routes3", "tornado-routes50"],
        "tronada-routes3",
        "`wrk -t1 -cN --latency` on `GET /item/42`, matched by `/item/([0-9]+)` placed "
        "as the last of 50 rules (`/`, `/json`, then 47 shaped "
        "`/api/v1/resourceK/(?P<id>[0-9]+)/(?P<name>[a-z]+)`), against the same server without "
        "the 47 fillers: the difference in CPU "
        "per request is the cost of the lookup.", concurrency=[64], path="/item/42"),
    "h2c": Workload(
        "h2c", "HTTP/2 over clear text (prior knowledge), hello world", "throughput",
        ["h2o-h2c", "nginx-h2c", "tronada-h2c"], "h2o-h2c",
        "`h2load -t1 -cN -m10 -D<seconds>` on `GET /` answered with `Hello, world` "
        "(h2o: its static file handler; nginx: `return 200`; tronada: an HTTPServer "
        "delegate, tests/support/http_test_server). One worker/thread each.",
        concurrency=[32]),
    "h2-tls": Workload(
        "h2-tls", "HTTP/2 over TLS (ALPN h2), hello world", "throughput",
        ["h2o-h2-tls", "nginx-h2-tls", "tronada-h2-tls"], "h2o-h2-tls",
        "`h2load -t1 -cN -m10 -D<seconds>` over TLS with a P-256 self-signed "
        "certificate; the handshakes happen during the warm-up. Same responders as "
        "`h2c`.", concurrency=[32]),
}


def start_servers(opts, names, workdir, notes):
    """Starts each available server; returns {name: Server}. Missing ones go to notes."""
    servers = {}
    for name in names:
        spec = SERVERS[name]
        why = spec.missing()
        if why:
            notes.append(f"{spec.label} skipped: {why}.")
            log(f"  skip {name}: {why}")
            continue
        for attempt in (1, 2):  # a second port if another process took the free one
            server = Server(spec, free_port(), workdir, opts.server_cpu)
            try:
                server.wait_ready()
            except RuntimeError as e:
                server.stop()
                log(f"  {name} failed to start (attempt {attempt}): {e}")
                if attempt == 2:
                    notes.append(f"{spec.label} skipped: failed to start "
                                 f"({str(e).splitlines()[0]}).")
                continue
            servers[name] = server
            break
    return servers


def rotated(items, r):
    items = list(items)
    if not items:
        return items
    r %= len(items)
    return items[r:] + items[:r]


def measure_throughput(opts, wl, workdir, notes):
    if wl.name in ("echo", "ws-echo"):
        if not os.access(BIN / "echo_client", os.X_OK):
            notes.append(f"Skipped: `{os.path.relpath(BIN / 'echo_client', ROOT)}` missing "
                         "(run ./scripts/build).")
            return {}
        ws_path = "/ws" if wl.name == "ws-echo" else None
        runner = lambda port, conns, secs: run_echo_client(opts, port, conns, secs, ws_path)
    elif wl.name in ("h2c", "h2-tls"):
        if not shutil.which("h2load"):
            notes.append("Skipped: h2load missing (apt-get install nghttp2-client).")
            return {}
        tls = wl.name == "h2-tls"
        runner = lambda port, conns, secs: run_h2load(opts, port, conns, secs, tls)
    elif wl.name == "client":
        if not shutil.which("wrk") or not os.access(BIN / "http_client_bench", os.X_OK):
            notes.append("Skipped: wrk or build/bin/http_client_bench missing.")
            return {}
        runner = None  # chosen per server below
    else:
        if not shutil.which("wrk"):
            notes.append("Skipped: wrk missing (apt-get install wrk).")
            return {}
        runner = lambda port, conns, secs: run_wrk(opts, port, conns, secs, wl.close, wl.path,
                                                   wl.tls)
    concurrency = opts.connections or wl.concurrency
    servers = start_servers(opts, opts.servers or wl.servers, workdir, notes)
    results = {}  # (server, conns) -> [run dicts]
    try:
        for r in range(opts.rounds):
            for conns in concurrency:
                for name in rotated(servers, r):
                    server = servers[name]
                    if wl.name == "client":
                        runner = (lambda port, c, secs: run_http_client_bench(opts, port, c, secs)) \
                            if name == "client-tronada" else \
                            (lambda port, c, secs: run_wrk(opts, port, c, secs, False))
                    try:
                        runner(server.port, conns, opts.warmup)
                        pids = server.pids()
                        t0 = cpu_ticks(pids)
                        res = runner(server.port, conns, opts.duration)
                        t1 = cpu_ticks(pids)
                        if not server.alive():
                            raise RuntimeError(f"server exited ({server.proc.returncode}):\n"
                                               f"{server.log_tail()}")
                    except (RuntimeError, subprocess.TimeoutExpired) as e:
                        # One broken server must not cost the others their results.
                        log(f"  {name} c{conns} failed: {e}")
                        notes.append(f"{server.spec.label} dropped in round {r + 1} at c{conns}: "
                                     f"{str(e).splitlines()[0]}")
                        server.stop()
                        del servers[name]
                        continue
                    cpu_s = (t1 - t0) / CLK_TCK
                    res["cpu_us"] = cpu_s * 1e6 / res["requests"] if res["requests"] else None
                    res["cpu_util"] = cpu_s / res["seconds"] if res["seconds"] else None
                    results.setdefault((name, conns), []).append(res)
                    log(f"  round {r + 1} {name:13} c{conns:<4} {res['rps']:>10.0f}/s  "
                        f"p50 {fmt_ms(res['p50_ms'])} p99 {fmt_ms(res['p99_ms'])}  "
                        f"cpu {fmt_num(res['cpu_us'], 1)} µs/req "
                        f"({fmt_num(100 * (res['cpu_util'] or 0), 0)}%)  errors {res['errors']}")
    finally:
        for server in servers.values():
            server.stop()
    return results


def open_idle_connections(port, n, send, receive, batch=250):
    """Opens n connections, each doing one round trip; returns the open sockets.
    In batches: connect all, send on all, then read every answer, so the server works
    on a whole batch at once."""
    socks = []
    try:
        while len(socks) < n:
            group = []
            for _ in range(min(batch, n - len(socks))):
                s = socket.create_connection((HOST, port), timeout=30)
                group.append(s)
                socks.append(s)
            for s in group:
                send(s)
            for s in group:
                receive(s)
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


def measure_memory(opts, wl, workdir, notes):
    n = opts.idle_connections
    names = opts.servers or wl.servers
    results = {}
    for r in range(opts.rounds):
        for name in rotated(names, r):
            if any(note.startswith(SERVERS[name].label + " skipped") for note in notes):
                continue
            servers = start_servers(opts, [name], workdir, notes)
            if name not in servers:
                continue
            server = servers[name]
            socks = []
            try:
                proto = server.spec.proto
                echo = proto == "echo"
                roundtrip = echo_roundtrip if echo else http_roundtrip
                send, receive = (echo_send, echo_receive) if echo else (http_send, http_receive)
                if proto == "ws":
                    roundtrip, send, receive = ws_roundtrip, ws_open_send, ws_open_receive
                time.sleep(0.3)
                before = memory(server.pids())
                t0 = time.monotonic()
                socks = open_idle_connections(server.port, n, send, receive)
                opened = time.monotonic() - t0
                time.sleep(1.0)
                after = memory(server.pids())
                if not server.alive():
                    raise RuntimeError(f"{name} died:\n{server.log_tail()}")
                # Check that the connections are still open and usable: one more round
                # trip on the first and the last.
                for s in (socks[0], socks[-1]):
                    roundtrip(s)
                res = {k: (after[k] - before[k]) / n for k in after}
                res.update({"before_rss": before["rss"], "after_rss": after["rss"],
                            "open_s": opened})
                results.setdefault((name, n), []).append(res)
                log(f"  round {r + 1} {name:13} {n} conns in {opened:.1f} s: "
                    f"private {res['private']:.0f} B/conn, pss {res['pss']:.0f}, "
                    f"rss {res['rss']:.0f} (rss {before['rss'] / 2**20:.1f} -> "
                    f"{after['rss'] / 2**20:.1f} MiB)")
            except (OSError, ValueError, RuntimeError) as e:
                log(f"  {name} failed: {e}")
                notes.append(f"{server.spec.label} failed in round {r + 1}: "
                             f"{str(e).splitlines()[0] if str(e) else type(e).__name__}")
            finally:
                for s in socks:
                    s.close()
                server.stop()
    return results


def measure_loop(opts, notes):
    exe = BIN / "loop_bench"
    if not os.access(exe, os.X_OK):
        notes.append(f"Skipped: `{os.path.relpath(exe, ROOT)}` missing (run ./scripts/build).")
        return None
    argv = ["taskset", "-c", str(opts.server_cpu), str(exe), "--rounds", "5"]
    if opts.quick:
        argv += ["--scale", "0.3"]
    notes.append(f"Command: `{' '.join(argv[3:]).replace(str(ROOT) + '/', '')}` under "
                 f"`taskset -c {opts.server_cpu}`.")
    log("  " + " ".join(argv))
    r = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    sys.stderr.write(r.stderr)
    if r.returncode != 0:
        raise RuntimeError(f"loop_bench failed ({r.returncode})")
    return r.stdout.strip()


# --------------------------------------------------------------------------------------
# Reporting


def fmt_num(x, digits=0):
    if x is None:
        return "–"
    return f"{x:,.{digits}f}"


def fmt_ms(x):
    if x is None:
        return "–"
    return f"{x * 1000:.0f} µs" if x < 1 else f"{x:.2f} ms"


def fmt_bytes(x):
    if abs(x) >= 10 * 1024:
        return f"{x / 1024:,.1f} KiB"
    return f"{x:,.0f} B"


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def throughput_table(wl, results):
    ref = {}
    for (name, conns), runs in results.items():
        if name == wl.reference:
            ref[conns] = med([x["rps"] for x in runs])
    ref_label = SERVERS[wl.reference].label if wl.reference else ""
    unit = "round trips/s" if wl.name == "echo" else "req/s"
    lines = [
        f"| server | conns | {unit}, median (min–max) | vs {ref_label} | p50 | p99 | "
        f"server CPU per request | server CPU use | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    order = {name: i for i, name in enumerate(wl.servers)}
    for (name, conns), runs in sorted(results.items(), key=lambda kv: (kv[0][1], order.get(kv[0][0], 99))):
        rps = [x["rps"] for x in runs]
        m = med(rps)
        ratio = f"{m / ref[conns]:.2f}×" if ref.get(conns) else "–"
        lines.append(
            f"| {SERVERS[name].label} | {conns} | **{fmt_num(m)}** ({fmt_num(min(rps))}–"
            f"{fmt_num(max(rps))}) | {ratio} | {fmt_ms(med([x['p50_ms'] for x in runs]))} | "
            f"{fmt_ms(med([x['p99_ms'] for x in runs]))} | "
            f"{fmt_num(med([x['cpu_us'] for x in runs]), 1)} µs | "
            f"{fmt_num(100 * (med([x['cpu_util'] for x in runs]) or 0))}% | "
            f"{sum(x['errors'] for x in runs)} |")
    return "\n".join(lines)


def memory_table(wl, results):
    ref = None
    for (name, n), runs in results.items():
        if name == wl.reference:
            ref = med([x["private"] for x in runs])
    ref_label = SERVERS[wl.reference].label if wl.reference else ""
    lines = [
        f"| server | connections | private bytes per connection, median (min–max) | "
        f"vs {ref_label} | Pss per connection | RSS per connection | RSS before → after |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    order = {name: i for i, name in enumerate(wl.servers)}
    for (name, n), runs in sorted(results.items(), key=lambda kv: order.get(kv[0][0], 99)):
        priv = [x["private"] for x in runs]
        m = med(priv)
        ratio = f"{m / ref:.2f}×" if ref else "–"
        lines.append(
            f"| {SERVERS[name].label} | {n:,} | **{fmt_bytes(m)}** ({fmt_bytes(min(priv))}–"
            f"{fmt_bytes(max(priv))}) | {ratio} | {fmt_bytes(med([x['pss'] for x in runs]))} | "
            f"{fmt_bytes(med([x['rss'] for x in runs]))} | "
            f"{med([x['before_rss'] for x in runs]) / 2**20:.1f} → "
            f"{med([x['after_rss'] for x in runs]) / 2**20:.1f} MiB |")
    return "\n".join(lines)


def plot(wl, results, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "plot skipped: matplotlib missing (python3-matplotlib)"
    names = [n for n in wl.servers if any(k[0] == n for k in results)]
    names += sorted({k[0] for k in results} - set(names))
    keys = sorted({k[1] for k in results})
    width = 0.8 / max(1, len(names))
    if wl.kind == "throughput":
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        metrics = [("rps", "round trips/s" if wl.name == "echo" else "requests/s"),
                   ("cpu_us", "server CPU µs per request")]
    else:
        fig, axes = plt.subplots(1, 1, figsize=(6, 4))
        axes = [axes]
        metrics = [("private", "private bytes per idle connection")]
    for ax, (metric, ylabel) in zip(axes, metrics):
        for i, name in enumerate(names):
            xs, ys, lo, hi = [], [], [], []
            for j, key in enumerate(keys):
                runs = results.get((name, key))
                if not runs:
                    continue
                vals = [x[metric] for x in runs if x[metric] is not None]
                if not vals:
                    continue
                m = statistics.median(vals)
                xs.append(j + (i - (len(names) - 1) / 2) * width)
                ys.append(m)
                lo.append(m - min(vals))
                hi.append(max(vals) - m)
            bars = ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=SERVERS[name].label)
            ax.bar_label(bars, labels=[f"{y:,.0f}" if y >= 10 else f"{y:.1f}" for y in ys],
                         fontsize=7, padding=2)
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels([f"c{k}" if wl.kind == "throughput" else f"{k:,} conns" for k in keys])
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", alpha=0.3)
    if wl.name == "http-idle":
        axes[0].axhline(1024, color="tab:red", linestyle="--", linewidth=1,
                        label="goal ≤ 1 KiB (DESIGN.md)")
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle(f"{wl.name}: {wl.title} (median, bars min–max)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None


def plot_loop(table, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "plot skipped: matplotlib missing (python3-matplotlib)"
    names, ratios = [], []
    for line in table.splitlines():
        m = re.match(r"\| `(\w+)`.*\*\*([\d.]+)\*\*", line)
        if m:
            names.append(m.group(1))
            ratios.append(float(m.group(2)))
    if not names:
        return "plot skipped: no ratios in loop_bench output"
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bars = ax.bar(names, ratios, color="tab:blue")
    ax.bar_label(bars, labels=[f"{r:.2f}" for r in ratios], fontsize=8)
    ax.axhline(0.8, color="tab:red", linestyle="--", label="goal 0.8")
    ax.axhline(1.0, color="gray", linewidth=0.8)
    ax.set_ylabel("tronada / raw libuv (ops/s)")
    ax.set_title("loop: IOLoop against raw libuv (median of 5 rounds)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None


def machine_note(opts):
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = open("/proc/loadavg").read().split()[:3]
    return (f"{os.cpu_count()} CPUs ({model}), Linux {platform.release()}; server on CPU "
            f"{opts.server_cpu}, load generator on CPU {opts.client_cpu}; load average "
            f"at start {' '.join(load)}")


def git_rev():
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"],
                               capture_output=True, text=True).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except OSError:
        return "unknown"


def section(opts, wl, body, notes, plot_name, started):
    mode = (f"quick mode ({opts.warmup:g} s warm-up, {opts.duration:g} s measured)"
            if opts.quick else f"{opts.warmup:g} s warm-up, {opts.duration:g} s measured")
    versions = sorted({v for v in (SERVERS[n].version() for n in (opts.servers or wl.servers)) if v})
    lines = [f"### `{wl.name}`: {wl.title}", ""]
    meta = [f"Measured {started:%Y-%m-%d %H:%M} UTC on tronada {git_rev()}"]
    rounds = f"{opts.rounds} round{'s' if opts.rounds != 1 else ''}"
    if wl.kind == "throughput":
        meta.append(f"{mode}, {rounds} interleaved across servers")
    elif wl.kind == "memory":
        meta.append(f"{opts.idle_connections:,} connections, {rounds} interleaved across "
                    f"servers, a fresh server process each round")
    meta.append(machine_note(opts))
    if versions:
        meta.append("peers: " + ", ".join(versions))
    lines.append("; ".join(meta) + ".")
    lines.append("")
    if opts.note:
        lines += [f"**Note: {opts.note}**", ""]
    lines += [wl.what, ""]
    if body:
        lines += [body, ""]
    if plot_name:
        lines += [f"![{wl.name}](img/{plot_name})", ""]
    for note in notes:
        lines.append(f"- {note}")
    if notes:
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


DOC_HEADER = """# Benchmarks

Produced by `bench/run.py` (see `bench/README.md`); each section below is rewritten by
the workload of the same name and the others are left alone. The method follows
DESIGN.md's "Performance": public tools (wrk, plus `bench/echo_client` for line echo),
the server pinned to one core and the load generator to the other, runs interleaved
across servers, medians reported with their min–max, and the server's CPU time per
request from /proc so that servers faster than one wrk core can still be told apart.

Re-run a section with `/usr/bin/python3 bench/run.py WORKLOAD` (full length) or
`--quick` (short runs).

"""


def write_doc(name, text):
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{begin}\n{text}{end}\n"
    doc = DOC.read_text() if DOC.exists() else DOC_HEADER
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", re.S)
    if pattern.search(doc):
        doc = pattern.sub(lambda _: block, doc, count=1)
    else:
        if not doc.endswith("\n\n"):
            doc = doc.rstrip("\n") + "\n\n"
        doc += block
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(doc)


# --------------------------------------------------------------------------------------


def raise_nofile(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(needed, soft)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def on_signal(signum, frame):
    raise SystemExit(f"bench: signal {signum}")


def run_workload(opts, wl, workdir):
    started = datetime.datetime.now(datetime.timezone.utc)
    notes = []
    log(f"== {wl.name}: {wl.title}")
    plot_name = f"bench-{wl.name}.png"
    if wl.kind == "loop":
        table = measure_loop(opts, notes)
        body = table
        if table and not opts.no_write:
            err = plot_loop(table, IMG / plot_name)
        else:
            err = "no results"
    else:
        if wl.kind == "throughput":
            results = measure_throughput(opts, wl, workdir, notes)
            body = throughput_table(wl, results) if results else ""
        else:
            results = measure_memory(opts, wl, workdir, notes)
            body = memory_table(wl, results) if results else ""
        err = (plot(wl, results, IMG / plot_name) if results and not opts.no_write
               else "no results")
    if err:
        if err != "no results":
            notes.append(err)
        plot_name = None
    text = section(opts, wl, body, notes, plot_name, started)
    print(f"<!-- bench:{wl.name} -->\n{text}<!-- /bench:{wl.name} -->\n", flush=True)
    if not opts.no_write:
        write_doc(wl.name, text)
        log(f"  wrote {DOC.relative_to(ROOT)}" + (f" and docs/img/{plot_name}" if plot_name else ""))


def main():
    parser = argparse.ArgumentParser(
        description="Run tronada's benchmarks against their peers; see bench/README.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="workloads: " + ", ".join(WORKLOADS) + ", or all")
    parser.add_argument("workloads", nargs="*", help="workload names (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="short runs: 1 s warm-up and 3 s measured unless given, "
                             "loop_bench at 0.3 scale")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, help="warm-up seconds (default 2, quick 1)")
    parser.add_argument("--duration", type=float, help="measured seconds (default 10, quick 3)")
    parser.add_argument("--connections", type=lambda s: [int(x) for x in s.split(",")],
                        help="override the workload's connection counts, e.g. 64,256")
    parser.add_argument("--idle-connections", type=int,
                        help="connections for idle and http-idle (default 10000)")
    parser.add_argument("--servers", type=lambda s: s.split(","),
                        help="only these servers: " + ", ".join(SERVERS))
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--note", help="a note printed in bold in each section written")
    parser.add_argument("--no-write", action="store_true",
                        help="print the sections only; leave docs/ alone")
    parser.add_argument("--list", action="store_true", help="list workloads and servers")
    opts = parser.parse_args()

    if opts.list:
        for wl in WORKLOADS.values():
            print(f"{wl.name:15} {wl.title}  [{', '.join(wl.servers) or 'loop_bench'}]")
        print("\nservers:")
        for spec in SERVERS.values():
            why = spec.missing()
            print(f"  {spec.name:14} {spec.label}" + (f"  (missing: {why})" if why else ""))
        return 0

    names = opts.workloads or ["all"]
    if "all" in names:
        names = list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s): {', '.join(unknown)}; choose from "
                     f"{', '.join(WORKLOADS)} or all")
    if opts.servers:
        bad = [s for s in opts.servers if s not in SERVERS]
        if bad:
            parser.error(f"unknown server(s): {', '.join(bad)}; choose from {', '.join(SERVERS)}")
    opts.warmup = opts.warmup if opts.warmup is not None else (1.0 if opts.quick else 2.0)
    opts.duration = opts.duration if opts.duration is not None else (3.0 if opts.quick else 10.0)
    if opts.idle_connections is None:
        opts.idle_connections = 10000
    if opts.rounds < 1:
        parser.error("--rounds must be at least 1")
    ncpu = os.cpu_count() or 1
    if max(opts.server_cpu, opts.client_cpu) >= ncpu:
        parser.error(f"this machine has {ncpu} CPU(s); pick --server-cpu/--client-cpu below that")
    if not shutil.which("taskset"):
        parser.error("taskset missing (util-linux)")

    # Both the harness (which opens the idle connections) and the servers it starts
    # (which inherit the limit) need an fd per connection.
    nofile = raise_nofile(opts.idle_connections + 1000)
    if nofile < opts.idle_connections + 100:
        log(f"warning: RLIMIT_NOFILE is {nofile}; lowering --idle-connections")
        opts.idle_connections = max(100, nofile - 200)
    # The harness itself is load: keep it on the client CPU.
    try:
        os.sched_setaffinity(0, {opts.client_cpu})
    except OSError:
        pass
    # Ctrl-C raises KeyboardInterrupt even when started with SIGINT ignored (`&` in a
    # script); the finally below then stops every server.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    workdir = tempfile.mkdtemp(prefix="tronada-bench-")
    try:
        for name in names:
            run_workload(opts, WORKLOADS[name], workdir)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        Server.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
