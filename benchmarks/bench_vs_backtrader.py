"""Gnosis vs backtrader: the same SMA crossover on the same 100,000 1-minute bars.

Both engines: fees and slippage zero, market orders filled at the next bar's open, a fixed
quantity of 10 shares, long only (buy on an up-cross when flat, close on a down-cross). The
script first checks that both produce the identical list of fills, then prints bars/s for each
and the ratio (median of --repeat runs).

    python benchmarks/bench_vs_backtrader.py [--bars 100000] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gnosis.core.config import load_config  # noqa: E402
from gnosis.model.events import OrderFilled  # noqa: E402
from gnosis.model.types import Bar  # noqa: E402
from gnosis.strategies.sma_crossover import SmaCrossover  # noqa: E402
from gnosis.trading.engine import Engine  # noqa: E402
from gnosis.trading.sim_broker import SimBroker  # noqa: E402

FAST, SLOW, QUANTITY = 10, 30, 10
T0 = 1_704_205_800_000_000_000


def make_bars(n: int, seed: int = 7) -> pd.DataFrame:
    """A seeded random walk of valid 1-minute OHLCV bars around $450."""
    rng = np.random.default_rng(seed)
    close = 450.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0008, n)))
    open_ = np.r_[450.0, close[:-1]]
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.0004, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.0004, n)))
    volume = rng.integers(50_000, 500_000, n).astype(float)
    index = pd.to_datetime(T0 + np.arange(n, dtype=np.int64) * 60_000_000_000, utc=True)
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


def run_gnosis(frame: pd.DataFrame) -> tuple[float, list[tuple[int, str, float]]]:
    config = load_config(
        initial_cash=1e9,
        risk={"fixed_quantity": QUANTITY, "brackets": False, "allow_shorts": False},
        positions={"max_bars_held": 10**9},
        execution={"slippage_bps": 0.0, "impact_coefficient": 0.0, "sell_fee_bps": 0.0,
                   "commission_per_share": 0.0, "max_participation": 1.0},
    )
    engine = Engine(config, SmaCrossover(FAST, SLOW), SimBroker(config.execution))
    fills: list[tuple[int, str, float]] = []
    index_of = {}
    engine.bus.subscribe(
        OrderFilled,
        lambda e: fills.append((index_of[e.fill.ts_event], e.fill.side.value, e.fill.price)),
    )
    ts = (frame.index.as_unit("ns").asi8).tolist()
    columns = [frame[c].tolist() for c in ("open", "high", "low", "close", "volume")]
    started = time.perf_counter()
    on_bar = engine.on_bar
    for i, (t, o, h, lo, c, v) in enumerate(zip(ts, *columns)):
        index_of[t] = i
        on_bar(Bar("SPY", t, o, h, lo, c, v))
    elapsed = time.perf_counter() - started
    return elapsed, fills


def run_backtrader(frame: pd.DataFrame) -> tuple[float, list[tuple[int, str, float]]]:
    import backtrader as bt

    fills: list[tuple[int, str, float]] = []

    class SmaCross(bt.Strategy):
        def __init__(self) -> None:
            fast = bt.ind.SMA(period=FAST)
            slow = bt.ind.SMA(period=SLOW)
            self.crossover = bt.ind.CrossOver(fast, slow)

        def next(self) -> None:
            if not self.position:
                if self.crossover > 0:
                    self.buy(size=QUANTITY)
            elif self.crossover < 0:
                self.close()

        def notify_order(self, order) -> None:
            if order.status == order.Completed:
                fills.append((len(self.data) - 1, "buy" if order.isbuy() else "sell",
                              order.executed.price))

    cerebro = bt.Cerebro(stdstats=False)
    data = frame.copy()
    data.index = data.index.tz_localize(None)
    cerebro.adddata(bt.feeds.PandasData(dataname=data))
    cerebro.addstrategy(SmaCross)
    cerebro.broker.setcash(1e9)
    cerebro.broker.setcommission(commission=0.0)
    started = time.perf_counter()
    cerebro.run()
    elapsed = time.perf_counter() - started
    return elapsed, fills


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    frame = make_bars(args.bars)
    gnosis_times, backtrader_times = [], []
    gnosis_fills: list = []
    backtrader_fills: list = []
    for _ in range(args.repeat):
        elapsed, gnosis_fills = run_gnosis(frame)
        gnosis_times.append(elapsed)
        elapsed, backtrader_fills = run_backtrader(frame)
        backtrader_times.append(elapsed)
    identical = len(gnosis_fills) == len(backtrader_fills) and all(
        a[0] == b[0] and a[1] == b[1] and abs(a[2] - b[2]) < 1e-9
        for a, b in zip(gnosis_fills, backtrader_fills)
    )
    gnosis_rate = args.bars / statistics.median(gnosis_times)
    backtrader_rate = args.bars / statistics.median(backtrader_times)
    result = {
        "bars": args.bars,
        "fills_gnosis": len(gnosis_fills),
        "fills_backtrader": len(backtrader_fills),
        "identical_fills": identical,
        "gnosis_bars_per_s": round(gnosis_rate, 1),
        "backtrader_bars_per_s": round(backtrader_rate, 1),
        "ratio": round(gnosis_rate / backtrader_rate, 2),
        "repeat": args.repeat,
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:<24} {value}")
    if not identical:
        for a, b in zip(gnosis_fills, backtrader_fills):
            if a != b:
                print(f"first difference: gnosis {a} vs backtrader {b}", file=sys.stderr)
                break
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
