"""`tronada new` and `tronada run`, as a new user types them: every template scaffolds
and serves (the native one builds against this build tree, compiling only its own two
files), `run --reload` restarts after an edit without refusing connections and keeps
the old process serving after a broken one."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import BIN, ROOT, free_port, wait_for_port

TRONADA = str(BIN / "tronada")
HAVE_PHP = any(Path("/usr/sbin").glob("php-fpm*"))
# The native app's first build compiles two files against the library; under the
# sanitizer build that takes a while on a busy 2-core machine.
BUILD_TIMEOUT = 600


def tronada(*args, cwd=None, timeout=60):
    return subprocess.run([TRONADA, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def get(port, path, timeout=10):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Run:
    """`tronada run DIR -b 127.0.0.1:PORT [--reload]`, its output in a file."""

    def __init__(self, app_dir, *args, timeout=30):
        self.port = free_port()
        self.log = app_dir.parent / f"run-{self.port}.log"
        self.logf = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [TRONADA, "run", str(app_dir), "-b", f"127.0.0.1:{self.port}", *args],
            stdout=self.logf, stderr=subprocess.STDOUT, start_new_session=True)
        # run binds before it builds: wait for the app to answer, not for the port.
        self.wait_until(lambda: self.answers(), timeout)

    def answers(self):
        try:
            get(self.port, "/", timeout=2)
            return True
        except OSError:
            return False

    def output(self):
        self.logf.flush()
        return self.log.read_text(errors="replace")

    def wait_until(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"tronada run exited {self.proc.returncode}:\n{self.output()}")
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out; tronada run said:\n{self.output()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.logf.close()
        return self.proc.returncode


@pytest.fixture
def runs():
    started = []

    def start(*args, **kwargs):
        r = Run(*args, **kwargs)
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()


# --- tronada new ---------------------------------------------------------------------

def test_new_native_creates_the_project_and_prints_next_steps(tmp_path):
    r = tronada("new", "myapp", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    app = tmp_path / "myapp"
    for f in ["CMakeLists.txt", "src/main.cpp", "src/app.cpp", "src/app.h", "tests/app_test.cpp",
              "static/app.js", "tronada.toml", "README.md", ".gitignore", "myapp.service"]:
        assert (app / f).is_file(), f
    assert "{{" not in (app / "src/app.cpp").read_text().replace('{{"', "")
    assert "namespace myapp" in (app / "src/app.h").read_text()
    assert "cd myapp" in r.stdout and "tronada run" in r.stdout
    # [app] and [server] of a native app's config check like any other.
    check = tronada("check", "-c", str(app / "tronada.toml"))
    assert check.returncode == 0, check.stderr
    assert 'command = ["build/myapp"' in check.stdout


def test_new_refuses_to_overwrite_without_force(tmp_path):
    assert tronada("new", "site", "--template", "wsgi", cwd=tmp_path).returncode == 0
    (tmp_path / "site" / "app.py").write_text("# mine\n")
    r = tronada("new", "site", "--template", "wsgi", cwd=tmp_path)
    assert r.returncode == 1
    assert "already exists" in r.stderr and "--force" in r.stderr
    assert (tmp_path / "site" / "app.py").read_text() == "# mine\n"
    r = tronada("new", "site", "--template", "wsgi", "--force", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "def application" in (tmp_path / "site" / "app.py").read_text()


@pytest.mark.parametrize("args", [["my-app"], ["1app"], ["ok", "--template", "rails"],
                                  ["ok", "--template", "wsgi", "--app", "nocolon"],
                                  ["ok", "--template", "proxy", "--to", "ftp://x"],
                                  ["ok", "--app", "a:b"]])
def test_new_refuses_bad_arguments(tmp_path, args):
    r = tronada("new", *args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert not list(tmp_path.iterdir())


def test_new_dir_option(tmp_path):
    r = tronada("new", "thing", "--template", "proxy", "--dir", str(tmp_path / "x" / "y"),
                "--to", "http://127.0.0.1:9")
    assert r.returncode == 0, r.stderr
    assert 'to = ["http://127.0.0.1:9"]' in (tmp_path / "x/y/tronada.toml").read_text()


# --- config templates: scaffold, check, serve ------------------------------------------

def test_wsgi_template_serves_and_reloads_after_an_edit(tmp_path, runs):
    assert tronada("new", "hello", "--template", "wsgi", cwd=tmp_path).returncode == 0
    app = tmp_path / "hello"
    assert tronada("check", "-q", "-c", str(app / "tronada.toml")).returncode == 0
    run = runs(app, "--reload")
    assert get(run.port, "/api/hello") == (200, '{"message": "Hello from hello!"}')
    assert get(run.port, "/static/style.css")[0] == 200

    source = (app / "app.py").read_text()
    (app / "app.py").write_text(source.replace("Hello from", "Howdy from"))
    run.wait_until(lambda: "Howdy" in get(run.port, "/api/hello")[1], 30)

    # A config that does not check leaves the running server alone.
    (app / "tronada.toml").write_text((app / "tronada.toml").read_text() + "\n[server2]\n")
    run.wait_until(lambda: "does not check" in run.output(), 30)
    assert "unknown key 'server2'" in run.output()
    assert "Howdy" in get(run.port, "/api/hello")[1]
    assert run.stop() == 0


@pytest.mark.skipif(not HAVE_PHP, reason="php-fpm is not installed")
def test_fastcgi_template_serves_php(tmp_path, runs):
    fpm_dir = tmp_path / "fpm"
    fpm = subprocess.Popen([str(ROOT / "demo" / "php-fpm.sh"), str(fpm_dir)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not (fpm_dir / "php-fpm.sock").exists():
            assert fpm.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        r = tronada("new", "site", "--template", "fastcgi", "--to",
                    f"unix:{fpm_dir}/php-fpm.sock", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        run = runs(tmp_path / "site")
        status, body = get(run.port, "/some/pretty/url")
        assert status == 200 and "<h1>site</h1>" in body
        assert "you asked for\n/some/pretty/url" in body
    finally:
        fpm.terminate()
        fpm.wait()


def test_proxy_template_forwards_to_the_upstream(tmp_path, runs):
    upstream_port = free_port()
    upstream = subprocess.Popen(
        ["/usr/bin/python3", "-m", "http.server", str(upstream_port), "--bind", "127.0.0.1",
         "--directory", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(upstream_port, upstream)
        (tmp_path / "upstream.txt").write_text("from the upstream\n")
        r = tronada("new", "front", "--template", "proxy", "--to",
                    f"http://127.0.0.1:{upstream_port}", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        check = tronada("check", "-q", "-c", str(tmp_path / "front" / "tronada.toml"))
        if "not built into this tronada yet" in check.stderr:
            pytest.xfail("the proxy backend has not landed in `tronada serve` yet")
        assert check.returncode == 0, check.stderr
        run = runs(tmp_path / "front")
        assert get(run.port, "/upstream.txt") == (200, "from the upstream\n")
    finally:
        upstream.terminate()
        upstream.wait()


def test_run_without_a_config_explains(tmp_path):
    r = tronada("run", str(tmp_path))
    assert r.returncode == 1
    assert "no tronada.toml" in r.stderr and "tronada new" in r.stderr


# --- the native template: build, test, serve, reload -----------------------------------

@pytest.fixture(scope="module")
def native_app(tmp_path_factory):
    base = tmp_path_factory.mktemp("native")
    r = tronada("new", "shop", cwd=base)
    assert r.returncode == 0, r.stderr
    return base / "shop"


def test_native_template_builds_and_its_tests_pass(native_app):
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    configure = subprocess.run(
        ["cmake", "-S", str(native_app), "-B", str(native_app / "build"), "-G", "Ninja",
         "-DCMAKE_BUILD_TYPE=Debug", f"-Dtronada_DIR={BIN.parent}"],
        capture_output=True, text=True, timeout=120)
    assert configure.returncode == 0, configure.stdout + configure.stderr
    build = subprocess.run(["cmake", "--build", str(native_app / "build")],
                           capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    assert build.returncode == 0, build.stdout + build.stderr
    # Only the app's own files were compiled: the library came from this build tree.
    compiled = re.findall(r"Building CXX object (\S+)", build.stdout)
    assert len(compiled) == 3, compiled
    tests = subprocess.run([str(native_app / "build" / "shop_tests")], capture_output=True,
                           text=True, timeout=120, env=env)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "[  PASSED  ] 5 tests" in tests.stdout


def built_program(native_app):
    """The native app's program, configured and built here if no earlier test did."""
    build = native_app / "build"
    if not (build / "CMakeCache.txt").exists():
        configure = subprocess.run(
            ["cmake", "-S", str(native_app), "-B", str(build), "-G", "Ninja",
             "-DCMAKE_BUILD_TYPE=Debug", f"-Dtronada_DIR={BIN.parent}"],
            capture_output=True, text=True, timeout=120)
        assert configure.returncode == 0, configure.stdout + configure.stderr
    r = subprocess.run(["cmake", "--build", str(build), "--target", "shop"],
                       capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    return build / "shop"


def test_native_program_runs_from_any_folder_and_explains_mistakes(native_app, tmp_path):
    program = str(built_program(native_app))
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")

    def run(*args):
        return subprocess.run([program, *args], cwd=tmp_path, capture_output=True, text=True,
                              timeout=60, env=env)

    def explained(r, status, *words):
        assert r.returncode == status, r.stdout + r.stderr
        assert "terminate called" not in r.stderr
        assert any(all(w in line for w in words) for line in r.stderr.splitlines()), r.stderr

    # Started from another folder, it finds the app's static/ by itself.
    port = free_port()
    p = subprocess.Popen([program, "--port", str(port)], cwd=tmp_path, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    try:
        wait_for_port(port, p)
        assert get(port, "/static/style.css")[0] == 200
    finally:
        p.terminate()
        p.wait(timeout=20)
    # Mistakes: one line naming the cause and the flag that fixes it, and status 1.
    explained(run("--port", str(port), "--static-path", "nowhere"), 1,
              "shop: error:", "nowhere", "--static-path")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        explained(run("--port", str(taken)), 1, "shop: error:", "cannot bind", str(taken),
                  "--port")
    explained(run("--port", "http"), 2, "--port", "http")
    static = native_app / "static"
    away = native_app / "static.away"
    static.rename(away)
    try:
        explained(run("--port", str(port)), 1, "shop: error:", str(static), "--static-path")
    finally:
        away.rename(static)


def test_native_run_serves_and_reloads(native_app, runs):
    run = runs(native_app, "--reload", "--build-type", "Debug", timeout=BUILD_TIMEOUT)
    status, body = get(run.port, "/api/hello?name=ann")
    assert (status, json.loads(body)) == (200, {"message": "Hello, ann!"})
    assert "<h1>shop</h1>" in get(run.port, "/")[1]
    assert get(run.port, "/static/style.css")[0] == 200
    ws = subprocess.run(
        ["/usr/bin/python3", "-c",
         "import asyncio, sys, websockets\n"
         "async def main():\n"
         f"  async with websockets.connect('ws://127.0.0.1:{run.port}/ws') as ws:\n"
         "    await ws.send('ping'); print(await ws.recv())\n"
         "asyncio.run(main())"], capture_output=True, text=True, timeout=30)
    assert ws.stdout.strip() == "ping", ws.stderr

    # While the edit is rebuilt and the app restarted, a client keeps asking: the socket
    # stays open in `tronada run`, so no connection is refused.
    failures = []
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            try:
                get(run.port, "/api/hello", timeout=30)
            except OSError as e:
                failures.append(repr(e))
            time.sleep(0.02)

    client = threading.Thread(target=hammer)
    client.start()
    try:
        source = native_app / "src" / "app.cpp"
        good = source.read_text()
        source.write_text(good.replace('"Hello, "', '"Howdy, "'))
        run.wait_until(lambda: "Howdy" in get(run.port, "/api/hello")[1], BUILD_TIMEOUT)
    finally:
        stop.set()
        client.join()
    assert failures == []
    assert "started" in run.output()

    # A broken edit: the compiler's error is shown and the old process keeps serving.
    source.write_text(good.replace('"Hello, "', '"Howdy, " +'))
    run.wait_until(lambda: "previous version keeps serving" in run.output(), BUILD_TIMEOUT)
    assert "error:" in run.output() and "app.cpp" in run.output()
    assert "Howdy, ann!" in get(run.port, "/api/hello?name=ann")[1]
    assert run.stop() == 0
