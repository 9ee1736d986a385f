"""The load generators: how each runs once against a server, pinned to the client CPU,
and what its output says (requests/s, p50/p99, errors). LOADS names them for the
workloads (workloads.Workload.load).

Every run returns {"rps", "requests", "seconds", "p50_ms", "p99_ms", "errors"}
(p50/p99 None when the tool does not report them) or raises RuntimeError.
"""

import json
import os
import re
import shutil
import subprocess

from .common import BIN, HOST, ROOT


def parse_duration_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    if not m:
        raise ValueError(f"bad wrk duration {text!r}")
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}[m.group(2)]
    return float(m.group(1)) * scale


def parse_wrk(out):
    res = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise RuntimeError(f"cannot parse wrk output:\n{out}")
    res["rps"] = float(m.group(1))
    m = re.search(r"(\d+) requests in ([\d.]+\w+)", out)
    res["requests"] = int(m.group(1))
    res["seconds"] = parse_duration_ms(m.group(2)) / 1e3
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s+{pct}(?:\.0+)?%\s+([\d.]+\w+)", out, re.M)
        res[key] = parse_duration_ms(m.group(1)) if m else None
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    res["errors"] = errors
    return res


def run_wrk(opts, port, conns, seconds, close, path="/", tls=False):
    argv = ["taskset", "-c", str(opts.client_cpu), "wrk", "-t1", f"-c{conns}",
            f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "5s"]  # whole seconds only
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(f"{'https' if tls else 'http'}://{HOST}:{port}{path}")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    if r.returncode != 0:
        raise RuntimeError(f"wrk failed ({r.returncode}): {(r.stderr or r.stdout).strip()[:500]}")
    return parse_wrk(r.stdout)


def run_h2load(opts, port, conns, seconds, tls, streams=10, path="/"):
    scheme = "https" if tls else "http"
    argv = ["taskset", "-c", str(opts.client_cpu), "h2load", "-t1", f"-c{conns}",
            f"-m{streams}", f"-D{max(1, round(seconds))}", f"{scheme}://{HOST}:{port}{path}"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    out = r.stdout
    m = re.search(r"finished in ([\d.]+)(\w+), ([\d.]+) req/s", out)
    n = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", out)
    if r.returncode != 0 or not m or not n:
        raise RuntimeError(f"h2load failed ({r.returncode}): {(r.stderr or out).strip()[:500]}")
    if tls and "Application protocol: h2" not in out:
        raise RuntimeError("h2load did not negotiate h2")
    seconds_run = parse_duration_ms(m.group(1) + m.group(2)) / 1e3
    done, ok = int(n.group(2)), int(n.group(3))
    # h2load reports no latency percentiles, only min/max/mean.
    return {"rps": ok / seconds_run if seconds_run else 0.0, "requests": ok,
            "seconds": seconds_run, "p50_ms": None, "p99_ms": None,
            "errors": int(n.group(4)) + int(n.group(5)) + int(n.group(6))}


def run_http_client_bench(opts, port, conns, seconds):
    argv = ["taskset", "-c", str(opts.client_cpu), str(BIN / "http_client_bench"), "--port",
            str(port), "-c", str(conns), "-d", str(seconds)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    try:
        data = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError(f"http_client_bench failed ({r.returncode}): {r.stderr.strip()}")
    return {"rps": data["rps"], "requests": data["requests"], "seconds": data["seconds"],
            "p50_ms": data["p50_us"] / 1e3, "p99_ms": data["p99_us"] / 1e3,
            "errors": data["errors"]}


def run_echo_client(opts, port, conns, seconds, ws_path=None):
    argv = ["taskset", "-c", str(opts.client_cpu), str(BIN / "echo_client"), "--port",
            str(port), "-c", str(conns), "-d", str(seconds), "--size", "64"]
    if ws_path:
        argv += ["--websocket", ws_path]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    try:
        data = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError(f"echo_client failed ({r.returncode}): {r.stderr.strip()}")
    return {"rps": data["rps"], "requests": data["round_trips"], "seconds": data["seconds"],
            "p50_ms": data["p50_us"] / 1e3, "p99_ms": data["p99_us"] / 1e3,
            "errors": data["errors"] + data["mismatches"]}


class Load:
    """A load generator as a workload uses it.

    label: how a note names it when it is missing.
    missing(): None, or why it cannot run here.
    run(opts, wl, port, conns, seconds): one run against 127.0.0.1:port with what the
        workload asks for (wl.path, wl.close, wl.tls).
    """

    def __init__(self, label, missing, run):
        self.label = label
        self.missing = missing
        self.run = run


def _installed(tool, package):
    return lambda: None if shutil.which(tool) else f"{tool} missing ({package})"


def _built(binary):
    return lambda: None if os.access(BIN / binary, os.X_OK) else \
        f"`{os.path.relpath(BIN / binary, ROOT)}` missing (run ./scripts/build)"


LOADS = {
    # HTTP/1.1 on wl.path (https:// without ALPN when wl.tls; `Connection: close` when
    # wl.close).
    "wrk": Load("wrk", _installed("wrk", "apt-get install wrk"),
                lambda opts, wl, port, conns, secs: run_wrk(opts, port, conns, secs, wl.close,
                                                            wl.path, wl.tls)),
    # HTTP/2 on wl.path: prior knowledge on clear text, ALPN h2 when wl.tls; 10 streams
    # per connection.
    "h2load": Load("h2load", _installed("h2load", "apt-get install nghttp2-client"),
                   lambda opts, wl, port, conns, secs: run_h2load(opts, port, conns, secs,
                                                                  wl.tls, path=wl.path)),
    # Line echo: one 64-byte line in flight per connection.
    "echo_client": Load(os.path.relpath(BIN / "echo_client", ROOT), _built("echo_client"),
                        lambda opts, wl, port, conns, secs: run_echo_client(opts, port, conns,
                                                                            secs)),
    # WebSocket echo on wl.path: one 64-byte binary message in flight per connection.
    "echo_client-ws": Load(os.path.relpath(BIN / "echo_client", ROOT), _built("echo_client"),
                           lambda opts, wl, port, conns, secs: run_echo_client(
                               opts, port, conns, secs, wl.path)),
    # tronada's AsyncHTTPClient as a load generator (the `client` workload).
    "http_client_bench": Load(os.path.relpath(BIN / "http_client_bench", ROOT),
                              _built("http_client_bench"),
                              lambda opts, wl, port, conns, secs: run_http_client_bench(
                                  opts, port, conns, secs)),
}
