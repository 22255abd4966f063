"""The same decisions from ``gnosis backtest --data FILE`` and from ``gnosis run --feed alpaca
--broker sim`` against ``gnosis sim-exchange --data FILE``: the live path (stream, minute
barrier, backfill on connect, SimBroker dry run) replays the file exactly as a backtest does.
Both are real processes; the decisions CSVs are compared row by row. With the agents, neither
side has options (Hedge abstains) or news: a file without --options/--news, a simulator
replaying a file without them."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gnosis.data.replay import write_bars_csv
from gnosis.data.synthetic import SyntheticMarket
from tests.support.sim_exchange import exchange_process

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
LIVE_BARS = 500  # 250 minutes of two symbols


def rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


@pytest.mark.parametrize("strategy", ["sma", "agents"])
def test_backtest_and_the_alpaca_dry_run_decide_alike(tmp_path: Path, strategy: str) -> None:
    bars = tmp_path / "bars.csv"
    write_bars_csv(SyntheticMarket(("SPY", "QQQ"), seed=3, start="2024-03-04", days=1).bars(),
                   bars)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALPACA_", "GNOSIS_"))}
    env.update(GNOSIS_STRATEGY__NAME=strategy, GNOSIS_STRATEGY__SMA_FAST="3",
               GNOSIS_STRATEGY__SMA_SLOW="8", PYTHONUNBUFFERED="1")
    backtest = tmp_path / "backtest.csv"
    # no warm-up on either side: the live run below starts trading at the first bar too
    subprocess.run([sys.executable, "-m", "gnosis.cli", "backtest", "--data", str(bars),
                    "--warmup-bars", "0", "--decisions", str(backtest), "--json"], env=env,
                   check=True,
                   capture_output=True, text=True, timeout=240)
    live = tmp_path / "live.csv"
    with exchange_process("--data", str(bars), "--history-days", "0", "--speed",
                          "2400") as proc:
        env.update(ALPACA_BASE_URL=proc.base_url, ALPACA_DATA_URL=proc.base_url,
                   ALPACA_STREAM_URL=proc.stream_url, ALPACA_API_KEY="k",
                   ALPACA_SECRET_KEY="s")
        result = subprocess.run(
            [sys.executable, "-m", "gnosis.cli", "run", "--feed", "alpaca", "--broker", "sim",
             "--symbols", "SPY,QQQ", "--warmup-days", "0", "--max-bars", str(LIVE_BARS),
             "--decisions", str(live), "--state-dir", str(tmp_path / "state"), "--quiet"],
            env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    expected, got = rows(backtest), rows(live)
    assert got[0] == expected[0]  # the same columns
    assert len(got) - 1 >= LIVE_BARS
    assert got[1:] == expected[1:len(got)]  # the same bars, in the same order, decided alike
    assert sum(1 for row in got[1:] if row[-3] != "0") > 10  # decisions, not all holds
    assert sum(1 for row in got[1:] if row[-1] != "0") > 3  # orders sized alike too
