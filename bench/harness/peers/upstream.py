"""The fixed upstream behind the reverse-proxy workloads: an nginx answering
`Hello, world`, as in http-plaintext."""

import shlex

from ..common import HOST
from ..process import free_port
from . import nginx


def with_upstream(port, workdir, gateway_argv):
    """A fixed upstream (nginx answering `Hello, world`, as in http-plaintext) and a
    gateway in one process group, so both are pinned to the server CPU and the CPU time
    counts both: the gateways differ only in their own cost. gateway_argv(up_port) is
    the gateway's argv, given the upstream's port."""
    up_port = free_port()
    upstream = nginx.hello_command(up_port, workdir)
    script = (f"{shlex.join(upstream)} & UP=$!; "
              f"for i in $(seq 200); do curl -s -o /dev/null http://{HOST}:{up_port}/ && break; "
              "sleep 0.05; done; "
              f"{shlex.join(gateway_argv(up_port))} & SRV=$!; "
              "trap 'kill $SRV $UP 2>/dev/null; wait' TERM INT; "
              "wait $SRV; kill $UP 2>/dev/null; wait")
    return ["/bin/sh", "-c", script]
