"""A synchronous, in-process message bus: handlers run in the core thread, in publish order."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[Any], None]


class EventBus:
    """Publish events to the handlers subscribed to their exact type (or to every type)."""

    def __init__(self) -> None:
        self._handlers: dict[type, list[Handler]] = defaultdict(list)
        self._catch_all: list[Handler] = []
        self._wanted: set[type] = set()
        self._everything = False
        self.silent = True  # nobody subscribed to anything: the per-bar path skips the events
        self.handler_errors = 0

    def subscribe(self, event_type: type | None, handler: Handler) -> None:
        """Call ``handler`` for each event of ``event_type`` (None: every event)."""
        self.silent = False
        if event_type is None:
            self._catch_all.append(handler)
            self._everything = True
        else:
            self._handlers[event_type].append(handler)
            self._wanted.add(event_type)

    def wants(self, event_type: type) -> bool:
        """True when anyone listens: lets hot paths skip building events nobody reads."""
        return self._everything or event_type in self._wanted

    def publish(self, event: Any) -> None:
        handlers = self._handlers.get(type(event))
        if handlers:
            for handler in handlers:
                self._dispatch(handler, event)
        for handler in self._catch_all:
            self._dispatch(handler, event)

    def _dispatch(self, handler: Handler, event: Any) -> None:
        try:
            handler(event)
        except Exception:  # a broken listener (console, dashboard) must never stop trading
            self.handler_errors += 1
            log.exception("event handler %r failed on %s", handler, type(event).__name__)
