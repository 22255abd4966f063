"""``gnosis run``: the bot live on the simulated market (the main job)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gnosis.cli.common import (
    CommandError,
    add_common,
    config_from_args,
    dump_json,
    non_negative_int,
    positive_float,
    positive_int,
    print_summary,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="run the bot live (simulated market by default)")
    add_common(run)
    run.add_argument("--speed", type=positive_float, default=60.0,
                     help="simulated seconds per real second (60: one 1-minute bar per second)")
    run.add_argument("--days", type=positive_int, default=None,
                     help="sessions of synthetic market")
    run.add_argument("--max-bars", type=positive_int, default=None,
                     help="stop after this many live bars")
    run.add_argument("--warmup-days", type=non_negative_int, default=None,
                     help="history sessions folded in before trading (default 2; HMM needs ~2)")
    run.add_argument("--state-dir", type=Path, default=None,
                     help="state, journal and memory files (default ./gnosis-state)")
    run.add_argument("--fresh", action="store_true",
                     help="start from an empty state instead of resuming")
    run.add_argument("--feed", choices=("sim", "alpaca"), default="sim",
                     help="sim: the embedded synthetic market; alpaca: Alpaca's live bars "
                     "(ALPACA_* keys and URLs, see README)")
    run.add_argument("--broker", choices=("sim", "alpaca"), default="sim",
                     help="sim: dry run (SimBroker fills); alpaca: orders on the Alpaca paper "
                     "account (with --feed alpaca)")
    run.add_argument("--decisions", type=Path, default=None,
                     help="write one CSV row per live bar and symbol (as gnosis backtest)")
    run.add_argument("--every", type=positive_int, default=1, help="print every n-th quiet bar")
    run.add_argument("--quiet", action="store_true", help="no per-bar console lines")
    run.add_argument("--memory", choices=("on", "off"), default="on",
                     help="episodic memory in <state-dir>/memory.duckdb (default on)")
    run.add_argument("--dashboard", action="store_true",
                     help="serve the web dashboard (http://127.0.0.1:8080 by default)")
    run.add_argument("--host", default=None,
                     help="dashboard address (default 127.0.0.1; any other needs a token)")
    run.add_argument("--port", type=non_negative_int, default=None,
                     help="dashboard port (default 8080; 0 picks a free one)")
    run.add_argument("--token", default=None,
                     help="dashboard control token (default: env GNOSIS_DASHBOARD_TOKEN)")


def _open_memory(args: argparse.Namespace, config: Any) -> tuple[Any, str]:
    """The run's episodic memory (``--memory on``, the default), or None and why not: a
    corrupt or locked file is reported and the bot trades on without memory."""
    from gnosis.memory import MemoryUnavailable, discard_memory, open_memory

    if args.fresh:  # called once the state directory's lock is ours
        discard_memory(config.state_dir)
    if args.memory == "off":
        return None, ""
    try:
        return open_memory(config.state_dir, config=config.memory), ""
    except MemoryUnavailable as exc:
        problem = f"episodic memory unavailable: {exc}; trading without it"
        print(f"gnosis run: {problem}", file=sys.stderr)
        return None, problem


def main(args: argparse.Namespace) -> int:
    from gnosis.cli import run_alpaca
    from gnosis.dashboard import launch

    config = config_from_args(args)
    if args.token is None and config.dashboard_token is not None:  # env or .env
        args.token = config.dashboard_token.get_secret_value()
    try:
        launch.check(args.dashboard, args.host, args.port, args.token)
    except launch.DashboardError as exc:
        raise CommandError(str(exc)) from None
    if run_alpaca.wants_alpaca(args):  # --feed alpaca: gnosis/cli/run_alpaca.py
        return run_alpaca.main(args, config)
    return _run_simulated(args, config)


def _run_simulated(args: argparse.Namespace, config: Any) -> int:
    """The bot on the embedded synthetic market."""
    from gnosis.bootstrap import build_system, run_identity, synthetic_market
    from gnosis.cli import run_alpaca
    from gnosis.dashboard import launch
    from gnosis.model.events import Notice
    from gnosis.trading.console import ConsoleReporter
    from gnosis.trading.live_bot import LiveBot

    state_dir = config.state_dir
    market = synthetic_market(config, history=True)
    warmup_bars = market.bars_in_sessions(config.market.warmup_days)
    system = build_system(config, market, market=market, state_dir=state_dir,
                          identity=run_identity(config, "synthetic"), fresh=args.fresh)
    memory, memory_problem = _open_memory(args, config)
    system.engine.attach_memory(memory)
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
        if memory is not None:
            print(f"episodic memory: {state_dir}/memory.duckdb ({memory.count()} episodes)")
    if memory_problem:
        system.bus.publish(Notice(0, 0, memory_problem, {"component": "memory"}))
    bot = LiveBot(engine, market, speed=args.speed, max_bars=args.max_bars,
                  warmup_bars=warmup_bars)
    try:
        dashboard = launch.attach(engine, bot, state_dir=state_dir, serve_web=args.dashboard,
                                  host=args.host, port=args.port, token=args.token)
    except launch.DashboardError as exc:
        if system.store is not None:
            system.store.close()
        raise CommandError(str(exc)) from None
    if dashboard.url:
        print(f"dashboard: {dashboard.url}", file=sys.stderr if args.json else sys.stdout,
              flush=True)
    decisions = run_alpaca.Decisions(args.decisions, system.bus)
    try:
        summary = bot.run()
    finally:
        decisions.close()
        dashboard.close()
        if system.store is not None:
            system.store.close()
        if memory is not None:
            memory.close()
    summary["state_dir"] = str(state_dir)
    if args.json:
        print(dump_json(summary))
    else:
        print_summary(summary)
    return 0
