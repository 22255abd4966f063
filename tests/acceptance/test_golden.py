"""Golden numbers: seeded backtests whose results are pinned in committed files.

Any change in behaviour — a fill, a refusal, a regime, a vote, a cent of fees — shows up here
as a diff, so it is always a decision, never an accident. When a change is intended, rerun
with ``REGENERATE_GOLDEN=1`` (``make golden``), read the diff of the JSON files in
tests/acceptance/golden/, and commit it with the change that caused it, saying why.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from gnosis.cli import main

GOLDEN = Path(__file__).parent / "golden"
REGENERATE = os.environ.get("REGENERATE_GOLDEN") == "1"
# figures that depend on the machine, not on behaviour
UNPINNED = {"bars_per_s", "elapsed_s", "state_dir"}

CASES = {
    "synthetic_agents_seed7": ["--synthetic", "--bars", "20000", "--seed", "7"],
    "synthetic_sma_seed7": ["--synthetic", "--bars", "20000", "--seed", "7",
                            "--strategy", "sma"],
    "synthetic_agents_two_symbols_seed3": ["--synthetic", "--bars", "12000", "--seed", "3",
                                           "--symbols", "SPY,QQQ"],
}


def backtest(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["backtest", "--json", "--no-progress", *args]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    return {key: value for key, value in result.items() if key not in UNPINNED}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_numbers(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    result = backtest(CASES[name], capsys)
    path = GOLDEN / f"{name}.json"
    if REGENERATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    assert path.is_file(), f"no golden file {path}: run with REGENERATE_GOLDEN=1"
    expected = json.loads(path.read_text())
    assert result["trades"] > 0, "a golden run that does not trade pins nothing"
    differences = {key: (expected.get(key), result.get(key))
                   for key in sorted(set(expected) | set(result))
                   if expected.get(key) != result.get(key)}
    assert not differences, (
        f"{name} changed (golden, now): {differences}. If intended, regenerate with "
        "REGENERATE_GOLDEN=1 and commit the diff with the reason.")
