"""``gnosis run``: the bot live on the simulated market (the main job)."""

from __future__ import annotations

import argparse
from pathlib import Path

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
    run.add_argument("--dashboard", action="store_true",
                     help="serve the web dashboard (not built yet)")


def main(args: argparse.Namespace) -> int:
    from gnosis.bootstrap import build_system, run_identity, synthetic_market
    from gnosis.trading.console import ConsoleReporter
    from gnosis.trading.live_bot import LiveBot

    config = config_from_args(args)
    if args.feed == "alpaca" or args.broker == "alpaca":
        from gnosis.cli.run_alpaca import main as run_alpaca

        if args.feed != "alpaca":
            raise CommandError("--broker alpaca trades on Alpaca's data: add --feed alpaca")
        return run_alpaca(args, config)
    state_dir = config.state_dir
    market = synthetic_market(config, history=True)
    warmup_bars = market.bars_in_sessions(config.market.warmup_days)
    system = build_system(config, market, market=market, state_dir=state_dir,
                          identity=run_identity(config, "synthetic"), fresh=args.fresh)
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
    from gnosis.cli.run_alpaca import open_decisions

    decisions = open_decisions(args.decisions, system.bus)
    try:
        summary = bot.run()
    finally:
        if decisions is not None:
            decisions.close()
        if system.store is not None:
            system.store.close()
    summary["state_dir"] = str(state_dir)
    if args.json:
        print(dump_json(summary))
    else:
        print_summary(summary)
    return 0
