"""The standalone dashboard: serve, read-only, the state a running bot publishes.

    uvicorn gnosis.dashboard.dashboard_server:app --port 8080

reads ``$GNOSIS_STATE_DIR/dashboard.json`` (default ``./gnosis-state``), which ``gnosis run``
rewrites atomically at most once a second, and pushes what changed to its WebSocket clients.
It has no bot to command: control actions answer 409. (``gnosis run --dashboard`` serves the
same page from inside the bot, with control.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from gnosis.core.clock import LiveClock
from gnosis.dashboard.app import Backend, create_app
from gnosis.dashboard.hub import Broadcaster
from gnosis.dashboard.publisher import STATE_FILE, iso
from gnosis.dashboard.state import DashboardState, changes

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.5


class StateFileSource:
    """Follow a bot's state file: load it when it changes and say what changed."""

    def __init__(self, state_dir: Path, state: DashboardState, broadcaster: Broadcaster, *,
                 poll_interval: float = POLL_INTERVAL) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / STATE_FILE
        self.state = state
        self.broadcaster = broadcaster
        self.poll_interval = poll_interval
        self.wall = LiveClock()
        self._stamp: tuple[int, int] | None = None
        self._snapshot: dict[str, Any] = {}
        self.problem: str | None = f"no bot is publishing in {self.state_dir.resolve()}"

    def unavailable(self) -> str | None:
        return self.problem

    def _read(self) -> dict[str, Any] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self.problem = f"no bot is publishing in {self.state_dir.resolve()}"
            self._stamp = None
            return None
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return None
        try:
            loaded = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            self.problem = f"cannot read {self.path}: {exc}"
            return None
        self._stamp = stamp
        return loaded if isinstance(loaded, dict) else None

    def poll(self, loaded: dict[str, Any] | None) -> None:
        """Fold a freshly read snapshot in and push the differences (event loop only)."""
        if loaded is None:
            return
        self.problem = None
        previous = self._snapshot
        info = loaded.setdefault("info", {})
        info["published_at"] = loaded.get("published_at")
        restarted = previous and (
            previous.get("info", {}).get("instance") != info.get("instance")
            or int(loaded.get("seq", 0)) < int(previous.get("seq", 0)))
        self.state.load(loaded)
        self._snapshot = loaded
        if not previous:  # a bot started publishing: clients reconnect and get it all
            self.broadcaster.drop_all("a bot started publishing")
            return
        if restarted:  # another bot (or a restart): clients reconnect and get a fresh init
            self.broadcaster.drop_all("the bot restarted")
            return
        now = iso(self.wall.now_ns())
        for kind, data in changes(previous, loaded):
            self.broadcaster.send_all({"type": kind, "data": data, "timestamp": now,
                                       "seq": self.state.seq})

    async def follow(self) -> None:
        while True:
            try:
                self.poll(await asyncio.to_thread(self._read))
            except Exception:  # a malformed file must not end the follower
                log.exception("cannot fold in %s", self.path)
            await asyncio.sleep(self.poll_interval)


def create_standalone_app(state_dir: Path | str | None = None, *,
                          poll_interval: float = POLL_INTERVAL) -> FastAPI:
    folder = Path(state_dir or os.environ.get("GNOSIS_STATE_DIR") or "gnosis-state")
    state = DashboardState()
    broadcaster = Broadcaster()
    source = StateFileSource(folder, state, broadcaster, poll_interval=poll_interval)
    with contextlib.suppress(Exception):
        source.poll(source._read())  # serve what is there from the first request on
    backend = Backend(state, broadcaster, "standalone", background=source.follow,
                      unavailable=source.unavailable)
    app = create_app(backend)
    app.state.source = source
    return app


app = create_standalone_app()
