"""Start-up mistakes, as a new user makes them: a missing root, an app that does not
import, a busy port, a bad certificate, a scaffolded app run from another folder. Each
must end with a message that names the cause (and what to pass instead), a non-zero
exit status (2 for a usage error, 1 otherwise), and never an uncaught exception."""
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import BIN

TRONADA = str(BIN / "tronada")
APPS = Path(__file__).resolve().parent / "apps"
USAGE, FAILURE = 2, 1


@pytest.fixture(scope="module")
def busy_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("startup")
    (d / "site").mkdir()
    (d / "bad.pem").write_text("not a certificate\n")
    return d


def tronada(*args, cwd=None):
    return subprocess.run([TRONADA, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def assert_explained(result, status, *words):
    """Exit `status`, and one stderr line saying every one of `words`."""
    out = result.stdout + result.stderr
    assert result.returncode == status, out
    assert "terminate called" not in out and "Aborted" not in out, out
    lines = [line for line in result.stderr.splitlines() if all(w in line for w in words)]
    assert lines, f"no line says {words}:\n{result.stderr}"


def write(path, text):
    path.write_text(text)
    return str(path)


def test_static_missing_root():
    assert_explained(tronada("static", "/nonexistent/site"), USAGE, "/nonexistent/site")


def test_fastcgi_missing_root_and_bad_address(files):
    assert_explained(tronada("fastcgi", "--to", "unix:/x.sock", "--root", "/nonexistent/site"),
                     USAGE, "--root", "/nonexistent/site")
    assert_explained(tronada("fastcgi", "--to", "bogus", "--root", str(files / "site")),
                     FAILURE, "tronada: error:", "bogus")


def test_wsgi_app_that_does_not_import():
    r = tronada("wsgi", "no_such_module:application")
    assert_explained(r, FAILURE, "tronada: error:", "cannot import 'no_such_module'")
    r = tronada("wsgi", "hello:nothing", "--pythonpath", str(APPS))
    assert_explained(r, FAILURE, "tronada: error:", "'nothing'")


def test_proxy_bad_upstream():
    assert_explained(tronada("proxy", "--to", "nota url"), USAGE, "--to", "nota url")


@pytest.mark.parametrize("command", ["static", "fastcgi", "wsgi", "proxy", "serve"])
def test_busy_port(files, busy_port, command):
    args = {
        "static": ["static", str(files / "site")],
        "fastcgi": ["fastcgi", "--to", "unix:/x.sock", "--root", str(files / "site")],
        "wsgi": ["wsgi", "hello:application", "--pythonpath", str(APPS)],
        "proxy": ["proxy", "--to", "http://127.0.0.1:9"],
        "serve": ["serve", "-c", write(files / "busy.toml",
                                      f'[[route]]\npath = "/"\nstatic = {{ root = "site" }}\n')],
    }[command]
    r = tronada(*args, "-b", f"127.0.0.1:{busy_port}")
    assert_explained(r, FAILURE, "tronada: error:", "cannot bind", str(busy_port),
                     "Address already in use")


@pytest.mark.parametrize("command", ["static", "serve"])
def test_bad_certificate(files, command):
    bad = str(files / "bad.pem")
    if command == "static":
        r = tronada("static", str(files / "site"), "--certfile", bad, "--keyfile", bad,
                    "-b", "127.0.0.1:0")
    else:
        cfg = write(files / "tls.toml",
                    f'[server]\nbind = "127.0.0.1:0"\n[server.tls]\ncert = "{bad}"\n'
                    f'key = "{bad}"\n[[route]]\npath = "/"\nstatic = {{ root = "site" }}\n')
        r = tronada("serve", "-c", cfg)
    assert_explained(r, FAILURE, "tronada: error:", "certificate", bad)


def test_serve_fastcgi_route_with_a_missing_root(files):
    cfg = write(files / "php.toml",
                '[[route]]\npath = "/"\nfastcgi = { to = "unix:/x.sock", root = "public" }\n')
    # The route's root is relative to the config file and named as what it is.
    assert_explained(tronada("serve", "-c", cfg, "-b", "127.0.0.1:0"), FAILURE,
                     "tronada: error:", f"{cfg}:", "document root", str(files / "public"))
    assert_explained(tronada("check", "-c", cfg), FAILURE, "document root")


# --- the templates, run from another folder -----------------------------------------------


@pytest.fixture
def elsewhere(tmp_path):
    d = tmp_path / "elsewhere"
    d.mkdir()
    return d


def scaffold(tmp_path, template):
    app = tmp_path / f"app_{template}"
    r = tronada("new", f"app_{template}", "--template", template, "--dir", str(app))
    assert r.returncode == 0, r.stderr
    return app


def test_wsgi_template_without_its_module(tmp_path, elsewhere):
    app = scaffold(tmp_path, "wsgi")
    (app / "app.py").unlink()
    r = tronada("run", str(app), "-b", "127.0.0.1:0", cwd=elsewhere)
    # `tronada run` ends with its app's status: 1, not the usage error's 2.
    assert_explained(r, FAILURE, "tronada: error:", "cannot import 'app'")


def test_fastcgi_template_without_its_root(tmp_path, elsewhere):
    app = scaffold(tmp_path, "fastcgi")
    (app / "public" / "index.php").unlink()
    (app / "public").rmdir()
    r = tronada("run", str(app), "-b", "127.0.0.1:0", cwd=elsewhere)
    assert_explained(r, FAILURE, "tronada: error:", "document root", str(app / "public"))


def test_proxy_template_on_a_busy_port(tmp_path, elsewhere, busy_port):
    app = scaffold(tmp_path, "proxy")
    r = tronada("run", str(app), "-b", f"127.0.0.1:{busy_port}", cwd=elsewhere)
    assert_explained(r, FAILURE, "cannot bind", str(busy_port))
