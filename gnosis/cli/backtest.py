"""``gnosis backtest``: replay a file or the synthetic market through the same engine."""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from gnosis.cli.common import (
    CommandError,
    add_common,
    check_output_path,
    config_from_args,
    dump_json,
    positive_int,
    print_summary,
)
from gnosis.model.events import DecisionMade
from gnosis.model.types import Bar, format_ns

AGENT_COLUMNS = ("hedge", "liquidity", "sentiment", "wyckoff", "markov")


def add_parser(sub: argparse._SubParsersAction) -> None:
    backtest = sub.add_parser("backtest", help="replay history or the synthetic market")
    add_common(backtest)
    source = backtest.add_mutually_exclusive_group()
    source.add_argument("--synthetic", action="store_true", help="use the synthetic market")
    source.add_argument("--data", type=Path, help="CSV or Parquet bars file")
    source.add_argument("--source", choices=("alpaca",), default=None,
                        help="download --symbols from Alpaca (--start, --end) into a cache")
    backtest.add_argument("--start", help="with --source alpaca: first day (YYYY-MM-DD)")
    backtest.add_argument("--end", help="with --source alpaca: last day (YYYY-MM-DD)")
    backtest.add_argument("--timeframe", default=None,
                          help="with --source alpaca: bar size, e.g. 1Min (default), 5Min, 1Hour")
    backtest.add_argument("--cache-dir", type=Path, default=None,
                          help="with --source alpaca: download cache (default ~/.cache/gnosis)")
    backtest.add_argument("--symbol", help="symbol of a --data file that has no symbol column")
    backtest.add_argument("--bars", type=positive_int, default=None,
                          help="synthetic bars to run (default: --days sessions)")
    backtest.add_argument("--days", type=positive_int, default=None,
                          help="sessions of synthetic market")
    backtest.add_argument("--decisions", type=Path, help="write one CSV row per bar and symbol")
    backtest.add_argument("--state-dir", type=Path, default=None,
                          help="also persist state and journal there (slower)")
    backtest.add_argument("--fresh", action="store_true",
                          help="with --state-dir: discard a run stored there")
    backtest.add_argument("--memory", choices=("on", "off"), default="off",
                          help="episodic memory (not built yet: only off)")
    backtest.add_argument("--no-progress", action="store_true", help="hide the progress bar")


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


@dataclass(slots=True)
class _Source:
    """What a backtest replays: the bars, how many, the feed object and what was dropped."""

    bars: Iterable[Bar]
    total: int | None
    feed: Any
    market: Any = None  # the synthetic market (ground truth), when it is the source
    quarantined: dict[str, int] = field(default_factory=dict)
    strategy: Any = None  # a strategy built for the source's inputs (Alpaca's news)


def _open_source(args: argparse.Namespace, config: Any) -> _Source:
    from gnosis.bootstrap import synthetic_market

    if args.source == "alpaca":
        from gnosis.adapters.alpaca.errors import AlpacaError
        from gnosis.adapters.alpaca.history import backtest_source

        try:
            got = backtest_source(args, config)
        except AlpacaError as exc:
            raise CommandError(str(exc)) from None
        return _Source(got["bars"], got["total"], got["feed"], quarantined=got["quarantined"],
                       strategy=got["strategy"])
    if args.data is not None:
        from gnosis.data.replay import ReplayError, ReplayFeed, load_bars

        try:
            replay = load_bars(args.data, symbol=args.symbol)
        except ReplayError as exc:
            raise CommandError(str(exc)) from None
        return _Source(replay.bars, len(replay.bars), ReplayFeed(replay),
                       quarantined=dict(replay.reasons))
    market = synthetic_market(config, args.bars)
    total = args.bars or market.total_bars
    return _Source(_limit(market.bars(), total), total, market, market)


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


def _limit(bars: Iterable[Bar], count: int) -> Iterator[Bar]:
    for index, bar in enumerate(bars):
        if index >= count:
            return
        yield bar


class _RegimeTruth:
    """Pairs (detected regime, the generator's true phase) for the synthetic market's score."""

    def __init__(self, market: Any) -> None:
        self.pairs: list[tuple[str, str]] = []
        self._phase_at = market.phase_at

    def on_decision_made(self, event: DecisionMade) -> None:
        regime = event.decision.regime
        if regime is not None and regime != "warming_up":
            self.pairs.append((regime, self._phase_at(event.decision.symbol, event.ts_event)))

    def score_into(self, summary: dict[str, Any]) -> None:
        if not self.pairs:
            return
        from gnosis.regime.detector import score_against_truth

        score = score_against_truth(self.pairs)
        summary["regime_accuracy"] = score["accuracy"]  # trend / range / volatility family
        summary["regime_accuracy_exact"] = score["exact_accuracy"]
        summary["regime_confusion"] = score["confusion"]


def main(args: argparse.Namespace) -> int:
    from gnosis.bootstrap import build_system

    check_output_path(args.decisions, "--decisions")
    config = config_from_args(args)
    source = _open_source(args, config)
    system = build_system(config, source.feed, market=source.market, state_dir=args.state_dir,
                          fresh=args.fresh, strategy=source.strategy)
    if system.store is not None and system.store.load() is not None:
        system.store.close()
        raise CommandError(f"{args.state_dir} already holds a run; a backtest starts from "
                           "nothing: use another --state-dir, or --fresh to discard it")
    engine = system.engine
    truth = None
    if source.market is not None and config.strategy.name == "agents":
        truth = _RegimeTruth(source.market)
        system.bus.subscribe(DecisionMade, truth.on_decision_made)
    decisions_file = None
    if args.decisions is not None:
        decisions_file = args.decisions.open("w", newline="")
        system.bus.subscribe(DecisionMade, DecisionWriter(decisions_file).on_decision_made)
    show = not (args.json or args.no_progress) and sys.stderr.isatty()
    started = time.perf_counter()
    try:
        for bar in _progress(source.bars, source.total, show):
            engine.on_bar(bar)
    finally:
        if decisions_file is not None:
            decisions_file.close()
        if system.store is not None:
            system.store.close()
    elapsed = time.perf_counter() - started
    summary = _summary(engine, config, source, elapsed)
    if truth is not None:
        truth.score_into(summary)
    _report(summary, args.json)
    return 0


def _summary(engine: Any, config: Any, source: _Source, elapsed: float) -> dict[str, Any]:
    summary = engine.summary()
    summary["bars_per_s"] = round(summary["bars"] / elapsed, 1) if elapsed > 0 else 0.0
    summary["elapsed_s"] = round(elapsed, 3)
    summary["strategy"] = config.strategy.name
    summary["symbols"] = list(getattr(source.feed, "symbols", ()))
    if source.quarantined:
        summary["quarantined"] = source.quarantined
    return summary


def _report(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(dump_json(summary))
        return
    print_summary(summary)
    if "regime_confusion" in summary:
        from gnosis.regime.detector import format_confusion

        print(f"\nregime vs the generator's phases: {summary['regime_accuracy']:.1%} by "
              f"family, {summary['regime_accuracy_exact']:.1%} exact (rows: true phase)")
        print(format_confusion(summary["regime_confusion"]))
