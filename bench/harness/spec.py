"""Spec: how to start one server and how to tell it is ready, plus the checks that say
why a server cannot run here (a binary not built, a package not installed)."""

import os
import subprocess

from .common import PYTHON, ROOT
from .protocols import echo_roundtrip, http_roundtrip, ws_open_receive, ws_open_send


class Spec:
    """How to start one server and probe it; `missing()` names what is absent, if any.

    name: the key in servers.SERVERS and on the command line (`--servers`).
    label: how the report names it.
    proto: what its readiness probe (and an idle connection) speaks: "http" (one
        `GET /` answered 200), "echo" (a line), "ws" (a WebSocket handshake and one
        message), or "tcp" (accepting is enough: TLS and HTTP/2-only servers, which the
        load generator checks itself).
    command(port, workdir): the argv that runs it in the foreground on 127.0.0.1:port;
        it may write configuration files into workdir (a fresh one per run).
    missing(): None, or why it cannot run here.
    version(): the peer's version for the report ("" when unknown).
    """

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
