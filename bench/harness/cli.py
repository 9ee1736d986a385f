"""The command line: options, limits and signals, and running each workload named
(measure, then write its section and plot)."""

import argparse
import datetime
import os
import resource
import shutil
import signal
import tempfile

from .common import DOC, IMG, ROOT, log
from .measure import measure_loop, measure_memory, measure_throughput
from .plots import plot, plot_loop
from .process import Server
from .report import memory_table, section, throughput_table, write_doc
from .servers import SERVERS
from .workloads import WORKLOADS


def raise_nofile(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(needed, soft)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def on_signal(signum, frame):
    raise SystemExit(f"bench: signal {signum}")


def run_workload(opts, wl, workdir):
    started = datetime.datetime.now(datetime.timezone.utc)
    notes = []
    log(f"== {wl.name}: {wl.title}")
    plot_name = f"bench-{wl.name}.png"
    if wl.kind == "loop":
        table = measure_loop(opts, notes)
        body = table
        if table and not opts.no_write:
            err = plot_loop(table, IMG / plot_name)
        else:
            err = "no results"
    else:
        if wl.kind == "throughput":
            results = measure_throughput(opts, wl, workdir, notes)
            body = throughput_table(wl, results) if results else ""
        else:
            results = measure_memory(opts, wl, workdir, notes)
            body = memory_table(wl, results) if results else ""
        err = (plot(wl, results, IMG / plot_name) if results and not opts.no_write
               else "no results")
    if err and err != "no results":
        log(f"  {err}")
    text = section(opts, wl, body, notes, started)
    print(f"<!-- bench:{wl.name} -->\n{text}<!-- /bench:{wl.name} -->\n", flush=True)
    if not opts.no_write:
        write_doc(wl.name, text)
        log(f"  wrote {DOC.relative_to(ROOT)}" + ("" if err else f" and {IMG / plot_name}"))


def main():
    parser = argparse.ArgumentParser(
        description="Run tronada's benchmarks against their peers; see bench/README.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="workloads: " + ", ".join(WORKLOADS) + ", or all")
    parser.add_argument("workloads", nargs="*", help="workload names (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="short runs: 1 s warm-up and 3 s measured unless given, "
                             "loop_bench at 0.3 scale")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, help="warm-up seconds (default 2, quick 1)")
    parser.add_argument("--duration", type=float, help="measured seconds (default 10, quick 3)")
    parser.add_argument("--connections", type=lambda s: [int(x) for x in s.split(",")],
                        help="override the workload's connection counts, e.g. 64,256")
    parser.add_argument("--idle-connections", type=int,
                        help="connections for idle and http-idle (default 10000)")
    parser.add_argument("--servers", type=lambda s: s.split(","),
                        help="only these servers: " + ", ".join(SERVERS))
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--note", help="a note printed in bold in each section written")
    parser.add_argument("--no-write", action="store_true",
                        help="print the sections only; leave docs/ alone")
    parser.add_argument("--list", action="store_true", help="list workloads and servers")
    opts = parser.parse_args()

    if opts.list:
        for wl in WORKLOADS.values():
            print(f"{wl.name:15} {wl.title}  [{', '.join(wl.servers) or 'loop_bench'}]")
        print("\nservers:")
        for spec in SERVERS.values():
            why = spec.missing()
            print(f"  {spec.name:14} {spec.label}" + (f"  (missing: {why})" if why else ""))
        return 0

    names = opts.workloads or ["all"]
    if "all" in names:
        names = list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s): {', '.join(unknown)}; choose from "
                     f"{', '.join(WORKLOADS)} or all")
    if opts.servers:
        bad = [s for s in opts.servers if s not in SERVERS]
        if bad:
            parser.error(f"unknown server(s): {', '.join(bad)}; choose from {', '.join(SERVERS)}")
    opts.warmup = opts.warmup if opts.warmup is not None else (1.0 if opts.quick else 2.0)
    opts.duration = opts.duration if opts.duration is not None else (3.0 if opts.quick else 10.0)
    if opts.idle_connections is None:
        opts.idle_connections = 10000
    if opts.rounds < 1:
        parser.error("--rounds must be at least 1")
    ncpu = os.cpu_count() or 1
    if max(opts.server_cpu, opts.client_cpu) >= ncpu:
        parser.error(f"this machine has {ncpu} CPU(s); pick --server-cpu/--client-cpu below that")
    if not shutil.which("taskset"):
        parser.error("taskset missing (util-linux)")

    # Both the harness (which opens the idle connections) and the servers it starts
    # (which inherit the limit) need an fd per connection.
    nofile = raise_nofile(opts.idle_connections + 1000)
    if nofile < opts.idle_connections + 100:
        log(f"warning: RLIMIT_NOFILE is {nofile}; lowering --idle-connections")
        opts.idle_connections = max(100, nofile - 200)
    # The harness itself is load: keep it on the client CPU.
    try:
        os.sched_setaffinity(0, {opts.client_cpu})
    except OSError:
        pass
    # Ctrl-C raises KeyboardInterrupt even when started with SIGINT ignored (`&` in a
    # script); the finally below then stops every server.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    workdir = tempfile.mkdtemp(prefix="tronada-bench-")
    try:
        for name in names:
            run_workload(opts, WORKLOADS[name], workdir)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        Server.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0
