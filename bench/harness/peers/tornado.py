"""Tornado 6 (Debian's python3-tornado) running the scripts in bench/peers/."""

import subprocess

from ..common import HOST, PEERS, PYTHON


def missing():
    r = subprocess.run([PYTHON, "-c", "import tornado"], capture_output=True)
    return None if r.returncode == 0 else "Python module tornado missing (python3-tornado)"


def version():
    r = subprocess.run([PYTHON, "-c", "import tornado; print(tornado.version)"],
                       capture_output=True, text=True)
    return f"Tornado {r.stdout.strip()}" if r.returncode == 0 else ""


def script_command(script, *args):
    """bench/peers/SCRIPT [ARGS] --port PORT --address 127.0.0.1."""
    return lambda port, wd: [PYTHON, str(PEERS / script), *args, "--port", str(port),
                             "--address", HOST]


def wsgi_command(app):
    """Tornado's WSGIContainer serving `module:callable` from bench/peers/."""
    return script_command("tornado_wsgi.py", app)


def framework_command(routes):
    """bench/peers/tornado_framework.py with `routes` rules (the twin of
    framework_bench)."""
    return lambda port, wd: [PYTHON, str(PEERS / "tornado_framework.py"), "--port", str(port),
                             "--address", HOST, "--routes", str(routes)]


def pg_command(dsn):
    """bench/peers/tornado_pg.py (asyncpg, pool of 10); dsn() is asked at start-up."""
    return lambda port, wd: [PYTHON, str(PEERS / "tornado_pg.py"), "--dsn", dsn(),
                             "--pool", "10", "--port", str(port), "--address", HOST]
