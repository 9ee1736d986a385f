"""What the harness reads from /proc about a server: its process tree, the CPU time it
used and the memory it holds."""

import os
import re


def proc_tree(root_pid):
    """root_pid and all its descendants, from /proc/*/stat."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        parents.setdefault(int(fields[1]), []).append(int(entry))
    pids, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(parents.get(pid, []))
    return pids


def cpu_ticks(pids):
    """utime + stime (clock ticks) summed over pids; vanished pids count 0."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)
    return total


def memory(pids):
    """Rss, Pss and Private (clean + dirty) in bytes, summed over pids (smaps_rollup)."""
    out = {"rss": 0, "pss": 0, "private": 0}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                text = f.read()
        except OSError:
            continue
        kb = {}
        for line in text.splitlines():
            m = re.match(r"(\w+):\s+(\d+) kB", line)
            if m:
                kb[m.group(1)] = int(m.group(2))
        out["rss"] += kb.get("Rss", 0) * 1024
        out["pss"] += kb.get("Pss", 0) * 1024
        out["private"] += (kb.get("Private_Clean", 0) + kb.get("Private_Dirty", 0)) * 1024
    return out
