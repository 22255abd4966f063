"""``gnosis backtest``: replay a file or the synthetic market through the same engine.

A file's bars come at the interval inferred from its timestamps (or ``--timeframe``); the first
``--warmup-bars`` of each symbol are folded into the detector, the HMM and the agents without
trading (``Engine.warm_up``), as ``gnosis run`` does with its history, and are not counted in
the results. The agents read only real side inputs on a file (``--options``, ``--news``); the
synthetic market's simulated ones can be switched off with ``--sim-inputs``.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import sys
import time
from collections import Counter
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
    non_negative_int,
    positive_int,
    print_summary,
)
from gnosis.model.events import DecisionMade
from gnosis.model.types import Bar, format_ns

AGENT_COLUMNS = ("hedge", "liquidity", "sentiment", "wyckoff", "markov")
EPOCH_UNITS = ("s", "ms", "us", "ns")


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
                          help="episodic memory, starting empty (default off)")
    backtest.add_argument("--memory-from", type=Path, default=None, metavar="DIR",
                          help="start memory from an earlier run's store (its episodes must "
                               "end before this run's first bar)")
    backtest.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    backtest.add_argument("--reference", action="store_true",
                          help="run the agents' reference per-bar path (the readable "
                               "specification) instead of the compiled one: same decisions, "
                               "slower")
    backtest.add_argument("--timeframe",
                          help="aggregate a --data file's bars into 5Min, 15Min, 1H, 1D ... "
                               "(default: the interval inferred from its timestamps); with "
                               "--source alpaca, the bars to download (default 1Min)")
    backtest.add_argument("--warmup-bars", type=non_negative_int, default=None,
                          help="bars of each symbol folded into the detector, HMM and agents "
                               "before trading, not counted in the results (default for --data: "
                               "enough for the HMM's first fit at the file's interval, at most "
                               "a third of the file; 0 on the synthetic market)")
    backtest.add_argument("--options", type=Path,
                          help="options chain snapshots of a --data file's symbols for the Hedge "
                               "agent (timestamp,underlying,symbol,expiration_date,type,"
                               "strike_price,open_interest,implied_volatility[,gamma,delta]); "
                               "without it Hedge abstains: no options data")
    backtest.add_argument("--news", type=Path,
                          help="news headlines for the Sentiment agent on a --data file "
                               "(created_at,symbols,headline[,summary,source]); without it "
                               "Sentiment runs on price and volume alone")
    backtest.add_argument("--tz",
                          help="time zone of naive timestamps in the --data, --options and "
                               "--news files, e.g. America/New_York (without it they are "
                               "refused)")
    backtest.add_argument("--epoch-unit",
                          help="unit of epoch-number timestamps in those files: s, ms, us or ns "
                               "(default: the one unit that puts every value in 1980-2100)")
    backtest.add_argument("--sim-inputs", default=None,
                          help="the synthetic market's simulated side inputs: news,options "
                               "(default), news, options or none")


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
    """What a backtest replays: the bars, how many, the feed object, what was dropped, their
    interval, each symbol's warm-up bars and the agents' side inputs."""

    bars: Iterable[Bar]
    total: int | None
    feed: Any
    market: Any = None  # the synthetic market (ground truth), when it is the source
    quarantined: dict[str, int] = field(default_factory=dict)
    interval_s: int = 60
    file_interval_s: int | None = None  # the file's own, when --timeframe aggregated it
    warmup: dict[str, int] = field(default_factory=dict)  # symbol -> bars folded in
    inputs: Any = None  # bootstrap.SideInputs
    described: dict[str, Any] = field(default_factory=dict)  # the side inputs, for the summary


def _check_flags(args: argparse.Namespace) -> None:
    """Refuse flags that do not fit the source before any file is read."""
    if args.source is None and (args.start or args.end or args.cache_dir is not None):
        raise CommandError("--start, --end and --cache-dir go with --source alpaca")
    if args.source is not None and args.sim_inputs is not None:
        raise CommandError("--sim-inputs switches the synthetic market's simulated inputs; "
                           "Alpaca's history has none")
    if args.data is not None and args.sim_inputs is not None:
        raise CommandError("--sim-inputs switches the synthetic market's simulated inputs; a "
                           "--data file has none (give it real ones with --options/--news)")
    if args.data is None and (args.options is not None or args.news is not None):
        raise CommandError("--options and --news are for --data files; the synthetic market "
                           "has its own simulated inputs (see --sim-inputs)")
    if args.data is None and args.source is None and args.timeframe is not None:
        raise CommandError("--timeframe aggregates a --data file; the synthetic market is made "
                           "of 1-minute bars")
    if args.data is None and (args.tz is not None or args.epoch_unit is not None):
        raise CommandError("--tz and --epoch-unit say how to read a --data file's timestamps; "
                           "the synthetic market's are exact")
    if args.epoch_unit is not None and args.epoch_unit not in EPOCH_UNITS:
        raise CommandError(f"--epoch-unit {args.epoch_unit}: use one of "
                           f"{', '.join(EPOCH_UNITS)}")


def _open_source(args: argparse.Namespace, config: Any) -> _Source:
    if args.source == "alpaca":
        return _open_alpaca(args, config)
    if args.data is not None:
        return _open_file(args)
    return _open_synthetic(args, config)


def _open_alpaca(args: argparse.Namespace, config: Any) -> _Source:
    """Alpaca's history, downloaded once into a Parquet cache (gnosis.adapters.alpaca)."""
    from gnosis.adapters.alpaca.errors import AlpacaError
    from gnosis.adapters.alpaca.history import backtest_source

    try:
        got = backtest_source(args, config)
    except AlpacaError as exc:
        raise CommandError(str(exc)) from None
    return _Source(got["bars"], len(got["bars"]), got["feed"], quarantined=got["quarantined"],
                   interval_s=got["interval_s"],
                   warmup=_warmup_plan(args.warmup_bars, got["bars"], got["interval_s"]),
                   inputs=got["inputs"], described=got["described"])


