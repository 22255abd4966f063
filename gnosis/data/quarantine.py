"""Quarantine for stream data: a bad record is counted and logged, never raised into the bot."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from gnosis.model.types import Bar, InvalidValue

log = logging.getLogger(__name__)


class Quarantine:
    """Turn raw bar records into ``Bar``s; count (and log the first few of) every bad one."""

    def __init__(self, log_first: int = 20) -> None:
        self.counts: Counter[str] = Counter()
        self._log_first = log_first

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def bar(self, **fields: Any) -> Bar | None:
        """Build a bar from keyword fields, or quarantine the record and return None."""
        try:
            return Bar(**fields)
        except InvalidValue as exc:
            self._hold("invalid_values", exc, fields)
        except (TypeError, ValueError) as exc:
            self._hold("malformed", exc, fields)
        return None

    def _hold(self, reason: str, exc: Exception, fields: dict[str, Any]) -> None:
        self.counts[reason] += 1
        if self.total <= self._log_first:
            log.warning("quarantined bar (%s): %s; record %r", reason, exc, fields)
