"""Measurement: starting a workload's servers, interleaving the rounds across them, and
what one run records (throughput and the server's CPU time per request; or memory per
idle connection; or loop_bench's own table)."""

import os
import socket
import subprocess
import sys
import time

from .common import BIN, CLK_TCK, HOST, ROOT, log
from .fmt import fmt_ms, fmt_num
from .loadgen import LOADS
from .process import Server, free_port
from .procfs import cpu_ticks, memory
from .protocols import idle_exchange
from .servers import SERVERS


def start_servers(opts, names, workdir, notes):
    """Starts each available server; returns {name: Server}. Missing ones go to notes."""
    servers = {}
    for name in names:
        spec = SERVERS[name]
        why = spec.missing()
        if why:
            notes.append(f"{spec.label} skipped: {why}.")
            log(f"  skip {name}: {why}")
            continue
        for attempt in (1, 2):  # a second port if another process took the free one
            server = Server(spec, free_port(), workdir, opts.server_cpu)
            try:
                server.wait_ready()
            except RuntimeError as e:
                server.stop()
                log(f"  {name} failed to start (attempt {attempt}): {e}")
                if attempt == 2:
                    notes.append(f"{spec.label} skipped: failed to start "
                                 f"({str(e).splitlines()[0]}).")
                continue
            servers[name] = server
            break
    return servers


def rotated(items, r):
    """items rotated left by r: round r starts with a different server."""
    items = list(items)
    if not items:
        return items
    r %= len(items)
    return items[r:] + items[:r]


def missing_load(wl):
    """Why the workload's load generators cannot run here, or None."""
    loads = [LOADS[name] for name in wl.loads()]
    whys = [load.missing() for load in loads]
    if not any(whys):
        return None
    if len(loads) == 1:
        return whys[0]
    return " or ".join(load.label for load in loads) + " missing"


def measure_throughput(opts, wl, workdir, notes):
    """Runs every round of a throughput workload; returns {(server, conns): [run]},
    each run the load generator's result plus `cpu_us` (server CPU per request) and
    `cpu_util` (server CPU time over wall time)."""
    why = missing_load(wl)
    if why:
        notes.append(f"Skipped: {why}.")
        return {}
    concurrency = opts.connections or wl.concurrency
    servers = start_servers(opts, opts.servers or wl.servers, workdir, notes)
    results = {}  # (server, conns) -> [run dicts]
    try:
        for r in range(opts.rounds):
            for conns in concurrency:
                for name in rotated(servers, r):
                    server = servers[name]
                    run = LOADS[wl.load_for(name)].run
                    try:
                        run(opts, wl, server.port, conns, opts.warmup)
                        pids = server.pids()
                        t0 = cpu_ticks(pids)
                        res = run(opts, wl, server.port, conns, opts.duration)
                        t1 = cpu_ticks(pids)
                        if not server.alive():
                            raise RuntimeError(f"server exited ({server.proc.returncode}):\n"
                                               f"{server.log_tail()}")
                    except (RuntimeError, subprocess.TimeoutExpired) as e:
                        # One broken server must not cost the others their results.
                        log(f"  {name} c{conns} failed: {e}")
                        notes.append(f"{server.spec.label} dropped in round {r + 1} at c{conns}: "
                                     f"{str(e).splitlines()[0]}")
                        server.stop()
                        del servers[name]
                        continue
                    cpu_s = (t1 - t0) / CLK_TCK
                    res["cpu_us"] = cpu_s * 1e6 / res["requests"] if res["requests"] else None
                    res["cpu_util"] = cpu_s / res["seconds"] if res["seconds"] else None
                    results.setdefault((name, conns), []).append(res)
                    log(f"  round {r + 1} {name:13} c{conns:<4} {res['rps']:>10.0f}/s  "
                        f"p50 {fmt_ms(res['p50_ms'])} p99 {fmt_ms(res['p99_ms'])}  "
                        f"cpu {fmt_num(res['cpu_us'], 1)} µs/req "
                        f"({fmt_num(100 * (res['cpu_util'] or 0), 0)}%)  errors {res['errors']}")
    finally:
        for server in servers.values():
            server.stop()
    return results


def open_idle_connections(port, n, send, receive, batch=250):
    """Opens n connections, each doing one round trip; returns the open sockets.
    In batches: connect all, send on all, then read every answer, so the server works
    on a whole batch at once."""
    socks = []
    try:
        while len(socks) < n:
            group = []
            for _ in range(min(batch, n - len(socks))):
                s = socket.create_connection((HOST, port), timeout=30)
                group.append(s)
                socks.append(s)
            for s in group:
                send(s)
            for s in group:
                receive(s)
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


def measure_memory(opts, wl, workdir, notes):
    """Runs every round of a memory workload, a fresh server each; returns
    {(server, n): [run]}, each run the bytes per connection (`private`, `pss`, `rss`)
    and the RSS before and after."""
    n = opts.idle_connections
    names = opts.servers or wl.servers
    results = {}
    for r in range(opts.rounds):
        for name in rotated(names, r):
            if any(note.startswith(SERVERS[name].label + " skipped") for note in notes):
                continue
            servers = start_servers(opts, [name], workdir, notes)
            if name not in servers:
                continue
            server = servers[name]
            socks = []
            try:
                send, receive, roundtrip = idle_exchange(server.spec.proto)
                time.sleep(0.3)
                before = memory(server.pids())
                t0 = time.monotonic()
                socks = open_idle_connections(server.port, n, send, receive)
                opened = time.monotonic() - t0
                time.sleep(1.0)
                after = memory(server.pids())
                if not server.alive():
                    raise RuntimeError(f"{name} died:\n{server.log_tail()}")
                # Check that the connections are still open and usable: one more round
                # trip on the first and the last.
                for s in (socks[0], socks[-1]):
                    roundtrip(s)
                res = {k: (after[k] - before[k]) / n for k in after}
                res.update({"before_rss": before["rss"], "after_rss": after["rss"],
                            "open_s": opened})
                results.setdefault((name, n), []).append(res)
                log(f"  round {r + 1} {name:13} {n} conns in {opened:.1f} s: "
                    f"private {res['private']:.0f} B/conn, pss {res['pss']:.0f}, "
                    f"rss {res['rss']:.0f} (rss {before['rss'] / 2**20:.1f} -> "
                    f"{after['rss'] / 2**20:.1f} MiB)")
            except (OSError, ValueError, RuntimeError) as e:
                log(f"  {name} failed: {e}")
                notes.append(f"{server.spec.label} failed in round {r + 1}: "
                             f"{str(e).splitlines()[0] if str(e) else type(e).__name__}")
            finally:
                for s in socks:
                    s.close()
                server.stop()
    return results


def measure_loop(opts, notes):
    """Runs loop_bench pinned to the server CPU; returns its Markdown table (or None)."""
    exe = BIN / "loop_bench"
    if not os.access(exe, os.X_OK):
        notes.append(f"Skipped: `{os.path.relpath(exe, ROOT)}` missing (run ./scripts/build).")
        return None
    argv = ["taskset", "-c", str(opts.server_cpu), str(exe), "--rounds", "5"]
    if opts.quick:
        argv += ["--scale", "0.3"]
    notes.append(f"Command: `{' '.join(argv[3:]).replace(str(ROOT) + '/', '')}` under "
                 f"`taskset -c {opts.server_cpu}`.")
    log("  " + " ".join(argv))
    r = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    sys.stderr.write(r.stderr)
    if r.returncode != 0:
        raise RuntimeError(f"loop_bench failed ({r.returncode})")
    return r.stdout.strip()
