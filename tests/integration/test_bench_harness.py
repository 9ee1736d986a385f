"""bench/run.py's definitions hold together, checked without starting a server or any
load: every workload names servers and a load generator that exist, and every server
that can run here builds its command line (writing its configuration into a temp dir)."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from harness import loadgen, servers, workloads  # noqa: E402
from harness.peers import postgres  # noqa: E402

KINDS = {"throughput", "memory", "loop"}
PROTOS = {"http", "echo", "ws", "tcp"}


@pytest.mark.parametrize("name", list(workloads.WORKLOADS))
def test_workload_resolves(name):
    wl = workloads.WORKLOADS[name]
    assert wl.name == name
    assert wl.kind in KINDS
    for server in wl.servers:
        assert server in servers.SERVERS, f"{name}: unknown server {server}"
    if wl.kind == "loop":
        return
    assert wl.reference in wl.servers
    for load in wl.loads():
        assert load in loadgen.LOADS, f"{name}: unknown load generator {load}"
    for server in wl.load_by_server:
        assert server in wl.servers
    if wl.kind == "throughput":
        assert wl.concurrency
    assert wl.path.startswith("/")


@pytest.mark.parametrize("name", list(servers.SERVERS))
def test_server_command_builds(name, tmp_path, monkeypatch):
    spec = servers.SERVERS[name]
    assert spec.name == name
    assert spec.proto in PROTOS
    why = spec.missing()
    if why:
        pytest.skip(why)

    class FakePostgres:  # http-db's command asks for the DSN; do not start one
        dsn = "host=127.0.0.1 port=1 user=postgres"
        port = 1

    monkeypatch.setattr(postgres, "pg_server", FakePostgres)
    argv = spec.command(40000, str(tmp_path))
    assert argv and all(isinstance(a, str) for a in argv)


def test_list_names_every_workload():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--list"],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    listed = [line.split()[0] for line in out.split("\n\nservers:")[0].splitlines()]
    assert listed == list(workloads.WORKLOADS)
