"""``gnosis resume``: lift a halt (drawdown breaker) recorded in a state directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    resume = sub.add_parser("resume", help="lift a halt (drawdown breaker) in a stopped bot")
    resume.add_argument("--state-dir", type=Path, default=Path("gnosis-state"))


def main(args: argparse.Namespace) -> int:
    from gnosis.trading.risk_manager import RiskManager
    from gnosis.trading.state import StateStore

    store = StateStore(args.state_dir)
    loaded = store.load()
    if loaded is None:
        print(f"no saved state in {args.state_dir}", file=sys.stderr)
        return 1
    sequence, snapshot = loaded
    risk = RiskManager()
    risk.restore(snapshot["risk"])
    change = risk.resume("resumed by operator (gnosis resume)")
    if change is None:
        print(f"trading state is already {risk.state.value}; nothing to do")
        return 0
    snapshot["risk"] = risk.snapshot()
    store.commit(sequence, snapshot)
    print(f"trading state {change.previous.value} -> {change.current.value}")
    return 0
