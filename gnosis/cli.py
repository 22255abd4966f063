"""Command line: ``gnosis run | backtest | bench | resume``."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from gnosis.core.config import ConfigError, GnosisConfig, load_config
from gnosis.model.events import DecisionMade
from gnosis.model.types import Bar, format_ns

AGENT_COLUMNS = ("hedge", "liquidity", "sentiment", "wyckoff", "markov")


def _symbols(text: str) -> tuple[str, ...]:
    symbols = tuple(s.strip().upper() for s in text.split(",") if s.strip())
    if not symbols:
        raise argparse.ArgumentTypeError("give at least one symbol, e.g. SPY or SPY,QQQ")
    return symbols


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gnosis", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--symbols", type=_symbols, default=None,
                       help="comma-separated symbols of the synthetic market (default SPY)")
        p.add_argument("--seed", type=int, default=None, help="synthetic market seed (default 7)")
        p.add_argument("--strategy", choices=("agents", "sma"), default=None,
                       help="agents: regime + five agents (default); sma: SMA crossover")
        p.add_argument("--json", action="store_true", help="print one JSON object of results")

    run = sub.add_parser("run", help="run the bot live (simulated market by default)")
    common(run)
    run.add_argument("--speed", type=float, default=60.0,
                     help="simulated seconds per real second (60: one 1-minute bar per second)")
    run.add_argument("--days", type=int, default=None, help="sessions of synthetic market")
    run.add_argument("--max-bars", type=int, default=None,
                     help="stop after this many live bars")
    run.add_argument("--warmup-days", type=int, default=None,
                     help="history sessions folded in before trading (default 2; HMM needs ~2)")
    run.add_argument("--state-dir", type=Path, default=None,
                     help="state, journal and memory files (default ./gnosis-state)")
    run.add_argument("--fresh", action="store_true",
                     help="start from an empty state instead of resuming")
    run.add_argument("--feed", choices=("sim",), default="sim",
                     help="sim: the embedded synthetic market")
    run.add_argument("--every", type=int, default=1, help="print every n-th quiet bar")
    run.add_argument("--quiet", action="store_true", help="no per-bar console lines")
    run.add_argument("--dashboard", action="store_true",
                     help="serve the web dashboard (not built yet)")

    backtest = sub.add_parser("backtest", help="replay history or the synthetic market")
    common(backtest)
    source = backtest.add_mutually_exclusive_group()
    source.add_argument("--synthetic", action="store_true", help="use the synthetic market")
    source.add_argument("--data", type=Path, help="CSV or Parquet bars file")
    backtest.add_argument("--symbol", help="symbol of a --data file that has no symbol column")
    backtest.add_argument("--bars", type=int, default=None,
                          help="synthetic bars to run (default: --days sessions)")
    backtest.add_argument("--days", type=int, default=None, help="sessions of synthetic market")
    backtest.add_argument("--decisions", type=Path, help="write one CSV row per bar and symbol")
    backtest.add_argument("--state-dir", type=Path, default=None,
                          help="also persist state and journal there (slower)")
    backtest.add_argument("--memory", choices=("on", "off"), default="off",
                          help="episodic memory (not built yet: only off)")
    backtest.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    bench = sub.add_parser("bench", help="measure the full pipeline")
    bench.add_argument("--bars", type=int, default=100_000)
    bench.add_argument("--strategy", choices=("agents", "sma"), default="agents")
    bench.add_argument("--seed", type=int, default=7)
    bench.add_argument("--json", action="store_true")

    resume = sub.add_parser("resume", help="lift a halt (drawdown breaker) in a stopped bot")
    resume.add_argument("--state-dir", type=Path, default=Path("gnosis-state"))
    return parser


def _config(args: argparse.Namespace) -> GnosisConfig:
    base = load_config()
    market = base.market.model_dump()
    if getattr(args, "symbols", None):
        market["symbols"] = args.symbols
    if getattr(args, "seed", None) is not None:
        market["seed"] = args.seed
    if getattr(args, "days", None) is not None:
        market["days"] = args.days
    if getattr(args, "warmup_days", None) is not None:
        market["warmup_days"] = args.warmup_days
    strategy = base.strategy.model_dump()
    if getattr(args, "strategy", None):
        strategy["name"] = args.strategy
    overrides: dict[str, Any] = {"market": market, "strategy": strategy}
    if getattr(args, "state_dir", None) is not None:
        overrides["state_dir"] = args.state_dir
    return load_config(**overrides)


# -- run ---------------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from gnosis.bootstrap import build_system, synthetic_market
    from gnosis.trading.console import ConsoleReporter
    from gnosis.trading.live_bot import LiveBot

    config = _config(args)
    state_dir = config.state_dir
    if args.fresh and (state_dir / "state.db").exists():
        for suffix in ("", "-wal", "-shm"):
            (state_dir / f"state.db{suffix}").unlink(missing_ok=True)
    market = synthetic_market(config, history=True)
    warmup_bars = market.bars_in_sessions(config.market.warmup_days)
    system = build_system(config, market, market=market, state_dir=state_dir)
    engine = system.engine
    if not args.quiet and not args.json:
        strategy = engine.strategy
        ConsoleReporter(system.bus, every=args.every, equity=lambda: engine.positions.equity,
                        regime_of=lambda symbol: getattr(strategy.regime_of(symbol), "last", None)
                        if hasattr(strategy, "regime_of") else None)
    if not args.json:
        print(
            f"gnosis run: simulated market {','.join(config.market.symbols)} (seed "
            f"{config.market.seed}, {config.market.warmup_days} history + "
            f"{config.market.days} live sessions from {config.market.start}), "
            f"strategy {config.strategy.name}, speed {args.speed:g}x, dry run (SimBroker), "
            f"state in {state_dir}/"
        )
        if args.dashboard:
            print("note: the web dashboard is not built yet; running without it")
    bot = LiveBot(engine, market, speed=args.speed, max_bars=args.max_bars,
                  warmup_bars=warmup_bars)
    summary = bot.run()
    summary["state_dir"] = str(state_dir)
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        _print_summary(summary)
    return 0


# -- backtest ----------------------------------------------------------------------------------
class DecisionWriter:
    """``--decisions FILE.csv``: one row per bar and symbol, the audit trail users diff."""

    def __init__(self, out: TextIO) -> None:
        self._writer = csv.writer(out)
        header = ["timestamp", "symbol", "close", "regime", "regime_confidence"]
        for agent in AGENT_COLUMNS:
            header += [f"{agent}_signal", f"{agent}_confidence"]
        header += ["decision", "confidence", "size"]
        self._writer.writerow(header)

    def on_decision_made(self, event: DecisionMade) -> None:
        decision = event.decision
        by_agent = {v.agent: v for v in decision.votes}
        row: list[Any] = [
            format_ns(event.ts_event),
            decision.symbol,
            f"{event.close:.4f}",
            decision.regime or "",
            "" if decision.regime_confidence is None else f"{decision.regime_confidence:.4f}",
        ]
        for agent in AGENT_COLUMNS:
            vote = by_agent.get(agent)
            if vote is None:
                row += ["", ""]
            elif vote.abstained:
                row += ["abstain", ""]
            else:
                row += [vote.signal, f"{vote.confidence:.4f}"]
        row += [decision.signal, f"{decision.confidence:.4f}", f"{event.quantity:g}"]
        self._writer.writerow(row)


def _progress(bars: Iterable[Bar], total: int | None, enabled: bool) -> Iterator[Bar]:
    if not enabled:
        yield from bars
        return
    from tqdm import tqdm

    with tqdm(total=total, unit="bar", unit_scale=True, mininterval=0.5, file=sys.stderr) as bar:
        pending = 0
        for item in bars:
            yield item
            pending += 1
            if pending == 2_000:
                bar.update(pending)
                pending = 0
        bar.update(pending)


def cmd_backtest(args: argparse.Namespace) -> int:
    from gnosis.bootstrap import build_system, synthetic_market

    config = _config(args)
    market = None
    quarantined: dict[str, int] = {}
    if args.data is not None:
        from gnosis.data.replay import ReplayError, ReplayFeed, load_bars

        try:
            replay = load_bars(args.data, symbol=args.symbol)
        except ReplayError as exc:
            print(f"gnosis backtest: {exc}", file=sys.stderr)
            return 2
        bars: Iterable[Bar] = replay.bars
        total: int | None = len(replay.bars)
        quarantined = dict(replay.reasons)
        feed: Any = ReplayFeed(replay)
    else:
        market = synthetic_market(config, args.bars)
        total = args.bars or market.total_bars
        bars = _limit(market.bars(), total)
        feed = market
    system = build_system(config, feed, market=market, state_dir=args.state_dir)
    engine = system.engine
    truth_pairs: list[tuple[str, str]] = []
    if market is not None and config.strategy.name == "agents":
        phase_at = market.phase_at

        def collect(event: DecisionMade) -> None:
            regime = event.decision.regime
            if regime is not None and regime != "warming_up":
                truth_pairs.append((regime, phase_at(event.decision.symbol, event.ts_event)))

        system.bus.subscribe(DecisionMade, collect)
    decisions_file = None
    if args.decisions is not None:
        decisions_file = args.decisions.open("w", newline="")
        system.bus.subscribe(DecisionMade, DecisionWriter(decisions_file).on_decision_made)
    show = not (args.json or args.no_progress) and sys.stderr.isatty()
    started = time.perf_counter()
    try:
        for bar in _progress(bars, total, show):
            engine.on_bar(bar)
    finally:
        if decisions_file is not None:
            decisions_file.close()
    elapsed = time.perf_counter() - started
    summary = engine.summary()
    summary["bars_per_s"] = round(summary["bars"] / elapsed, 1) if elapsed > 0 else 0.0
    summary["elapsed_s"] = round(elapsed, 3)
    summary["strategy"] = config.strategy.name
    summary["symbols"] = list(getattr(feed, "symbols", ()))
    if quarantined:
        summary["quarantined"] = quarantined
    if truth_pairs:
        from gnosis.regime.detector import format_confusion, score_against_truth

        score = score_against_truth(truth_pairs)
        summary["regime_accuracy"] = score["accuracy"]  # trend / range / volatility family
        summary["regime_accuracy_exact"] = score["exact_accuracy"]
        summary["regime_confusion"] = score["confusion"]
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        _print_summary(summary)
        if "regime_confusion" in summary:
            print(f"\nregime vs the generator's phases: {summary['regime_accuracy']:.1%} by "
                  f"family, {summary['regime_accuracy_exact']:.1%} exact (rows: true phase)")
            print(format_confusion(summary["regime_confusion"]))
    return 0


def _limit(bars: Iterable[Bar], count: int) -> Iterator[Bar]:
    for index, bar in enumerate(bars):
        if index >= count:
            return
        yield bar


def _print_summary(summary: dict[str, Any]) -> None:
    keys = ("bars", "trades", "final_equity", "total_return", "max_drawdown", "sharpe",
            "win_rate", "fees", "slippage", "bars_per_s", "trading_state")
    print("\nsummary")
    for key in keys:
        if key in summary:
            value = summary[key]
            if value is None:
                text = "n/a (fewer than 5 sessions)" if key == "sharpe" else "n/a"
            elif key in ("total_return", "max_drawdown", "win_rate"):
                text = f"{value:.2%}"
            elif isinstance(value, float):
                text = f"{value:,.2f}"
            else:
                text = str(value)
            print(f"  {key:<14} {text}")
    if summary.get("regime_counts"):
        print("  regimes        " + ", ".join(f"{k} {v}" for k, v in
                                              summary["regime_counts"].items()))
    if summary.get("refusals"):
        print("  refusals       " + ", ".join(f"{k} ({v})" for k, v in
                                              summary["refusals"].items()))


# -- bench -------------------------------------------------------------------------------------
def cmd_bench(args: argparse.Namespace) -> int:
    from gnosis.benchmark import run_pipeline_benchmark

    result = run_pipeline_benchmark(args.bars, strategy=args.strategy, seed=args.seed,
                                    progress=not args.json and sys.stderr.isatty())
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        for key, value in result.items():
            print(f"  {key:<28} {value}")
    return 0


# -- resume ------------------------------------------------------------------------------------
def cmd_resume(args: argparse.Namespace) -> int:
    from gnosis.trading.risk_manager import RiskManager
    from gnosis.trading.state import StateStore

    store = StateStore(args.state_dir)
    loaded = store.load()
    if loaded is None:
        print(f"no saved state in {args.state_dir}", file=sys.stderr)
        return 1
    sequence, snapshot = loaded
    risk = RiskManager()
    risk.restore(snapshot["risk"])
    change = risk.resume("resumed by operator (gnosis resume)")
    if change is None:
        print(f"trading state is already {risk.state.value}; nothing to do")
        return 0
    snapshot["risk"] = risk.snapshot()
    store.commit(sequence, snapshot)
    print(f"trading state {change.previous.value} -> {change.current.value}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    handlers = {"run": cmd_run, "backtest": cmd_backtest, "bench": cmd_bench,
                "resume": cmd_resume}
    try:
        return handlers[args.command](args)
    except ConfigError as exc:
        print(f"gnosis: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
