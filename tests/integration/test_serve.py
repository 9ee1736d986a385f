"""`tronada serve` and `tronada check` on config files, as an operator runs them."""
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import BIN, free_port, wait_for_port

TRONADA = str(BIN / "tronada")

CLF = re.compile(
    r'^(?P<ip>\S+) - - \[(?P<time>[^\]]+)\] "(?P<method>\S+) (?P<uri>\S+) (?P<proto>[^"]+)" '
    r'(?P<status>\d{3}) (?P<bytes>\d+|-) "(?P<referer>[^"]*)" "(?P<agent>[^"]*)"$')


def write_config(tmp_path, text):
    path = tmp_path / "tronada.toml"
    path.write_text(text)
    return path


@pytest.fixture
def site(tmp_path):
    public = tmp_path / "public"
    public.mkdir()
    (public / "index.html").write_text("<h1>welcome</h1>\n")
    (public / "style.css").write_text("body {}\n")
    return tmp_path


class Served:
    def __init__(self, config, *args):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [TRONADA, "serve", "-c", str(config), "-b", f"127.0.0.1:{self.port}", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_for_port(self.port, self.proc)

    def get(self, path, headers=None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers=headers or {})
        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(req, timeout=5) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=10)
        return self.proc.returncode, out.decode(), err.decode()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.fixture
def serve():
    servers = []

    def start(config, *args):
        s = Served(config, *args)
        servers.append(s)
        return s

    yield start
    for s in servers:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()


