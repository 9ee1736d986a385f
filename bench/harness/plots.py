"""Plots of a workload's medians with min–max bars, written to build/bench-plots/ (generated
output, kept out of git; matplotlib, skipped with a log line when it is not installed)."""

import re
import statistics

from .servers import SERVERS


def _pyplot():
    """matplotlib's pyplot on the file-only backend, or None without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def plot(wl, results, path):
    """Throughput and CPU per request (or memory per connection) per server; returns
    None, or why there is no plot."""
    plt = _pyplot()
    if plt is None:
        return "plot skipped: matplotlib missing (python3-matplotlib)"
    names = [n for n in wl.servers if any(k[0] == n for k in results)]
    names += sorted({k[0] for k in results} - set(names))
    keys = sorted({k[1] for k in results})
    width = 0.8 / max(1, len(names))
    if wl.kind == "throughput":
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        # The axis spells out what the table abbreviates.
        metrics = [("rps", "requests/s" if wl.unit == "req/s" else wl.unit),
                   ("cpu_us", "server CPU µs per request")]
    else:
        fig, axes = plt.subplots(1, 1, figsize=(6, 4))
        axes = [axes]
        metrics = [("private", "private bytes per idle connection")]
    for ax, (metric, ylabel) in zip(axes, metrics):
        for i, name in enumerate(names):
            xs, ys, lo, hi = [], [], [], []
            for j, key in enumerate(keys):
                runs = results.get((name, key))
                if not runs:
                    continue
                vals = [x[metric] for x in runs if x[metric] is not None]
                if not vals:
                    continue
                m = statistics.median(vals)
                xs.append(j + (i - (len(names) - 1) / 2) * width)
                ys.append(m)
                lo.append(m - min(vals))
                hi.append(max(vals) - m)
            bars = ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=SERVERS[name].label)
            ax.bar_label(bars, labels=[f"{y:,.0f}" if y >= 10 else f"{y:.1f}" for y in ys],
                         fontsize=7, padding=2)
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels([f"c{k}" if wl.kind == "throughput" else f"{k:,} conns" for k in keys])
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", alpha=0.3)
    if wl.plot_goal:
        value, label = wl.plot_goal
        axes[0].axhline(value, color="tab:red", linestyle="--", linewidth=1, label=label)
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle(f"{wl.name}: {wl.title} (median, bars min–max)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None


def plot_loop(table, path):
    """loop_bench's IOLoop/libuv ratios (parsed from its table) against the 0.8 goal."""
    plt = _pyplot()
    if plt is None:
        return "plot skipped: matplotlib missing (python3-matplotlib)"
    names, ratios = [], []
    for line in table.splitlines():
        m = re.match(r"\| `(\w+)`.*\*\*([\d.]+)\*\*", line)
        if m:
            names.append(m.group(1))
            ratios.append(float(m.group(2)))
    if not names:
        return "plot skipped: no ratios in loop_bench output"
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bars = ax.bar(names, ratios, color="tab:blue")
    ax.bar_label(bars, labels=[f"{r:.2f}" for r in ratios], fontsize=8)
    ax.axhline(0.8, color="tab:red", linestyle="--", label="goal 0.8")
    ax.axhline(1.0, color="gray", linewidth=0.8)
    ax.set_ylabel("tronada / raw libuv (ops/s)")
    ax.set_title("loop: IOLoop against raw libuv (median of 5 rounds)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None
