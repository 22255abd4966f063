"""``gnosis resume | halt | flatten``: operator commands for a bot's state directory.

When a bot owns the directory (it is running), the command goes through that bot's command
queue: it is posted to the directory's inbox and the bot answers. When no bot runs, ``resume``
and ``halt`` change the stored trading state directly (with the configured risk settings), and
``flatten`` is refused: only a running bot can send the exit orders.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from gnosis.cli.common import CommandError

if TYPE_CHECKING:
    from gnosis.core.config import GnosisConfig
    from gnosis.trading.state import StateStore

_HELP = {
    "resume": "lift a halt (drawdown breaker or operator) or the daily-loss reduction",
    "halt": "stop trading: cancel entries, exit every position, no new entries until resume",
    "flatten": "exit every position now (a running bot only)",
}
ANSWER_TIMEOUT_S = 15.0


def add_parser(sub: argparse._SubParsersAction) -> None:
    for name, text in _HELP.items():
        command = sub.add_parser(name, help=text)
        command.add_argument("--state-dir", type=Path, default=None,
                             help="the bot's state directory (default ./gnosis-state)")
        command.add_argument("--reason", default="", help="why, for the journal")


def main(args: argparse.Namespace) -> int:
    from gnosis.core.config import load_config
    from gnosis.trading.state import StateError, StateStore, lock_owner

    config = load_config()
    state_dir: Path = args.state_dir or config.state_dir
    if not (state_dir / "state.db").is_file():
        raise CommandError(f"no saved state in {state_dir} (is that the bot's --state-dir?)")
    reason = args.reason or f"{args.command} by operator (gnosis {args.command})"
    owner = lock_owner(state_dir)
    if owner is not None:
        return _through_bot(state_dir, owner, args.command, reason)
    if args.command == "flatten":
        raise CommandError(f"no bot is running on {state_dir}: flatten needs a running bot "
                           "to send the exit orders")
    try:
        store = StateStore(state_dir, create=False)
    except StateError as exc:
        if "in use" in str(exc):  # the bot started between the two checks
            return _through_bot(state_dir, lock_owner(state_dir) or -1, args.command, reason)
        raise
    with store:
        return _offline(store, config, args.command, reason)


def _through_bot(state_dir: Path, owner: int, command: str, reason: str) -> int:
    from gnosis.trading.inbox import Inbox

    inbox = Inbox(state_dir)
    posted = inbox.post(command, reason)
    print(f"sent {command} to the bot running on {state_dir} (pid {owner}); waiting for it")
    answer = inbox.wait_for_answer(posted, ANSWER_TIMEOUT_S)
    if answer is None:
        print(f"the bot did not answer within {ANSWER_TIMEOUT_S:g} s; the command stays in its "
              "inbox and runs when the bot takes it", file=sys.stderr)
        return 1
    print(answer)
    return 0


def _offline(store: StateStore, config: GnosisConfig, command: str, reason: str) -> int:
    from gnosis.trading.risk_manager import RiskManager
    from gnosis.trading.state import JournalRows

    loaded = store.load()
    if loaded is None:
        raise CommandError(f"no saved state in {store.directory}")
    sequence, snapshot = loaded
    risk = RiskManager(config.risk)
    risk.restore(snapshot["risk"])
    change = risk.resume(reason) if command == "resume" else risk.halt(reason)
    if change is None:
        print(f"trading state is already {risk.state.value}; nothing to do")
        return 0
    snapshot["risk"] = risk.snapshot()
    store.commit(sequence, snapshot, journal=[JournalRows(sequence, events=[(
        0, "trading_state", f"{change.previous.value} -> {change.current.value}: {reason}")])])
    print(f"trading state {change.previous.value} -> {change.current.value} "
          "(takes effect when the bot starts)")
    return 0
