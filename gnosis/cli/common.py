"""What every command shares: argument types that refuse bad values, the config, the summary."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any, NoReturn

from gnosis.core.config import GnosisConfig, load_config


class CommandError(Exception):
    """A command that cannot go on; the message is printed as one line, the exit code is 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (and a pointer to --help), not the usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def symbols_arg(text: str) -> tuple[str, ...]:
    symbols = tuple(s.strip().upper() for s in text.split(",") if s.strip())
    if not symbols:
        raise argparse.ArgumentTypeError("give at least one symbol, e.g. SPY or SPY,QQQ")
    for symbol in symbols:
        if not symbol.replace(".", "").replace("/", "").isalnum():
            raise argparse.ArgumentTypeError(f"{symbol!r} is not a ticker symbol")
    return symbols


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (0.0 < value < math.inf):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--symbols", type=symbols_arg, default=None,
                        help="comma-separated symbols of the synthetic market (default SPY)")
    parser.add_argument("--seed", type=int, default=None,
                        help="synthetic market seed (default 7)")
    parser.add_argument("--strategy", choices=("agents", "sma"), default=None,
                        help="agents: regime + five agents (default); sma: SMA crossover")
    parser.add_argument("--json", action="store_true", help="print one JSON object of results")


def config_from_args(args: argparse.Namespace) -> GnosisConfig:
    """The configuration tree (env, .env, defaults) with the command line's overrides."""
    base = load_config()
    market = base.market.model_dump()
    for name in ("symbols", "seed", "days", "warmup_days"):
        value = getattr(args, name, None)
        if value is not None:
            market[name] = value
    strategy = base.strategy.model_dump()
    if getattr(args, "strategy", None):
        strategy["name"] = args.strategy
    if getattr(args, "reference", False):
        strategy["fast"] = False
    overrides: dict[str, Any] = {"market": market, "strategy": strategy}
    if getattr(args, "state_dir", None) is not None:
        overrides["state_dir"] = args.state_dir
    return load_config(**overrides)


def dump_json(result: dict[str, Any]) -> str:
    """One JSON object; NaN and infinities become null, so the output is always valid JSON."""
    return json.dumps(_finite(result), sort_keys=True, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def check_output_path(path: Path | None, what: str) -> None:
    """Refuse an output file whose folder does not exist before any work is done."""
    if path is None:
        return
    folder = path.resolve().parent
    if not folder.is_dir():
        raise CommandError(f"{what} {path}: folder {folder} does not exist")
    if path.is_dir():
        raise CommandError(f"{what} {path} is a folder, not a file")


_PERCENT_KEYS = ("total_return", "max_drawdown", "win_rate")


def print_summary(summary: dict[str, Any]) -> None:
    keys = ("bars", "trades", "final_equity", "total_return", "max_drawdown", "sharpe",
            "win_rate", "fees", "slippage", "shortfall", "bars_per_s", "trading_state")
    print("\nsummary")
    for key in keys:
        if key not in summary:
            continue
        value = summary[key]
        if value is None:
            text = "n/a (fewer than 5 sessions)" if key == "sharpe" else "n/a"
        elif key in _PERCENT_KEYS:
            text = f"{value:.2%}"
        elif isinstance(value, float):
            text = f"{value:,.2f}"
        else:
            text = str(value)
        print(f"  {key:<14} {text}")
    if summary.get("regime_counts"):
        print("  regimes        " + ", ".join(f"{k} {v}" for k, v in
                                              summary["regime_counts"].items()))
    memory = summary.get("memory")
    if memory:
        print(f"  memory         {memory['recalls']} recalls, {memory['adjusted']} adjusted: "
              f"size up {memory['scaled_up']}, down {memory['scaled_down']}, refused "
              f"{memory['refused_by_memory']}, admitted {memory['admitted_by_memory']}; mean "
              f"confidence {memory['mean_confidence_change']:+.3f}, mean size "
              f"x{memory['mean_size_scale']:.3f}"
              + ("" if memory.get("available", True) else " (memory failed during the run)"))
    if summary.get("refusals"):
        print("  refusals       " + ", ".join(f"{k} ({v})" for k, v in
                                              summary["refusals"].items()))
