"""``gnosis run --feed alpaca [--broker sim|alpaca]``: the bot on Alpaca's data.

``--broker sim`` is a dry run (decisions on Alpaca's bars, fills by the SimBroker, nothing sent
to Alpaca); ``--broker alpaca`` places the orders on the paper account. Keys and addresses come
from ``ALPACA_*`` (environment or ``.env``); ``gnosis sim-exchange`` prints the lines that point
this command at a local simulator.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, TextIO

from gnosis.cli.common import CommandError, check_output_path, dump_json, print_summary
from gnosis.core.config import GnosisConfig


def main(args: argparse.Namespace, config: GnosisConfig) -> int:
    from gnosis.adapters.alpaca.errors import AlpacaError
    from gnosis.adapters.alpaca.wiring import build_alpaca_bot
    from gnosis.trading.console import ConsoleReporter

    decisions_file = None
    try:
        bot, system, parts = build_alpaca_bot(config, broker=args.broker,
                                              state_dir=config.state_dir, fresh=args.fresh,
                                              max_bars=args.max_bars)
    except AlpacaError as exc:
        raise CommandError(str(exc)) from None
    engine = system.engine
    try:
        if not args.quiet and not args.json:
            strategy = engine.strategy
            ConsoleReporter(system.bus, every=args.every, equity=lambda: engine.positions.equity,
                            regime_of=lambda symbol: getattr(strategy.regime_of(symbol), "last",
                                                             None)
                            if hasattr(strategy, "regime_of") else None)
        decisions_file = open_decisions(getattr(args, "decisions", None), system.bus)
        if not args.json:
            where = "orders on the Alpaca paper account" if args.broker == "alpaca" else \
                "dry run (SimBroker fills, nothing sent to Alpaca)"
            print(f"gnosis run: Alpaca {config.alpaca.data_feed} bars of "
                  f"{','.join(config.market.symbols)} from {parts.settings.venue}; {where}; "
                  f"strategy {config.strategy.name}; state in {config.state_dir}/", flush=True)
        summary = bot.run()
    except AlpacaError as exc:
        raise CommandError(str(exc)) from None
    finally:
        if decisions_file is not None:
            decisions_file.close()
        if system.store is not None:
            system.store.close()
    summary["state_dir"] = str(config.state_dir)
    summary["alpaca"] = _status(parts)
    if args.json:
        print(dump_json(summary))
    else:
        print_summary(summary)
        if summary.get("error"):
            print(f"stopped: {summary['error']}")
    return 2 if summary.get("error") else 0


def open_decisions(path: Path | None, bus: Any) -> TextIO | None:
    """``--decisions FILE``: one CSV row per live bar and symbol, as ``gnosis backtest``."""
    if path is None:
        return None
    from gnosis.cli.backtest import DecisionWriter
    from gnosis.model.events import DecisionMade

    check_output_path(path, "--decisions")
    handle = path.open("w", newline="")
    bus.subscribe(DecisionMade, DecisionWriter(handle).on_decision_made)
    return handle


def _status(parts: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"feed": parts.feed.status()}
    for name in ("broker", "news", "options"):
        part = getattr(parts, name)
        if part is not None:
            status[name] = part.status()
    return status
