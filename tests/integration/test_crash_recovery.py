"""Kill a real ``gnosis run`` with SIGKILL at random moments; the restarted bot must end exactly
where an uninterrupted run ends: same positions, orders, journal and equity, no duplicate order.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BARS = 2_000
KILLS = 12
FAST = 10_000_000  # no pacing: the result does not depend on speed
WARMUP = 780  # --warmup-days 1: one 390-minute session of history for each of 2 symbols
PACED = 3_000  # 50 simulated minutes (100 bars of 2 symbols) a second: kills land mid-run


def gnosis_run(state_dir: Path, strategy: str, speed: int = FAST) -> list[str]:
    return [
        sys.executable, "-m", "gnosis.cli", "run", "--state-dir", str(state_dir),
        "--strategy", strategy, "--symbols", "SPY,QQQ", "--seed", "3", "--days", "3",
        "--warmup-days", "1",
        "--speed", str(speed), "--max-bars", str(BARS), "--quiet", "--json",
    ]


def journal(state_dir: Path) -> dict[str, list[tuple]]:
    db = sqlite3.connect(state_dir / "state.db")
    try:
        tables = {
            "trades": db.execute("SELECT * FROM trades ORDER BY rowid").fetchall(),
            "fills": db.execute("SELECT * FROM fills ORDER BY rowid").fetchall(),
            "orders": db.execute("SELECT * FROM orders ORDER BY rowid").fetchall(),
            "equity": db.execute("SELECT * FROM equity ORDER BY sequence").fetchall(),
        }
        sequence = db.execute("SELECT sequence FROM snapshot").fetchone()[0]
    finally:
        db.close()
    tables["sequence"] = [(sequence,)]
    return tables


def committed(state_dir: Path) -> int:
    """Bars the state store has committed so far (0 before the first commit)."""
    if not (state_dir / "state.db").exists():
        return 0
    db = sqlite3.connect(state_dir / "state.db", timeout=10)
    try:
        row = db.execute("SELECT sequence FROM snapshot").fetchone()
    except sqlite3.OperationalError:  # the schema is not created yet
        return 0
    finally:
        db.close()
    return 0 if row is None else int(row[0])


def without_run_id(rows: list[tuple]) -> list[tuple]:
    """Order ids embed a per-state-dir run id; compare them without it."""
    def strip(value: object) -> object:
        if isinstance(value, str) and value.startswith("gn-"):
            return value.split("-", 2)[2]
        return value

    return [tuple(strip(v) for v in row) for row in rows]


# a large account against a 1% participation cap: most fills are pieces of an order (645 of
# 734 in the reference run), so kills land between the pieces of entries, legs and exits
IN_PIECES = {"GNOSIS_INITIAL_CASH": "100000000", "GNOSIS_EXECUTION__MAX_PARTICIPATION": "0.01"}


@pytest.mark.parametrize(("strategy", "extra_env"), [("sma", {}), ("agents", {}),
                                                     ("agents", IN_PIECES)],
                         ids=["sma", "agents", "agents-fills-in-pieces"])
def test_sigkill_at_random_moments_changes_nothing(tmp_path: Path, strategy: str,
                                                   extra_env: dict[str, str]) -> None:
    seed = int(os.environ.get("KILL_SEED", "20261124"))
    print(f"kill-timing seed {seed}")
    rng = random.Random(seed)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **extra_env}

    reference_dir = tmp_path / "reference"
    done = subprocess.run(gnosis_run(reference_dir, strategy), capture_output=True, text=True,
                          env=env, timeout=600, check=True)
    reference_summary = json.loads(done.stdout.strip().splitlines()[-1])
    reference = journal(reference_dir)
    assert reference["sequence"] == [(WARMUP + BARS,)]  # warm-up bars commit, never trade
    if extra_env:  # the scenario must do what it is named for
        pieces = sum(1 for row in reference["fills"] if row[9] > 0)  # remaining after the fill
        assert pieces > len(reference["fills"]) // 2, (pieces, len(reference["fills"]))

    crash_dir = tmp_path / "crashed"
    progress = []
    kills = 0
    while kills < KILLS:
        before = committed(crash_dir)
        process = subprocess.Popen(gnosis_run(crash_dir, strategy, PACED),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        # Wait until this process is committing bars (start-up time varies with machine load),
        # then let it run a random while longer and kill it wherever it happens to be.
        deadline = time.monotonic() + 120
        while committed(crash_dir) <= before and process.poll() is None:
            assert time.monotonic() < deadline, "the restarted bot made no progress"
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.6))
        if process.poll() is not None:  # finished before we could kill it
            break
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        kills += 1
        progress.append(committed(crash_dir))
    final = subprocess.run(gnosis_run(crash_dir, strategy), capture_output=True, text=True,
                           env=env, timeout=600, check=True)
    crashed_summary = json.loads(final.stdout.strip().splitlines()[-1])
    crashed = journal(crash_dir)

    assert kills >= 10, f"only {kills} kills landed before the run finished"
    assert len(set(progress)) >= 3, f"kills did not land at distinct moments: {progress}"
    for table in ("trades", "fills", "orders", "equity", "sequence"):
        assert without_run_id(crashed[table]) == without_run_id(reference[table]), table
    order_ids = [row[0] for row in crashed["orders"]]
    assert len(order_ids) == len(set(order_ids)), "an order was submitted twice"
    for key in ("final_equity", "trades", "open_positions", "fees", "slippage", "sharpe",
                "max_drawdown", "trading_state"):
        assert crashed_summary[key] == reference_summary[key], key
    assert reference_summary["trades"] > 0, "the scenario must trade to prove anything"