def test_check_accepts_and_prints_effective_config(site):
    config = write_config(site, '[[route]]\npath = "/"\nstatic.root = "public"\n')
    r = subprocess.run([TRONADA, "check", "-c", str(config)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "is ok" in r.stderr
    assert f'root = "{site / "public"}"' in r.stdout  # relative to the file's folder
    assert 'bind = ["127.0.0.1:8888"]' in r.stdout


def test_check_names_the_line_of_a_typo(site):
    config = write_config(site, '[server]\nworkers = 1\nidle_timeuot = "5s"\n')
    r = subprocess.run([TRONADA, "check", "-c", str(config)], capture_output=True, text=True)
    assert r.returncode == 1
    assert f"{config}:3:1: unknown key 'idle_timeuot' in [server]" in r.stderr


def test_check_refuses_a_missing_static_root(site):
    config = write_config(site, '[[route]]\npath = "/"\nstatic.root = "nowhere"\n')
    r = subprocess.run([TRONADA, "check", "-c", str(config)], capture_output=True, text=True)
    assert r.returncode == 1
    assert f"{config}:1:1:" in r.stderr and "nowhere" in r.stderr


def test_serve_refuses_bad_config_before_binding(site):
    port = free_port()
    config = write_config(site, '[server]\nworkers = "x"\n')
    r = subprocess.run([TRONADA, "serve", "-c", str(config), "-b", f"127.0.0.1:{port}"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert "workers must be an integer" in r.stderr


def test_serve_routes_in_order_with_access_log(site, serve):
    log = site / "access.log"
    config = write_config(site, f'''
[server]
access_log = "access.log"
access_log_format = "combined"

[[route]]
path = "/old"
redirect = {{ to = "https://new.test{{uri}}", status = 301 }}

[[route]]
path = "/static/"
static.root = "public"

[[route]]
host = "files.test"
path = "/"
static.root = "public"
''')
    s = serve(config)
    status, headers, body = s.get("/static/index.html")
    assert (status, body) == (200, b"<h1>welcome</h1>\n")
    status, headers, _ = s.get("/old/x?y=1")
    assert status == 301 and headers["Location"] == "https://new.test/old/x?y=1"
    status, _, _ = s.get("/style.css")  # no route for other hosts
    assert status == 404
    status, _, body = s.get("/style.css", {"Host": "files.test"})
    assert (status, body) == (200, b"body {}\n")
    s.get("/static/index.html", {"User-Agent": "probe/1.0", "Referer": "http://r/"})
    code, _, _ = s.stop()
    assert code == 0
    lines = log.read_text().splitlines()
    assert len(lines) == 5
    parsed = [CLF.match(line) for line in lines]
    assert all(parsed), lines
    last = parsed[-1]
    assert last["method"] == "GET" and last["uri"] == "/static/index.html"
    assert last["status"] == "200"
    assert last["agent"] == "probe/1.0" and last["referer"] == "http://r/"
    assert last["bytes"] == str(len(b"<h1>welcome</h1>\n"))  # static files count their bytes
    assert [p["status"] for p in parsed] == ["200", "301", "404", "200", "200"]


def test_json_access_log_and_reopen_on_sigusr1(site, serve):
    log = site / "access.log"
    config = write_config(site, '''
[server]
access_log = "access.log"
access_log_format = "json"
[[route]]
path = "/"
static.root = "public"
''')
    s = serve(config)
    assert s.get("/")[0] == 200
    time.sleep(1.3)  # lines reach the file within a second
    entry = json.loads(log.read_text().splitlines()[0])
    assert entry["status"] == 200 and entry["uri"] == "/" and entry["method"] == "GET"
    os.rename(log, site / "access.log.1")  # what logrotate does
    s.proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 5
    while not log.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert s.get("/style.css")[0] == 200
    s.stop()
    assert len((site / "access.log.1").read_text().splitlines()) == 1
    assert json.loads(log.read_text().splitlines()[0])["uri"] == "/style.css"


def test_flags_override_the_file(site, serve):
    config = write_config(site, '''
[server]
bind = ["127.0.0.1:1"]
access_log = "access.log"
[[route]]
path = "/"
static.root = "public"
''')
    s = serve(config, "--access-log", "off")  # and -b replaces bind
    assert s.get("/")[0] == 200
    s.stop()
    assert not (site / "access.log").exists()


def test_workers_share_the_port(site, serve):
    config = write_config(site, '[server]\nworkers = 2\naccess_log = "off"\n'
                                '[[route]]\npath = "/"\nstatic.root = "public"\n')
    s = serve(config)
    for _ in range(20):
        assert s.get("/")[0] == 200
    code, _, _ = s.stop()
    assert code == 0


APPS = os.path.join(os.path.dirname(__file__), "apps")


@pytest.mark.parametrize("workers", [1, 2])
def test_static_and_wsgi_routes_in_one_server(site, serve, workers):
    config = write_config(site, f'''
[server]
workers = {workers}
access_log = "off"
[[route]]
path = "/static/"
static.root = "public"
[[route]]
path = "/"
wsgi = {{ app = "hello:application", pythonpath = ["{APPS}"], threads = 2 }}
''')
    s = serve(config)
    assert s.get("/static/style.css")[2] == b"body {}\n"
    status, _, body = s.get("/anything")
    assert (status, body) == (200, b"Hello, World!")
    code, _, err = s.stop()
    assert code == 0, err


def test_wsgi_import_failure_stops_serve(site):
    config = write_config(site, f'''
[[route]]
path = "/"
wsgi = {{ app = "no_such_module_here:application", pythonpath = ["{APPS}"] }}
''')
    r = subprocess.run([TRONADA, "serve", "-c", str(config), "-b", f"127.0.0.1:{free_port()}"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1
    assert "no_such_module_here" in r.stderr and f"{config}:2:1" in r.stderr


def test_tls_from_the_config_serves_h2_and_http1(site, serve):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-keyout", str(site / "key.pem"),
                    "-out", str(site / "cert.pem")], check=True, capture_output=True)
    config = write_config(site, '''
[server]
access_log = "off"
[server.tls]
cert = "cert.pem"
key = "key.pem"
[[route]]
path = "/"
static.root = "public"
''')
    s = serve(config)
    for flag, version in (("--http2", "2"), ("--http1.1", "1.1")):
        r = subprocess.run(["curl", "-sk", flag, "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                            f"https://127.0.0.1:{s.port}/"], capture_output=True, text=True,
                           timeout=10)
        assert r.stdout == f"{version} 200", (flag, r.stdout, r.stderr)
    code, _, err = s.stop()
    assert code == 0, err


def refused_before_binding(config):
    """Runs serve on a bad config; it must exit 1 without ever listening."""
    port = free_port()
    r = subprocess.run([TRONADA, "serve", "-c", str(config), "-b", f"127.0.0.1:{port}"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1, r.stderr
    assert "listening on" not in r.stderr, r.stderr
    return r.stderr


@pytest.mark.parametrize("workers", [1, 2])
def test_tls_with_a_missing_key_fails_before_binding(site, workers):
    config = write_config(site, f'[server]\nworkers = {workers}\n'
                                '[server.tls]\ncert = "nope.pem"\nkey = "nope.key"\n'
                                '[[route]]\npath = "/"\nstatic.root = "public"\n')
    assert "nope.pem" in refused_before_binding(config)


@pytest.mark.parametrize("workers", [1, 2])
def test_unwritable_access_log_fails_before_binding(site, workers):
    config = write_config(site, f'[server]\nworkers = {workers}\n'
                                'access_log = "no/such/dir/access.log"\n'
                                '[[route]]\npath = "/"\nstatic.root = "public"\n')
    err = refused_before_binding(config)
    assert "cannot open access log" in err and "No such file or directory" in err
