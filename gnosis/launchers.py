"""The seed's launchers: ``python start_paper_trading.py`` and ``python start_with_dashboard.py``.

Both build the seed's Python API, ``LiveTradingBot``, from a few options and run it; the
command line (``gnosis run``) wires the same objects with the same builders and has every
option. Defaults are the seed's: SPY, 1-minute bars, memory on, a dry run (no orders sent),
paper mode; with no Alpaca keys the bot runs on the embedded simulated market.

    python start_paper_trading.py [--symbols SPY,QQQ] [--feed sim|alpaca] [--trade]
                                  [--no-memory] [--speed 60] [--max-bars N]
                                  [--state-dir DIR] [--fresh] [--warmup-days N]
    python start_with_dashboard.py [same] [--host 127.0.0.1] [--port 8080] [--token T]
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from gnosis.cli.common import (
    OneLineParser,
    non_negative_int,
    positive_float,
    positive_int,
    print_summary,
    symbols_arg,
)


def _parser(prog: str, dashboard: bool) -> argparse.ArgumentParser:
    parser = OneLineParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=symbols_arg, default=("SPY",),
                        help="comma-separated symbols (default SPY)")
    parser.add_argument("--feed", choices=("sim", "alpaca"), default="sim",
                        help="the embedded simulated market (default) or Alpaca's bars "
                             "(ALPACA_API_KEY / ALPACA_SECRET_KEY from the environment or .env)")
    parser.add_argument("--trade", action="store_true",
                        help="with --feed alpaca: place the orders on the paper account "
                             "(enable_trading=True); without it, a dry run")
    parser.add_argument("--no-memory", action="store_true", help="episodic memory off")
    parser.add_argument("--speed", type=positive_float, default=60.0,
                        help="simulated seconds per real second (simulated market; default 60)")
    parser.add_argument("--max-bars", type=positive_int, default=None)
    parser.add_argument("--state-dir", default=None, help="default ./gnosis-state")
    parser.add_argument("--fresh", action="store_true", help="discard the stored run first")
    parser.add_argument("--warmup-days", type=non_negative_int, default=None)
    if dashboard:
        parser.add_argument("--host", default=None, help="default 127.0.0.1")
        parser.add_argument("--port", type=int, default=None, help="default 8080; 0: any free")
        parser.add_argument("--token", default=None,
                            help="control token (halt/resume/flatten); needed off loopback")
    return parser


def main(argv: Sequence[str] | None = None, *, dashboard: bool = False,
         prog: str = "start_paper_trading.py") -> int:
    """Parse the options, build ``LiveTradingBot``, run it until it ends or Ctrl-C."""
    from gnosis.adapters.alpaca.errors import AlpacaError
    from gnosis.core.config import ConfigError
    from gnosis.trading.live_bot import LiveTradingBot, TradingRefused
    from gnosis.trading.state import StateError

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = _parser(prog, dashboard).parse_args(argv)
    web = {"dashboard": True, "host": args.host, "port": args.port, "token": args.token} \
        if dashboard else {}
    try:
        bot = LiveTradingBot(symbols=list(args.symbols), bar_interval="1Min",
                             enable_memory=not args.no_memory, enable_trading=args.trade,
                             paper_mode=True, feed=args.feed, state_dir=args.state_dir,
                             fresh=args.fresh, speed=args.speed, max_bars=args.max_bars,
                             warmup_days=args.warmup_days, **web)
        summary = bot.run()
    except (TradingRefused, ConfigError, StateError, AlpacaError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print_summary(summary)
    return 0
