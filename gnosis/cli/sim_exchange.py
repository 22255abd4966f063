"""``gnosis sim-exchange``: an Alpaca-compatible exchange on 127.0.0.1 for the bot's Alpaca path.

Everything on one port: REST (trading and historical data) at ``http://127.0.0.1:P``, the stock
stream at ``ws://127.0.0.1:P/v2/iex`` (also ``/v2/sip``, and ``/v2/test`` with FAKEPACA), the
news stream at ``/v1beta1/news`` and trade updates at ``/stream``; fault injection under
``/_sim``. It prints the environment lines that point the bot at it and stops cleanly on Ctrl-C
or SIGTERM.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gnosis.cli.common import (
    CommandError,
    non_negative_int,
    positive_float,
    positive_int,
    symbols_arg,
)


def port_arg(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535 (0: any free port), got {port}")
    return port


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("sim-exchange",
                            help="serve a local Alpaca-compatible exchange simulator")
    parser.add_argument("--port", type=port_arg, required=True,
                        help="port on 127.0.0.1 (0: pick a free one and print it)")
    parser.add_argument("--key", help="accept only this API key (default: any non-empty key)")
    parser.add_argument("--secret", help="accept only this secret (with --key)")
    parser.add_argument("--speed", type=positive_float, default=60.0,
                        help="simulated seconds per real second (60: one bar per second)")
    parser.add_argument("--data", type=Path, help="replay this CSV or Parquet file of 1-minute "
                        "bars instead of the synthetic market")
    parser.add_argument("--symbol", help="symbol of a --data file that has no symbol column")
    parser.add_argument("--symbols", type=symbols_arg, default=None,
                        help="symbols of the synthetic market (default SPY)")
    parser.add_argument("--seed", type=int, default=None, help="synthetic market seed (default 7)")
    parser.add_argument("--days", type=positive_int, default=5,
                        help="live sessions of synthetic market (default 5)")
    parser.add_argument("--history-days", type=non_negative_int, default=3,
                        help="sessions of bars before the stream starts, for warm-up (default 3)")
    parser.add_argument("--tz", help="with --data: the time zone of the files' naive "
                        "timestamps, e.g. America/New_York")
    parser.add_argument("--news", type=Path,
                        help="with --data: headlines CSV (created_at,symbols,headline"
                        "[,summary,source]; the format of gnosis backtest --news)")
    parser.add_argument("--options", type=Path,
                        help="with --data: option snapshots CSV (timestamp,underlying,symbol,"
                        "expiration_date,type,strike_price,open_interest,implied_volatility"
                        "[,gamma,delta]; the format of gnosis backtest --options)")
    parser.add_argument("--log-level", choices=("critical", "error", "warning", "info", "debug"),
                        default="warning", help="server log level (default warning)")


def main(args: argparse.Namespace) -> int:
    from gnosis.core.config import load_config
    from gnosis.simexchange.exchange import ExchangeError, ExchangeSettings
    from gnosis.simexchange.server import SimExchangeServer

    if (args.key is None) != (args.secret is None):
        raise CommandError("give both --key and --secret, or neither")
    if args.data is None and (args.news or args.options or args.symbol or args.tz):
        raise CommandError("--news, --options, --symbol and --tz go with --data (the "
                           "synthetic market serves its own simulated news and options)")
    if args.data is not None and args.symbols:
        raise CommandError("--symbols is for the synthetic market; a --data file names its own "
                           "symbols (or use --symbol)")
    config = load_config()
    try:
        settings = ExchangeSettings(
            symbols=args.symbols or config.market.symbols,
            seed=config.market.seed if args.seed is None else args.seed,
            start=config.market.start, days=args.days, history_days=args.history_days,
            speed=args.speed, key=args.key, secret=args.secret, data_file=args.data,
            data_symbol=args.symbol, data_tz=args.tz, news_file=args.news,
            options_file=args.options,
            initial_cash=config.initial_cash, execution=config.execution,
        )
        server = SimExchangeServer(settings, port=args.port, log_level=args.log_level)
    except ExchangeError as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror}") from None
    exchange = server.exchange
    source = (f"replay of {args.data}" if args.data else
              f"synthetic market (seed {settings.seed}, {settings.history_days} history + "
              f"{settings.days} live sessions from {settings.start})")
    print(f"gnosis sim-exchange: {', '.join(exchange.symbols)}, {source}, speed "
          f"{settings.speed:g}x")
    print(f"listening on {server.base_url}  (streams {server.stream_url}/v2/iex, "
          f"{server.stream_url}/v1beta1/news, {server.stream_url}/stream)")
    print("paste into the bot's terminal:")
    for name, value in server.environment().items():
        if name in ("ALPACA_API_KEY", "ALPACA_SECRET_KEY") and args.key is not None:
            continue  # the user chose these keys: never echo secrets
        print(f"  export {name}={value}")
    if args.key is not None:
        print("  (and ALPACA_API_KEY / ALPACA_SECRET_KEY set to the --key / --secret you chose)")
    sys.stdout.flush()
    server.serve_forever()
    print("gnosis sim-exchange: stopped")
    return 0
