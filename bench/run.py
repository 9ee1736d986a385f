#!/usr/bin/python3
"""tronada's benchmark harness: starts servers, loads them, writes docs/benchmarks.md.

    /usr/bin/python3 bench/run.py --quick echo            # one workload, short runs
    /usr/bin/python3 bench/run.py http-plaintext http-close
    /usr/bin/python3 bench/run.py all                     # every workload
    /usr/bin/python3 bench/run.py --list

The server runs pinned to one CPU (--server-cpu, default 0) and the load generator to
another (--client-cpu, default 1), both with taskset. Each workload starts its servers
once (memory workloads: once per round), then runs ROUNDS rounds interleaved across
servers (the order rotates each round); each run is a warm-up followed by a measured
window. Reported: the median and min-max of throughput, the median p50/p99 latency,
and the server's CPU time per request (utime+stime of the server's process tree from
/proc/<pid>/stat over the measured window, divided by the requests completed).

Results go to stdout and, unless --no-write, into docs/benchmarks.md between the
markers <!-- bench:WORKLOAD --> and <!-- /bench:WORKLOAD --> (other sections are kept;
a missing section is appended), with a plot in docs/img/bench-WORKLOAD.png.

A server whose binary or interpreter module is missing is skipped with a note; so is a
workload whose load generator is missing. Servers are killed on exit, error or Ctrl-C.
Standard library only, plus matplotlib for the plots (skipped with a note if absent).

This file is the entry point only; the harness is the package bench/harness/ (its
__init__.py lists the modules, bench/README.md says how to add a workload).
"""

import sys
from pathlib import Path

# bench/ is on sys.path when this file is run as a script; make it so when it is not.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
