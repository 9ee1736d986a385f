"""The static-file workloads' document root and each server's static-file configuration:
`tronada static` (the product), h2o's file handler and nginx with sendfile and
open_file_cache, each in the configuration its documentation recommends for speed."""

from pathlib import Path

from ..common import BIN, HOST
from . import h2o, nginx
from .tls import bench_cert

# name -> size: a 13-byte file (Hello, world\n), a 16 KiB asset and a 1 MiB download.
FILES = {"13b.txt": 13, "16k.bin": 16 * 1024, "1m.bin": 1024 * 1024}


def docroot(workdir):
    """The files, written once per work directory; text for the small one, bytes for
    the others (the content does not matter: no server compresses on the fly here)."""
    root = Path(workdir) / "static-root"
    root.mkdir(exist_ok=True)
    for name, size in FILES.items():
        path = root / name
        if not path.exists() or path.stat().st_size != size:
            data = b"Hello, world\n" if size == 13 else bytes((i * 7) & 0xFF for i in range(size))
            path.write_bytes(data)
    return root


def tronada_command(tls=False, admin=False):
    """`tronada static DIR`: the file cache and sendfile on their defaults, access log off
    (as the peers'), HTTP/2 by prior knowledge on clear text and by ALPN over TLS.
    admin: with the admin listener on a Unix socket, so every request is counted in the
    metrics (the metrics-on/off workloads)."""
    def command(port, workdir):
        argv = [str(BIN / "tronada"), "static", str(docroot(workdir)), "-b", f"{HOST}:{port}",
                "--access-log", "off", "--log-level", "warning"]
        if tls:
            crt, key = bench_cert(workdir)
            argv += ["--certfile", str(crt), "--keyfile", str(key)]
        if admin:
            argv += ["--admin", f"unix:{Path(workdir) / f'admin-{port}.sock'}"]
        return argv
    return command


def tronada_serve_command(admin=False):
    """`tronada serve` with one `static` route on `/`: a request goes through the
    Application, its route rule and a RequestHandler, the path every `serve` route and
    native handler takes, so metrics on/off here is their per-request cost."""
    def command(port, workdir):
        config = Path(workdir) / f"serve-static-{port}.toml"
        admin_line = f'admin = "unix:{Path(workdir) / f"admin-{port}.sock"}"\n' if admin else ""
        config.write_text(
            "[server]\n"
            f'bind = ["{HOST}:{port}"]\n'
            'access_log = "off"\n'
            'log_level = "warning"\n'
            f"{admin_line}"
            "\n[[route]]\n"
            'path = "/"\n'
            f'static.root = "{docroot(workdir)}"\n')
        return [str(BIN / "tronada"), "serve", "-c", str(config)]
    return command


def h2o_command(tls=False):
    """h2o, one thread, `file.dir` (its open-file cache is on by default)."""
    return lambda port, workdir: h2o.file_dir_argv(port, workdir, docroot(workdir), tls,
                                                   name="h2o-static")


def nginx_command(tls=False, http2=False):
    """nginx, one worker: `sendfile on`, `tcp_nopush on` and `open_file_cache` (the
    configuration nginx's documentation gives for serving files fast)."""
    def command(port, workdir):
        location = (f"root {docroot(workdir)};\n"
                    "            sendfile on;\n"
                    "            tcp_nopush on;\n"
                    "            open_file_cache max=1000 inactive=60s;\n"
                    "            open_file_cache_valid 60s;\n"
                    "            open_file_cache_errors on;")
        return nginx.hello_command(port, workdir, http2=http2, tls=tls, location=location)
    return command