def _open_synthetic(args: argparse.Namespace, config: Any) -> _Source:
    from gnosis.bootstrap import SIM_INPUTS, simulated_inputs, synthetic_market

    which = _sim_inputs(args.sim_inputs)
    warmup = args.warmup_bars or 0
    symbols = config.market.symbols
    bars = None if args.bars is None else args.bars + warmup * len(symbols)
    market = synthetic_market(config, bars)
    total = bars or market.total_bars
    described = {name: "simulated" if name in which else "none (--sim-inputs)"
                 for name in sorted(SIM_INPUTS, reverse=True)}
    return _Source(_limit(market.bars(), total), total, market, market,
                   warmup={s: warmup for s in symbols},
                   inputs=simulated_inputs(market, config.market.seed, which),
                   described=described)


def _sim_inputs(text: str | None) -> tuple[str, ...]:
    from gnosis.bootstrap import SIM_INPUTS

    if text is None:
        return SIM_INPUTS
    if text.strip() == "none":
        return ()
    names = tuple(sorted({part.strip() for part in text.split(",")}))
    if not names or not set(names) <= set(SIM_INPUTS):
        raise CommandError(f"--sim-inputs {text}: use news,options, news, options or none")
    return names


def _open_file(args: argparse.Namespace) -> _Source:
    from gnosis.data.files import InputError
    from gnosis.data.replay import ReplayFeed, load_bars, resample
    from gnosis.data.timestamps import TimestampError, check_zone

    try:
        tz = None if args.tz is None else check_zone(args.tz)
        replay = load_bars(args.data, symbol=args.symbol, tz=tz, epoch_unit=args.epoch_unit)
        file_interval = replay.interval_s
        if args.timeframe is not None:
            replay = resample(replay, _timeframe(args.timeframe))
        inputs, described = _side_inputs(args, tz, replay.symbols)
    except (InputError, TimestampError) as exc:
        raise CommandError(str(exc)) from None
    return _Source(replay.bars, len(replay.bars), ReplayFeed(replay),
                   quarantined=dict(replay.reasons), interval_s=replay.interval_s,
                   file_interval_s=file_interval if file_interval != replay.interval_s else None,
                   warmup=_warmup_plan(args.warmup_bars, replay.bars, replay.interval_s),
                   inputs=inputs, described=described)


def _timeframe(text: str) -> int:
    from gnosis.model.intervals import parse_timeframe

    try:
        return parse_timeframe(text)
    except ValueError as exc:
        raise CommandError(f"--timeframe: {exc}") from None


def _side_inputs(args: argparse.Namespace, tz: str | None,
                 symbols: tuple[str, ...]) -> tuple[Any, dict[str, Any]]:
    """The real options and news files given, checked against the bars' symbols."""
    from gnosis.bootstrap import SideInputs
    from gnosis.data.news import load_news
    from gnosis.data.options import load_options

    described: dict[str, Any] = {"options": "none (hedge abstains: no options data)",
                                 "news": "none (sentiment on price and volume only)"}
    options = news = None
    if args.options is not None:
        options = load_options(args.options, tz=tz, epoch_unit=args.epoch_unit)
        _overlap(args.options, "snapshots", options.underlyings, symbols)
        described["options"] = {"file": str(args.options), "snapshots": options.snapshots,
                                "contracts": options.contracts, "quarantined": options.reasons}
    if args.news is not None:
        news = load_news(args.news, tz=tz, epoch_unit=args.epoch_unit)
        _overlap(args.news, "headlines about", news.symbols, symbols)
        described["news"] = {"file": str(args.news), "headlines": news.count,
                             "quarantined": news.reasons}
    return SideInputs(options=options, news=news), described


