"""Paths and constants every part of the harness shares, and its one way to log."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
BUILD = Path(os.environ.get("TRONADA_BUILD_DIR", ROOT / "build"))
BIN = BUILD / "bin"
PEERS = ROOT / "bench" / "peers"  # the peers' own scripts (tornado_hello.py, php/, ...)
DOC = ROOT / "docs" / "benchmarks.md"
# Plots are generated output: beside the build, never in git (the tables in DOC carry
# the figures).
IMG = BUILD / "bench-plots"
PYTHON = "/usr/bin/python3"  # Debian's, whatever python3 comes first on PATH
CLK_TCK = os.sysconf("SC_CLK_TCK")
HOST = "127.0.0.1"


def log(msg):
    """Progress goes to stderr; stdout carries only the sections written."""
    print(msg, file=sys.stderr, flush=True)
