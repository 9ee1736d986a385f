"""The `tronada` program's outer contract: version, help, and how usage errors fail.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration/test_cli.py
The binary is $TRONADA_BUILD_DIR/bin/tronada (default: build/ at the repository root).
"""

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_DIR = Path(os.environ.get("TRONADA_BUILD_DIR", "build"))
if not BUILD_DIR.is_absolute():
    BUILD_DIR = REPO_ROOT / BUILD_DIR
TRONADA = BUILD_DIR / "bin" / "tronada"

USAGE_ERROR = 2


def project_version():
    text = (REPO_ROOT / "CMakeLists.txt").read_text()
    match = re.search(r"project\(\s*tronada\s+VERSION\s+([0-9][0-9.]*)", text)
    assert match, "CMakeLists.txt declares no project version"
    return match.group(1)


def run(*args):
    if not TRONADA.exists():
        pytest.fail(f"{TRONADA} not found; build first or set TRONADA_BUILD_DIR")
    return subprocess.run(
        [str(TRONADA), *args], capture_output=True, text=True, timeout=30, check=False
    )


def test_version_prints_name_and_project_version():
    result = run("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"tronada {project_version()}"
    assert result.stderr == ""


def test_help_describes_the_program_and_its_options():
    result = run("--help")
    assert result.returncode == 0, result.stderr
    assert "Tornado" in result.stdout
    assert "Usage: tronada" in result.stdout
    for flag in ("--version", "--log-level", "--log-format", "--help"):
        assert flag in result.stdout
    assert result.stderr == ""


def test_short_help_flag():
    result = run("-h")
    assert result.returncode == 0
    assert "Usage: tronada" in result.stdout


def test_unknown_flag_is_a_usage_error_on_stderr():
    result = run("--no-such-flag")
    assert result.returncode == USAGE_ERROR
    assert "--no-such-flag" in result.stderr
    assert result.stdout == ""


def test_bad_log_level_names_the_flag_and_value():
    result = run("--log-level", "loud")
    assert result.returncode == USAGE_ERROR
    assert "--log-level" in result.stderr
    assert "loud" in result.stderr
    assert result.stdout == ""


def test_bad_log_format_names_the_flag_and_value():
    result = run("--log-format", "xml")
    assert result.returncode == USAGE_ERROR
    assert "--log-format" in result.stderr
    assert "xml" in result.stderr


def test_unknown_command_is_a_usage_error():
    result = run("frobnicate")
    assert result.returncode == USAGE_ERROR
    assert "frobnicate" in result.stderr


def test_no_command_prints_help_to_stderr_and_fails():
    result = run()
    assert result.returncode == USAGE_ERROR
    assert "Usage: tronada" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("level", ["debug", "info", "warning", "error", "critical", "INFO"])
def test_valid_global_log_options_are_accepted(level):
    # No command follows, so the run still ends in the no-command usage error, but not in an
    # option error.
    result = run("--log-level", level, "--log-format", "json")
    assert result.returncode == USAGE_ERROR
    assert "Usage: tronada" in result.stderr
    assert "--log-level:" not in result.stderr
