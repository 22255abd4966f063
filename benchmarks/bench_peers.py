"""Gnosis side by side with backtrader and NautilusTrader, on the same 100,000 bars, one process.

Runs, on one seeded random walk of 1-minute bars (prices in cents, as an exchange prints them):

1. gnosis SMA crossover (``Engine`` + ``SmaCrossover`` + ``SimBroker``);
2. backtrader, the same SMA crossover;
3. NautilusTrader (``BacktestEngine``, ``SimpleMovingAverage``), the same crossover, with its
   default post-run analysis and without it (when ``nautilus_trader`` is installed: the
   ``peers`` extra, ``pip install -e '.[peers]'``);
4. gnosis's full pipeline (regime + HMM + five agents + consensus + risk + positions +
   SimBroker, the compiled fast path) and its reference per-bar path, on the same bars (no
   options chain or news on these bars: Hedge abstains, Sentiment runs on price and volume).

The SMA runs must agree fill for fill (index, side, price) before any rate is printed:
backtrader fills a market order at the next bar's open, as gnosis does; NautilusTrader fills it
on the bar it was decided on, at that bar's close, which on these bars is the next bar's open
to the cent (each bar opens at the previous close), so its fills are compared one bar earlier.
Rates are bars per second of the timed run (medians of ``--repeat`` runs, runs interleaved);
ratios are gnosis over the peer.

    python benchmarks/bench_peers.py [--bars 100000] [--repeat 3] [--json]
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_vs_backtrader import FAST, QUANTITY, SLOW, T0, run_backtrader, run_gnosis  # noqa: E402

from gnosis.core.config import load_config  # noqa: E402
from gnosis.model.types import Bar  # noqa: E402

Fill = tuple[int, str, float]


PRICE_DECIMALS = 6  # prices every engine represents exactly (NautilusTrader rounds to them)


def make_bars(n: int, seed: int = 7) -> pd.DataFrame:
    """A seeded random walk of valid 1-minute OHLCV bars around $450, in millionths of a
    dollar (fine enough that two SMAs computed by different engines never disagree about a
    crossover); each bar opens at the previous bar's close."""
    rng = np.random.default_rng(seed)
    d = PRICE_DECIMALS
    close = np.round(450.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0008, n))), d)
    open_ = np.r_[450.0, close[:-1]]
    high = np.round(np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.0004, n))), d)
    low = np.round(np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.0004, n))), d)
    high = np.maximum(high, np.maximum(open_, close))
    low = np.minimum(low, np.minimum(open_, close))
    volume = rng.integers(50_000, 500_000, n).astype(float)
    index = pd.to_datetime(T0 + np.arange(n, dtype=np.int64) * 60_000_000_000, utc=True)
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


def run_nautilus(frame: pd.DataFrame, analysis: bool) -> tuple[float, list[Fill]]:
    from nautilus_trader.backtest.config import BacktestEngineConfig
    from nautilus_trader.backtest.engine import BacktestEngine
    from nautilus_trader.config import LoggingConfig, StrategyConfig
    from nautilus_trader.indicators.averages import SimpleMovingAverage
    from nautilus_trader.model.currencies import USD
    from nautilus_trader.model.data import BarType
    from nautilus_trader.model.enums import AccountType, OmsType, OrderSide
    from nautilus_trader.model.identifiers import InstrumentId, Symbol, Venue
    from nautilus_trader.model.instruments import Equity
    from nautilus_trader.model.objects import Money, Price, Quantity
    from nautilus_trader.persistence.wranglers import BarDataWrangler
    from nautilus_trader.trading.strategy import Strategy

    instrument = Equity(
        instrument_id=InstrumentId(Symbol("SPY"), Venue("XNAS")), raw_symbol=Symbol("SPY"),
        currency=USD, price_precision=PRICE_DECIMALS,
        price_increment=Price.from_str(f"{10 ** -PRICE_DECIMALS:.{PRICE_DECIMALS}f}"),
        lot_size=Quantity.from_int(1), ts_event=0, ts_init=0)
    bar_type = BarType.from_str("SPY.XNAS-1-MINUTE-LAST-EXTERNAL")
    bars = BarDataWrangler(bar_type, instrument).process(frame)
    index_of = {bar.ts_event: i for i, bar in enumerate(bars)}
    fills: list[Fill] = []

    class SmaCross(Strategy):
        """Buy on an up-cross when flat, close on a down-cross (gnosis's SmaCrossover rule)."""

        def __init__(self) -> None:
            super().__init__(StrategyConfig(strategy_id="SMA-001"))
            self.fast = SimpleMovingAverage(FAST)
            self.slow = SimpleMovingAverage(SLOW)
            self.last_diff = float("nan")
            self.long = False

        def on_start(self) -> None:
            self.register_indicator_for_bars(bar_type, self.fast)
            self.register_indicator_for_bars(bar_type, self.slow)
            self.subscribe_bars(bar_type)

        def on_bar(self, bar) -> None:  # type: ignore[no-untyped-def]
            if not self.slow.initialized:
                return
            diff = self.fast.value - self.slow.value
            previous, self.last_diff = self.last_diff, diff
            if previous != previous:
                return
            side = None
            if previous <= 0 < diff and not self.long:
                side, self.long = OrderSide.BUY, True
            elif previous >= 0 > diff and self.long:
                side, self.long = OrderSide.SELL, False
            if side is not None:
                self.submit_order(self.order_factory.market(
                    instrument.id, side, Quantity.from_int(QUANTITY)))

        def on_order_filled(self, event) -> None:  # type: ignore[no-untyped-def]
            fills.append((index_of[event.ts_event], "buy" if event.order_side == OrderSide.BUY
                          else "sell", float(event.last_px)))

    engine = BacktestEngine(BacktestEngineConfig(
        logging=LoggingConfig(bypass_logging=True), run_analysis=analysis))
    engine.add_venue(Venue("XNAS"), oms_type=OmsType.NETTING, account_type=AccountType.CASH,
                     starting_balances=[Money(1e9, USD)], base_currency=USD)
    engine.add_instrument(instrument)
    engine.add_data(bars)
    engine.add_strategy(SmaCross())
    started = time.perf_counter()
    engine.run()
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed, fills


