"""Command line: ``gnosis run | backtest | bench | resume | sim-exchange | memory``.

Each command lives in its own module with ``add_parser(subparsers)`` and ``main(args) -> int``;
this module only assembles them and turns the errors a person can act on into one line.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from gnosis.cli.common import CommandError, OneLineParser
from gnosis.core.config import ConfigError
from gnosis.trading.state import StateError

# command name -> module under gnosis.cli (imported lazily: `gnosis run` never loads the rest)
COMMANDS: dict[str, str] = {
    "run": "run",
    "backtest": "backtest",
    "bench": "bench",
    "resume": "resume",
    "halt": "resume",
    "flatten": "resume",
    "sim-exchange": "sim_exchange",
    "memory": "memory",
}


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="gnosis", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for module in dict.fromkeys(COMMANDS.values()):  # a module may add several commands
        importlib.import_module(f"gnosis.cli.{module}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    command = importlib.import_module(f"gnosis.cli.{COMMANDS[args.command]}")
    try:
        return int(command.main(args))
    except (ConfigError, CommandError, StateError) as exc:
        print(f"gnosis {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
