"""php-fpm: a pool per gateway, started with the gateway in one process group so the
harness pins and stops both and counts PHP's CPU time with the gateway's."""

import os
import shlex
from pathlib import Path


def php_fpm_path():
    found = sorted(Path("/usr/sbin").glob("php-fpm*"))
    return str(found[0]) if found else None


def missing():
    return None if php_fpm_path() else "php-fpm missing (apt-get install php-fpm)"


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
    """php-fpm and a gateway in one process group (the harness pins and stops both).
    server_argv(sock) is the gateway's argv, given the pool's socket."""
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
