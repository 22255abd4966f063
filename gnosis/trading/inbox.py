"""Commands for a running bot from another process: files in ``<state_dir>/inbox/``.

``gnosis resume`` (or halt, flatten) on a directory that a live bot owns cannot touch the
state itself (the bot owns it). It drops a small JSON file into the inbox instead; the bot's
inbox watcher takes it, the core thread carries the command out like any other command (it is
journaled), and the bot answers in ``<id>.done``. Files are written to a temporary name and
renamed, so a reader never sees half a message.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

_COMMANDS = ("halt", "resume", "flatten")


@dataclass(frozen=True, slots=True)
class InboxMessage:
    path: Path
    command: str
    reason: str

    def acknowledge(self, result: str) -> None:
        _write_atomic(self.path.with_suffix(".done"), json.dumps({"result": result}))


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


class Inbox:
    def __init__(self, state_dir: Path) -> None:
        self.directory = Path(state_dir) / "inbox"

    def post(self, command: str, reason: str) -> Path:
        if command not in _COMMANDS:
            raise ValueError(f"unknown command {command!r}")
        self.directory.mkdir(exist_ok=True)
        path = self.directory / f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.json"
        _write_atomic(path, json.dumps({"command": command, "reason": reason}))
        return path

    def take(self) -> list[InboxMessage]:
        """Messages not yet taken, oldest first; each is taken once (renamed to .taken)."""
        if not self.directory.is_dir():
            return []
        messages = []
        for path in sorted(self.directory.glob("*.json")):
            taken = path.with_suffix(".taken")
            try:
                os.replace(path, taken)
                body = json.loads(taken.read_text())
                command, reason = str(body["command"]), str(body.get("reason", ""))
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a malformed message is ignored, never fatal
            if command in _COMMANDS:
                messages.append(InboxMessage(taken, command, reason))
        return messages

    def wait_for_answer(self, posted: Path, timeout_s: float) -> str | None:
        """The bot's answer to a posted message, or None if it did not answer in time."""
        done = posted.with_suffix(".done")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if done.is_file():
                with contextlib.suppress(OSError, ValueError):
                    result = str(json.loads(done.read_text())["result"])
                    for leftover in (done, posted.with_suffix(".taken")):
                        leftover.unlink(missing_ok=True)
                    return result
            time.sleep(0.1)
        return None
