"""h2o, one thread, serving `Hello, world` from a file."""

import getpass
import shutil
import subprocess
from pathlib import Path

from ..common import HOST
from .tls import bench_cert


def missing():
    return None if shutil.which("h2o") else "h2o missing (apt-get install h2o)"


def version():
    r = subprocess.run(["h2o", "--version"], capture_output=True, text=True)
    return r.stdout.splitlines()[0] if r.returncode == 0 and r.stdout else ""


def file_dir_argv(port, workdir, root, tls, name="h2o"):
    """h2o with one thread serving the folder `root` with `file.dir` (its static handler,
    with its open-file cache on by default); the config is written as NAME-PORT.conf."""
    ssl = ""
    if tls:
        crt, key = bench_cert(workdir)
        ssl = f"\n  ssl:\n    certificate-file: {crt}\n    key-file: {key}"
    # As root h2o would switch to `nobody`, who cannot write in the work directory.
    conf = f"""user: {getpass.getuser()}
num-threads: 1
pid-file: {workdir}/{name}-{port}.pid
error-log: {workdir}/{name}-{port}-error.log
max-connections: 30000
listen:
  host: {HOST}
  port: {port}{ssl}
hosts:
  default:
    paths:
      /:
        file.dir: {root}
"""
    conf_path = Path(workdir) / f"{name}-{port}.conf"
    conf_path.write_text(conf)
    return ["h2o", "-c", str(conf_path)]


def h2o_command(tls):
    """h2o serving a file with `Hello, world` at `/` (its fastest way to answer without
    mruby)."""
    def command(port, workdir):
        docroot = Path(workdir) / "h2o-root"
        docroot.mkdir(exist_ok=True)
        (docroot / "index.html").write_text("Hello, world")
        return file_dir_argv(port, workdir, docroot, tls)
    return command
