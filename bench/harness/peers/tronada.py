"""tronada's side: the examples, test servers and benchmark servers in build/bin, and the
`tronada` program's gateways (wsgi, fastcgi, proxy)."""

from ..common import BIN, HOST, PEERS
from ..spec import missing_binary
from .tls import bench_cert


def missing(binary, hint="run ./scripts/build"):
    return missing_binary(BIN / binary, hint)


def example_command(binary):
    """build/bin/BINARY --port PORT --address 127.0.0.1 (the examples' common flags)."""
    return lambda port, wd: [str(BIN / binary), "--port", str(port), "--address", HOST]


def test_server_command(tls):
    """tests/support/http_test_server: an HTTPServer answering `/` with `Hello, world`
    (HTTP/2 by prior knowledge on clear text, by ALPN over TLS)."""
    def command(port, workdir):
        argv = [str(BIN / "http_test_server"), "--port", str(port), "--address", HOST]
        if tls:
            crt, key = bench_cert(workdir)
            argv += ["--certfile", str(crt), "--keyfile", str(key)]
        return argv
    return command


def framework_command(routes):
    """bench/framework_bench.cpp with `routes` rules."""
    return lambda port, wd: [str(BIN / "framework_bench"), "--port", str(port), "--address",
                             HOST, "--routes", str(routes)]


def async_db_command(dsn):
    """examples/08_async_db with a pg::Pool of 10; dsn() is asked at start-up."""
    return lambda port, wd: [str(BIN / "08_async_db"), "--dsn", dsn(), "--pool", "10",
                             "--port", str(port), "--address", HOST]


def wsgi_command(app):
    """`tronada wsgi` serving `module:callable` from bench/peers/ (one thread)."""
    return lambda port, wd: [
        str(BIN / "tronada"), "wsgi", app, "-b", f"{HOST}:{port}",
        "--pythonpath", str(PEERS), "--log-level", "warning"]


def fastcgi_argv(port, sock):
    """`tronada fastcgi` in front of the php-fpm pool on `sock`."""
    return [str(BIN / "tronada"), "fastcgi", "--to", f"unix:{sock}", "--root", str(PEERS / "php"),
            "-b", f"{HOST}:{port}", "--max-conns", "2", "--log-level", "warning"]


def proxy_argv(port, up_port):
    """`tronada proxy` to the upstream on `up_port`."""
    return [str(BIN / "tronada"), "proxy", "--to", f"http://{HOST}:{up_port}",
            "-b", f"{HOST}:{port}", "--access-log", "off", "--log-level", "warning"]
