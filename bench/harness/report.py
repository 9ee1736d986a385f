"""The report: a workload's results as a Markdown section of docs/benchmarks.md (its
table, the conditions it was measured in, its notes), and rewriting that section in
place."""

import os
import platform
import re
import subprocess

from .common import DOC, ROOT
from .fmt import fmt_bytes, fmt_ms, fmt_num, med
from .servers import SERVERS


def throughput_table(wl, results):
    ref = {}
    for (name, conns), runs in results.items():
        if name == wl.reference:
            ref[conns] = med([x["rps"] for x in runs])
    ref_label = SERVERS[wl.reference].label if wl.reference else ""
    lines = [
        f"| server | conns | {wl.unit}, median (min–max) | vs {ref_label} | p50 | p99 | "
        f"server CPU per request | server CPU use | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    order = {name: i for i, name in enumerate(wl.servers)}
    for (name, conns), runs in sorted(results.items(), key=lambda kv: (kv[0][1], order.get(kv[0][0], 99))):
        rps = [x["rps"] for x in runs]
        m = med(rps)
        ratio = f"{m / ref[conns]:.2f}×" if ref.get(conns) else "–"
        lines.append(
            f"| {SERVERS[name].label} | {conns} | **{fmt_num(m)}** ({fmt_num(min(rps))}–"
            f"{fmt_num(max(rps))}) | {ratio} | {fmt_ms(med([x['p50_ms'] for x in runs]))} | "
            f"{fmt_ms(med([x['p99_ms'] for x in runs]))} | "
            f"{fmt_num(med([x['cpu_us'] for x in runs]), 1)} µs | "
            f"{fmt_num(100 * (med([x['cpu_util'] for x in runs]) or 0))}% | "
            f"{sum(x['errors'] for x in runs)} |")
    return "\n".join(lines)


def memory_table(wl, results):
    ref = None
    for (name, n), runs in results.items():
        if name == wl.reference:
            ref = med([x["private"] for x in runs])
    ref_label = SERVERS[wl.reference].label if wl.reference else ""
    lines = [
        f"| server | connections | private bytes per connection, median (min–max) | "
        f"vs {ref_label} | Pss per connection | RSS per connection | RSS before → after |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    order = {name: i for i, name in enumerate(wl.servers)}
    for (name, n), runs in sorted(results.items(), key=lambda kv: order.get(kv[0][0], 99)):
        priv = [x["private"] for x in runs]
        m = med(priv)
        ratio = f"{m / ref:.2f}×" if ref else "–"
        lines.append(
            f"| {SERVERS[name].label} | {n:,} | **{fmt_bytes(m)}** ({fmt_bytes(min(priv))}–"
            f"{fmt_bytes(max(priv))}) | {ratio} | {fmt_bytes(med([x['pss'] for x in runs]))} | "
            f"{fmt_bytes(med([x['rss'] for x in runs]))} | "
            f"{med([x['before_rss'] for x in runs]) / 2**20:.1f} → "
            f"{med([x['after_rss'] for x in runs]) / 2**20:.1f} MiB |")
    return "\n".join(lines)


def machine_note(opts):
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = open("/proc/loadavg").read().split()[:3]
    return (f"{os.cpu_count()} CPUs ({model}), Linux {platform.release()}; server on CPU "
            f"{opts.server_cpu}, load generator on CPU {opts.client_cpu}; load average "
            f"at start {' '.join(load)}")


def git_rev():
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"],
                               capture_output=True, text=True).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except OSError:
        return "unknown"


def section(opts, wl, body, notes, started):
    """The workload's section: heading, conditions, `what`, the table, notes."""
    mode = (f"quick mode ({opts.warmup:g} s warm-up, {opts.duration:g} s measured)"
            if opts.quick else f"{opts.warmup:g} s warm-up, {opts.duration:g} s measured")
    versions = sorted({v for v in (SERVERS[n].version() for n in (opts.servers or wl.servers)) if v})
    lines = [f"### `{wl.name}`: {wl.title}", ""]
    meta = [f"Measured {started:%Y-%m-%d %H:%M} UTC on tronada {git_rev()}"]
    rounds = f"{opts.rounds} round{'s' if opts.rounds != 1 else ''}"
    if wl.kind == "throughput":
        meta.append(f"{mode}, {rounds} interleaved across servers")
    elif wl.kind == "memory":
        meta.append(f"{opts.idle_connections:,} connections, {rounds} interleaved across "
                    f"servers, a fresh server process each round")
    meta.append(machine_note(opts))
    if versions:
        meta.append("peers: " + ", ".join(versions))
    lines.append("; ".join(meta) + ".")
    lines.append("")
    if opts.note:
        lines += [f"**Note: {opts.note}**", ""]
    lines += [wl.what, ""]
    if body:
        lines += [body, ""]
    for note in notes:
        lines.append(f"- {note}")
    if notes:
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


DOC_HEADER = """# Benchmarks

Produced by `bench/run.py` (see `bench/README.md`); each section below is rewritten by
the workload of the same name and the others are left alone. The method follows
DESIGN.md's "Performance": public tools (wrk, plus `bench/echo_client` for line echo),
the server pinned to one core and the load generator to the other, runs interleaved
across servers, medians reported with their min–max, and the server's CPU time per
request from /proc so that servers faster than one wrk core can still be told apart.

Re-run a section with `/usr/bin/python3 bench/run.py WORKLOAD` (full length) or
`--quick` (short runs).

"""


def write_doc(name, text):
    """Replaces the workload's section of docs/benchmarks.md, or appends it."""
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{begin}\n{text}{end}\n"
    doc = DOC.read_text() if DOC.exists() else DOC_HEADER
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", re.S)
    if pattern.search(doc):
        doc = pattern.sub(lambda _: block, doc, count=1)
    else:
        if not doc.endswith("\n\n"):
            doc = doc.rstrip("\n") + "\n\n"
        doc += block
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(doc)