def _overlap(path: Path, what: str, theirs: tuple[str, ...], ours: tuple[str, ...]) -> None:
    if not set(theirs) & set(ours):
        shown = ", ".join(theirs[:5]) + (", ..." if len(theirs) > 5 else "")
        raise CommandError(f"{path}: no {what} of {', '.join(ours)} (it has {shown})"
                           if what == "snapshots" else
                           f"{path}: no {what} {', '.join(ours)} (it has {shown})")


def _warmup_plan(requested: int | None, bars: list[Bar], interval_s: int) -> dict[str, int]:
    """Bars of each symbol to fold in before trading (see ``--warmup-bars``)."""
    from gnosis.regime.detector import formed_after

    counts = Counter(bar.symbol for bar in bars)
    if requested is None:
        wanted = formed_after(interval_s)
        return {symbol: min(wanted, count // 3) for symbol, count in counts.items()}
    if all(requested >= count for count in counts.values()):
        raise CommandError(f"--warmup-bars {requested} leaves no bar to trade (the file has "
                           f"{max(counts.values())} bars of a symbol at most)")
    return dict.fromkeys(counts, requested)


def _open_memory(args: argparse.Namespace, config: Any, source: _Source) -> Any:
    """``--memory on`` / ``--memory-from``: an empty memory, or one seeded from an earlier
    run's store whose episodes all ended before this run's first bar."""
    if args.memory == "off" and args.memory_from is None:
        return None
    from gnosis.memory import MemoryUnavailable, discard_memory, open_memory

    if args.fresh and args.state_dir is not None:
        discard_memory(args.state_dir)  # with the rest of the stored run
    iterator = iter(source.bars)
    first = next(iterator, None)
    source.bars = iter(()) if first is None else itertools.chain([first], iterator)
    try:
        return open_memory(args.state_dir, enabled=args.memory == "on", config=config.memory,
                           from_dir=args.memory_from, backtest=True,
                           starts_at=None if first is None else first.ts_event)
    except MemoryUnavailable as exc:
        raise CommandError(str(exc)) from None


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


def _run_symbols(config: Any, source: _Source) -> tuple[str, ...]:
    """Each symbol's place in the run (it staggers HMM fits): the configured order when the
    source trades configured symbols (the synthetic market, --source alpaca, as live does),
    else the data file's own symbols."""
    configured = tuple(config.market.symbols)
    found = tuple(getattr(source.feed, "symbols", ()) or ())
    return configured if set(found) <= set(configured) else found


def main(args: argparse.Namespace) -> int:
    from gnosis.bootstrap import build_strategy, build_system

    check_output_path(args.decisions, "--decisions")
    _check_flags(args)
    config = config_from_args(args)
    source = _open_source(args, config)
    strategy = build_strategy(config, source.market, source.inputs,
                              symbols=_run_symbols(config, source))
    system = build_system(config, source.feed, market=source.market, state_dir=args.state_dir,
                          strategy=strategy, fresh=args.fresh)
    if system.store is not None and system.store.load() is not None:
        system.store.close()
        raise CommandError(f"{args.state_dir} already holds a run; a backtest starts from "
                           "nothing: use another --state-dir, or --fresh to discard it")
    try:  # the state directory is ours now: --fresh may forget its memory too
        memory = _open_memory(args, config, source)
    except CommandError:
        if system.store is not None:
            system.store.close()
        raise
    system.engine.attach_memory(memory)
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
        folded = _replay(engine, _progress(source.bars, source.total, show), source.warmup)
    finally:
        if decisions_file is not None:
            decisions_file.close()
        if system.store is not None:
            system.store.close()
        if memory is not None:
            memory.close()
    elapsed = time.perf_counter() - started
    summary = _summary(engine, config, source, elapsed)
    summary["warmup_bars"] = folded
    if truth is not None:
        truth.score_into(summary)
    _report(summary, args.json)
    return 0


def _replay(engine: Any, bars: Iterable[Bar], warmup: dict[str, int]) -> int:
    """Feed every bar: each symbol's first ``warmup[symbol]`` bars are folded in without
    trading, the rest traded. Returns how many bars were folded in."""
    left = {symbol: count for symbol, count in warmup.items() if count > 0}
    folded = 0
    for bar in bars:
        if left:
            remaining = left.get(bar.symbol, 0)
            if remaining:
                engine.warm_up(bar)
                folded += 1
                if remaining == 1:
                    del left[bar.symbol]
                    if not left:
                        engine.commit_warm_up()
                else:
                    left[bar.symbol] = remaining - 1
                continue
        engine.on_bar(bar)
    return folded


def _summary(engine: Any, config: Any, source: _Source, elapsed: float) -> dict[str, Any]:
    from gnosis.model.intervals import format_interval

    summary = engine.summary()
    summary["bars_per_s"] = round(summary["bars"] / elapsed, 1) if elapsed > 0 else 0.0
    summary["interval"] = format_interval(source.interval_s)
    if source.file_interval_s is not None:
        summary["file_interval"] = format_interval(source.file_interval_s)
    if source.described and config.strategy.name == "agents":  # the SMA reads bars alone
        summary["inputs"] = source.described
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
