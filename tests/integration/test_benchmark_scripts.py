"""The benchmark scripts still run against the current engine: each once, at a toy size, in
its own process (the figures are not checked, only that the script finishes and reports).
`bench_dashboard_fanout.py` wrapped `Engine.on_bar` without the `commit` argument the live bot
passes since burst commits, and failed at its first bar; nothing ran it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("args", [
    ["bench_dashboard_fanout.py", "--runs", "1", "--bars", "30", "--clients", "2",
     "--speed", "6000", "--json"],
    ["bench_live_state.py", "--symbols", "3", "--minutes", "5"],
    ["bench_memory_recall.py", "--episodes", "300", "--recalls", "20", "--writes", "5",
     "--json"],
    ["bench_vs_backtrader.py", "--bars", "3000", "--repeat", "1", "--json"],
], ids=lambda args: args[0])
def test_a_benchmark_script_runs_to_its_report(args: list[str], tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / args[0]), *args[1:]],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2_000:]
    assert done.stdout.strip(), done.stderr[-2_000:]
