"""Alpaca's records (raw, as the SDK hands them over with ``raw_data=True``) to domain types.

The adapter reads raw dicts rather than the SDK's pydantic models so that one malformed record
is quarantined and counted here instead of raising inside the SDK, where it would take the rest
of its frame (or page) with it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gnosis.data.quarantine import Quarantine
from gnosis.model.types import Bar, InvalidValue, datetime_to_ns

TERMINAL = frozenset({"filled", "canceled", "expired", "rejected", "replaced", "done_for_day",
                      "stopped", "suspended"})


def timestamp_ns(value: Any) -> int:
    """Epoch ns of a msgpack Timestamp, an aware datetime or an RFC-3339 string."""
    if hasattr(value, "to_unix_nano"):
        return int(value.to_unix_nano())
    if isinstance(value, datetime):
        return datetime_to_ns(value)
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        if "." in text:  # Python parses at most microseconds: trim nanoseconds
            head, _, tail = text.partition(".")
            digits = "".join(itertools.takewhile(str.isdigit, tail))
            zone = tail[len(digits):]
            text = f"{head}.{digits[:6]}{zone}"
        return datetime_to_ns(datetime.fromisoformat(text))
    raise InvalidValue(f"not a timestamp: {value!r}")


def optional_ns(value: Any) -> int | None:
    return None if value in (None, "") else timestamp_ns(value)


def number(value: Any) -> float | None:
    """A float from Alpaca's numbers and numeric strings; None when absent."""
    if value is None or value == "":
        return None
    result = float(value)
    if not math.isfinite(result):
        raise InvalidValue(f"not a finite number: {value!r}")
    return result


def bar_from_raw(symbol: str, raw: Any, quarantine: Quarantine,
                 interval_s: int = 60, ts_init: int = 0) -> Bar | None:
    """A bar from a stream message or a historical record, or None (quarantined).
    ``ts_init`` is when we received it (0: the bar's close)."""
    try:
        count = raw.get("n")
        trades = None if count is None else int(count)
        vwap = number(raw.get("vw"))
        fields = {
            "symbol": str(symbol).upper(), "ts_event": timestamp_ns(raw["t"]),
            "open": float(raw["o"]), "high": float(raw["h"]), "low": float(raw["l"]),
            "close": float(raw["c"]), "volume": float(raw["v"]), "trade_count": trades,
            "vwap": vwap, "interval_s": interval_s, "ts_init": ts_init,
        }
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError, InvalidValue) as exc:
        quarantine.counts["malformed"] += 1
        if quarantine.total <= 20:
            import logging

            logging.getLogger(__name__).warning("quarantined bar record of %s: %s; %r",
                                                symbol, exc, raw)
        return None
    return quarantine.bar(**fields)


@dataclass(slots=True)
class VenueOrder:
    """The fields of an Alpaca order the adapter uses, parsed from the raw record."""

    id: str
    client_order_id: str
    symbol: str
    side: str
    type: str
    qty: float
    filled_qty: float
    filled_avg_price: float | None
    status: str
    order_class: str
    limit_price: float | None
    stop_price: float | None
    time_in_force: str
    updated_ns: int | None
    filled_ns: int | None
    legs: list[VenueOrder] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status not in TERMINAL

    @property
    def remaining(self) -> float:
        return max(0.0, self.qty - self.filled_qty)

    @property
    def filled_value(self) -> float:
        return self.filled_qty * (self.filled_avg_price or 0.0)

    @classmethod
    def parse(cls, raw: Any) -> VenueOrder:
        """Raise ``InvalidValue`` when the record lacks what an order must have."""
        try:
            legs = [cls.parse(leg) for leg in (raw.get("legs") or [])]
            qty = number(raw.get("qty"))
            filled = number(raw.get("filled_qty")) or 0.0
            return cls(
                id=str(raw["id"]), client_order_id=str(raw.get("client_order_id") or ""),
                symbol=str(raw.get("symbol") or "").upper(), side=str(raw.get("side") or ""),
                type=str(raw.get("type") or raw.get("order_type") or ""),
                qty=qty if qty is not None else filled, filled_qty=filled,
                filled_avg_price=number(raw.get("filled_avg_price")),
                status=str(raw.get("status") or ""),
                order_class=str(raw.get("order_class") or "simple") or "simple",
                limit_price=number(raw.get("limit_price")),
                stop_price=number(raw.get("stop_price")),
                time_in_force=str(raw.get("time_in_force") or ""),
                updated_ns=optional_ns(raw.get("updated_at")),
                filled_ns=optional_ns(raw.get("filled_at")), legs=legs)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidValue(f"malformed order record: {exc}") from None
