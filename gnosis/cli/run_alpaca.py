"""``gnosis run --feed alpaca [--broker sim|alpaca]``: the bot on Alpaca's data.

``--broker sim`` is a dry run (decisions on Alpaca's bars, fills by the SimBroker, nothing sent
to Alpaca); ``--broker alpaca`` places the orders on the paper account. Keys and addresses come
from ``ALPACA_*`` (environment or ``.env``); ``gnosis sim-exchange`` prints the lines that point
this command at a local simulator.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from gnosis.cli.common import CommandError, check_output_path, dump_json, print_summary
from gnosis.core.config import GnosisConfig


def main(args: argparse.Namespace, config: GnosisConfig) -> int:
    """``gnosis run --feed alpaca``: as the simulated run, with memory and the dashboard too."""
    from gnosis.adapters.alpaca.errors import AlpacaError
    from gnosis.adapters.alpaca.wiring import build_alpaca_bot
    from gnosis.cli.run import _open_memory
    from gnosis.dashboard import launch
    from gnosis.model.events import Notice

    try:
        bot, system, parts = build_alpaca_bot(config, broker=args.broker,
                                              state_dir=config.state_dir, fresh=args.fresh,
                                              max_bars=args.max_bars)
    except AlpacaError as exc:
        raise CommandError(str(exc)) from None
    engine = system.engine
    memory, memory_problem = _open_memory(args, config)  # the state dir's lock is ours now
    engine.attach_memory(memory)
    decisions, dashboard = Decisions(None, None), None
    try:
        _console(args, config, system, parts)
        if memory_problem:
            system.bus.publish(Notice(0, 0, memory_problem, {"component": "memory"}))
        decisions = Decisions(getattr(args, "decisions", None), system.bus)
        try:
            dashboard = launch.attach(engine, bot, state_dir=config.state_dir,
                                      serve_web=args.dashboard, host=args.host,
                                      port=args.port, token=args.token)
        except launch.DashboardError as exc:
            raise CommandError(str(exc)) from None
        if dashboard.url:
            print(f"dashboard: {dashboard.url}", file=sys.stderr if args.json else sys.stdout,
                  flush=True)
        summary = bot.run()
    except AlpacaError as exc:
        raise CommandError(str(exc)) from None
    finally:
        if dashboard is not None:
            dashboard.close()
        decisions.close()
        if system.store is not None:
            system.store.close()
        if memory is not None:
            memory.close()
    summary["state_dir"] = str(config.state_dir)
    summary["alpaca"] = _status(parts)
    if args.json:
        print(dump_json(summary))
    else:
        print_summary(summary)
        if summary.get("error"):
            print(f"stopped: {summary['error']}")
    return 2 if summary.get("error") else 0


def _console(args: argparse.Namespace, config: GnosisConfig, system: Any, parts: Any) -> None:
    from gnosis.trading.console import ConsoleReporter

    engine = system.engine
    if not args.quiet and not args.json:
        strategy = engine.strategy
        ConsoleReporter(system.bus, every=args.every, equity=lambda: engine.positions.equity,
                        regime_of=lambda symbol: getattr(strategy.regime_of(symbol), "last",
                                                         None)
                        if hasattr(strategy, "regime_of") else None)
    if not args.json:
        where = "orders on the Alpaca paper account" if args.broker == "alpaca" else \
            "dry run (SimBroker fills, nothing sent to Alpaca)"
        print(f"gnosis run: Alpaca {config.alpaca.data_feed} bars of "
              f"{','.join(config.market.symbols)} from {parts.settings.venue}; {where}; "
              f"strategy {config.strategy.name}; state in {config.state_dir}/", flush=True)


def wants_alpaca(args: argparse.Namespace) -> bool:
    """Whether ``gnosis run`` runs on Alpaca (``--feed alpaca``); the Alpaca broker alone is
    refused: it trades on Alpaca's data."""
    if args.broker == "alpaca" and args.feed != "alpaca":
        raise CommandError("--broker alpaca trades on Alpaca's data: add --feed alpaca")
    return bool(args.feed == "alpaca")


class Decisions:
    """``--decisions FILE``: one CSV row per live bar and symbol, as ``gnosis backtest``
    writes them (nothing without a file)."""

    def __init__(self, path: Path | None, bus: Any) -> None:
        self._handle: TextIO | None = None
        if path is None:
            return
        from gnosis.cli.backtest import DecisionWriter
        from gnosis.model.events import DecisionMade

        check_output_path(path, "--decisions")
        self._handle = path.open("w", newline="")
        bus.subscribe(DecisionMade, DecisionWriter(self._handle).on_decision_made)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


def _status(parts: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"feed": parts.feed.status()}
    for name in ("broker", "news", "options"):
        part = getattr(parts, name)
        if part is not None:
            status[name] = part.status()
    return status
