"""The Python WSGI servers tronada's WSGI container is measured against: gunicorn and
uWSGI, one worker process each, serving an app from bench/peers/ (`module:callable`).
Tornado's WSGIContainer is in tornado.py."""

import subprocess

from ..common import HOST, PEERS
from ..spec import missing_binary

missing_gunicorn = missing_binary("/usr/bin/gunicorn", "apt-get install gunicorn")
missing_uwsgi = missing_binary("/usr/bin/uwsgi", "apt-get install uwsgi-core uwsgi-plugin-python3")


def gunicorn_version():
    r = subprocess.run(["/usr/bin/gunicorn", "--version"], capture_output=True, text=True)
    return (r.stdout or r.stderr).strip()


def uwsgi_version():
    r = subprocess.run(["/usr/bin/uwsgi", "--version"], capture_output=True, text=True)
    return f"uWSGI {r.stdout.strip()}"


def gunicorn_sync_command(app):
    return lambda port, wd: [
        "/usr/bin/gunicorn", "-w", "1", "-k", "sync", "--backlog", "1024",
        "-b", f"{HOST}:{port}", "--chdir", str(PEERS), app]


def gunicorn_gthread_command(app):
    return lambda port, wd: [
        "/usr/bin/gunicorn", "-w", "1", "-k", "gthread", "--threads", "4",
        "--backlog", "1024", "-b", f"{HOST}:{port}", "--chdir", str(PEERS), app]


def uwsgi_command(app):
    # uWSGI logs every request unless told not to.
    return lambda port, wd: [
        "/usr/bin/uwsgi", "--plugin", "python3", "--http-socket", f"{HOST}:{port}",
        "--chdir", str(PEERS), "--module", app, "--processes", "1",
        "--listen", "1024", "--disable-logging", "--die-on-term"]