def run_pipeline(frame: pd.DataFrame, fast: bool) -> tuple[float, int]:
    """gnosis's full agent pipeline over the same bars; (seconds, trades)."""
    from gnosis.bootstrap import build_system
    from gnosis.core import background

    config = load_config(strategy={"name": "agents", "fast": fast})
    if fast:
        from gnosis.strategies.fast import warm_up_compiled

        warm_up_compiled()
    engine = build_system(config, None).engine  # type: ignore[arg-type]
    ts = frame.index.as_unit("ns").asi8.tolist()
    columns = [frame[c].tolist() for c in ("open", "high", "low", "close", "volume")]
    bars = [Bar("SPY", t, o, h, lo, c, v) for t, o, h, lo, c, v in zip(ts, *columns)]
    on_bar = engine.on_bar
    background.use_worker_thread()  # HMM fits off the core thread, as live
    worker = background.worker_cpu_seconds()
    try:
        started = time.perf_counter()
        for bar in bars:
            on_bar(bar)
        elapsed = time.perf_counter() - started
    finally:
        background.use_inline()
    # every cost on one core: the worker's fit time is added to the loop's
    elapsed += background.worker_cpu_seconds() - worker
    return elapsed, engine.summary()["trades"]


def same_fills(a: list[Fill], b: list[Fill], shift: int = 0) -> bool:
    return len(a) == len(b) and all(
        x[0] == y[0] + shift and x[1] == y[1] and abs(x[2] - y[2]) < 1e-9 for x, y in zip(a, b))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    frame = make_bars(args.bars)
    try:
        import nautilus_trader  # noqa: F401

        have_nautilus = True
    except ImportError:
        have_nautilus = False
    times: dict[str, list[float]] = {}
    fills: dict[str, list[Fill]] = {}
    trades: dict[str, int] = {}
    runs = {
        "gnosis_sma": lambda: run_gnosis(frame),
        "backtrader_sma": lambda: run_backtrader(frame),
        "gnosis_pipeline_fast": lambda: run_pipeline(frame, True),
        "gnosis_pipeline_reference": lambda: run_pipeline(frame, False),
    }
    if have_nautilus:
        runs["nautilus_sma"] = lambda: run_nautilus(frame, analysis=True)
        runs["nautilus_sma_no_analysis"] = lambda: run_nautilus(frame, analysis=False)
    for _ in range(args.repeat):
        for name, run in runs.items():
            elapsed, result = run()
            times.setdefault(name, []).append(elapsed)
            if isinstance(result, list):
                fills[name] = result
            else:
                trades[name] = result
    rates = {name: round(args.bars / statistics.median(t), 1) for name, t in times.items()}
    checks = {"backtrader_identical_fills": same_fills(fills["gnosis_sma"],
                                                      fills["backtrader_sma"])}
    if have_nautilus:
        # a market order decided on the last bar fills there in NautilusTrader; gnosis has no
        # next bar to fill it on
        nautilus = [f for f in fills["nautilus_sma"] if f[0] < args.bars - 1]
        checks["nautilus_identical_fills"] = same_fills(fills["gnosis_sma"], nautilus, shift=1)
    checks["pipelines_identical_trades"] = (trades["gnosis_pipeline_fast"]
                                            == trades["gnosis_pipeline_reference"])
    result: dict = {
        "bars": args.bars,
        "repeat": args.repeat,
        "fills": {name: len(f) for name, f in fills.items()},
        **checks,
        "bars_per_s": rates,
        "ratios": {
            "gnosis_sma / backtrader_sma": round(rates["gnosis_sma"] / rates["backtrader_sma"], 2),
            "gnosis_pipeline_fast / backtrader_sma": round(
                rates["gnosis_pipeline_fast"] / rates["backtrader_sma"], 2),
            "gnosis_pipeline_fast / gnosis_pipeline_reference": round(
                rates["gnosis_pipeline_fast"] / rates["gnosis_pipeline_reference"], 2),
        },
        "nautilus_trader": "installed" if have_nautilus else
        "not installed (pip install -e '.[peers]'): its rows are left out",
    }
    if have_nautilus:
        result["ratios"].update({
            "gnosis_sma / nautilus_sma": round(rates["gnosis_sma"] / rates["nautilus_sma"], 2),
            "gnosis_sma / nautilus_sma_no_analysis": round(
                rates["gnosis_sma"] / rates["nautilus_sma_no_analysis"], 2),
            "gnosis_pipeline_fast / nautilus_sma": round(
                rates["gnosis_pipeline_fast"] / rates["nautilus_sma"], 2),
        })
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=1))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
