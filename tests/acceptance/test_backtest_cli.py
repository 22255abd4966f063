"""`gnosis backtest` as a user runs it: a real process, its JSON and its decisions CSV."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gnosis.agents import AGENT_NAMES

REQUIRED = ("trades", "final_equity", "total_return", "max_drawdown", "sharpe", "win_rate",
            "fees", "slippage", "bars", "bars_per_s", "regime_counts", "votes")
TIMING = ("bars_per_s", "elapsed_s")


def gnosis(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gnosis.cli", *args], capture_output=True,
                          text=True, timeout=600)


def backtest_json(*args: str) -> dict:
    done = gnosis("backtest", "--json", "--no-progress", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["agents", "sma"])
def test_synthetic_backtest_is_deterministic_and_complete(strategy: str) -> None:
    args = ("--synthetic", "--bars", "12000", "--seed", "7", "--strategy", strategy)
    first, second = backtest_json(*args), backtest_json(*args)
    for key in REQUIRED:
        assert key in first, key
    assert first["bars"] == 12000
    assert {k: v for k, v in first.items() if k not in TIMING} == \
        {k: v for k, v in second.items() if k not in TIMING}
    assert first["trades"] > 0, "the strategy must trade on the synthetic market"
    if strategy == "agents":
        assert set(first["votes"]) == set(AGENT_NAMES)
        for tally in first["votes"].values():
            assert set(tally) == {"-1", "0", "1", "abstain", "off"}
        assert sum(first["regime_counts"].values()) == 12000
        assert 0.0 <= first["regime_accuracy"] <= 1.0


@pytest.mark.slow
def test_decisions_csv_has_one_row_per_bar_and_blank_inactive_agents(tmp_path: Path) -> None:
    path = tmp_path / "decisions.csv"
    backtest_json("--synthetic", "--bars", "3000", "--seed", "7", "--symbols", "SPY,QQQ",
                  "--decisions", str(path))
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3000
    expected = ["timestamp", "symbol", "close", "regime", "regime_confidence"]
    for agent in AGENT_NAMES:
        expected += [f"{agent}_signal", f"{agent}_confidence"]
    expected += ["decision", "confidence", "size"]
    assert list(rows[0]) == expected
    assert {r["symbol"] for r in rows} == {"SPY", "QQQ"}
    assert rows[0]["regime"] == "warming_up"
    ready = [r for r in rows if r["regime"] != "warming_up"]
    assert any(r["wyckoff_signal"] == "" for r in ready), "inactive agents are blank"
    assert any(r["wyckoff_signal"] != "" for r in ready), "wyckoff must switch on somewhere"
    for r in ready:
        assert r["hedge_signal"] in ("-1", "0", "1")  # always active
        assert r["decision"] in ("-1", "0", "1")


def test_bad_data_file_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bars.csv"
    bad.write_text("this,is,not\nbar,data,at all\n")
    done = gnosis("backtest", "--data", str(bad), "--symbol", "SPY")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "column" in done.stderr.lower()
    missing = gnosis("backtest", "--data", str(tmp_path / "nope.csv"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def test_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "gnosis.cli", "backtest", "--synthetic",
                           "--bars", "10"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "GNOSIS_RISK__MAX_POSITIONS": "many"},
                          cwd=tmp_path)
    assert done.returncode == 2
    assert "max_positions" in done.stderr and "Traceback" not in done.stderr
