"""Run one benchmark step in a child process: wall time and that child's own peak memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CLI = Path(sys.executable).with_name("churnguard")


def run_child(command: list[str]) -> tuple[float, int, bytes]:
    """Run ``command``; return (wall seconds, peak RSS in MB of that child alone, its stdout).

    Peak memory is the child's ``ru_maxrss`` from ``os.wait4`` (the benchmark script itself is
    not counted).  stderr goes to a temporary file, so a chatty child cannot block on a full pipe.
    """
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err)
        out = proc.stdout.read() if proc.stdout else b""
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(command)} failed:\n{err.read().decode(errors='replace')}")
    return seconds, usage.ru_maxrss // 1024, out


def run_cli(args: list[str]) -> tuple[float, int, dict[str, Any]]:
    """Run ``churnguard ARGS``; return (wall seconds, peak RSS MB, its JSON output or {})."""
    seconds, peak, out = run_child([str(CLI), *args])
    return seconds, peak, json.loads(out) if out.strip().startswith(b"{") else {}
