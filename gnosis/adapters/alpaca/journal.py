"""The broker's order journal: every intent is written down before it is sent.

``<state_dir>/alpaca-orders.db`` (SQLite, WAL, ``synchronous=FULL``) holds one row per order
the engine asked for, keyed by its client order id, committed in one transaction before the
POST leaves. After a ``kill -9`` the restarted broker knows every intent that might be at the
venue; it asks the venue by client order id rather than sending anything twice.

States: ``pending`` (written, not yet confirmed placed), ``placed`` (the venue has it),
``unplaced`` (never reached the venue: the POST failed for good, or a restart found nothing at
the venue), ``refused`` (the venue rejected it), ``dropped`` (a restart found it never placed
and told the engine it ended). ``final`` marks an order (with its legs) that is done at the
venue and fully booked, so reconciliation stops asking about it.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from gnosis.model.types import Order, OrderType, Side

FILE_NAME = "alpaca-orders.db"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS intents (
    client_order_id TEXT PRIMARY KEY,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity REAL NOT NULL,
    order_type TEXT NOT NULL,
    reason TEXT NOT NULL,
    expected_price REAL,
    stop_loss REAL,
    take_profit REAL,
    limit_price REAL,
    stop_price REAL,
    ts_created INTEGER NOT NULL,
    status TEXT NOT NULL,
    venue_id TEXT,
    detail TEXT NOT NULL DEFAULT '',
    final INTEGER NOT NULL DEFAULT 0
);
"""
STATES = ("pending", "placed", "unplaced", "refused", "dropped")


@dataclass(frozen=True, slots=True)
class Intent:
    order: Order
    status: str
    venue_id: str | None
    detail: str
    final: bool

    @property
    def client_order_id(self) -> str:
        return self.order.client_order_id


class OrderJournal:
    """Durable intents; thread-safe (the core writes intents, the worker their outcome)."""

    def __init__(self, state_dir: Path | str | None, *, fresh: bool = False) -> None:
        self.path = None if state_dir is None else Path(state_dir) / FILE_NAME
        if self.path is not None and fresh:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        self._db = sqlite3.connect(":memory:" if self.path is None else str(self.path),
                                   isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            if self.path is not None:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)

    def record(self, order: Order) -> None:
        """Write an intent (one transaction) before it is sent; an id seen before is kept."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO intents (client_order_id, symbol, side, quantity, "
                "order_type, reason, expected_price, stop_loss, take_profit, limit_price, "
                "stop_price, ts_created, status) VALUES (?,?,?,?,?,?,?,?,?,?,?,?, 'pending')",
                (order.client_order_id, order.symbol, order.side.value, order.quantity,
                 order.order_type.value, order.reason, order.expected_price, order.stop_loss,
                 order.take_profit, order.limit_price, order.stop_price, order.ts_created))

    def mark(self, client_order_id: str, status: str, *, venue_id: str | None = None,
             detail: str = "") -> None:
        if status not in STATES:
            raise ValueError(f"unknown intent state {status!r}")
        with self._lock:
            self._db.execute(
                "UPDATE intents SET status = ?, venue_id = COALESCE(?, venue_id), detail = ? "
                "WHERE client_order_id = ?", (status, venue_id, detail[:500], client_order_id))

    def finish(self, client_order_id: str) -> None:
        with self._lock:
            self._db.execute("UPDATE intents SET final = 1 WHERE client_order_id = ?",
                             (client_order_id,))

    def get(self, client_order_id: str) -> Intent | None:
        with self._lock:
            row = self._db.execute(_SELECT_ONE, (client_order_id,)).fetchone()
        return None if row is None else _intent(row)

    def open_intents(self) -> list[Intent]:
        """Intents whose outcome is not settled: reconciliation asks the venue about them."""
        with self._lock:
            rows = self._db.execute(_SELECT_OPEN).fetchall()
        return [_intent(row) for row in rows]

    def all(self) -> list[Intent]:
        with self._lock:
            rows = self._db.execute(_SELECT_ALL).fetchall()
        return [_intent(row) for row in rows]

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._db.close()


_SELECT_ALL = (
    "SELECT client_order_id, symbol, side, quantity, order_type, reason, expected_price, "
    "stop_loss, take_profit, limit_price, stop_price, ts_created, status, venue_id, detail, "
    "final FROM intents ORDER BY rowid")
_SELECT_ONE = (
    "SELECT client_order_id, symbol, side, quantity, order_type, reason, expected_price, "
    "stop_loss, take_profit, limit_price, stop_price, ts_created, status, venue_id, detail, "
    "final FROM intents WHERE client_order_id = ?")
_SELECT_OPEN = (
    "SELECT client_order_id, symbol, side, quantity, order_type, reason, expected_price, "
    "stop_loss, take_profit, limit_price, stop_price, ts_created, status, venue_id, detail, "
    "final FROM intents WHERE final = 0 AND status IN ('pending', 'placed') ORDER BY rowid")


def _intent(row: tuple) -> Intent:
    (cid, symbol, side, quantity, order_type, reason, expected, stop_loss, take_profit,
     limit_price, stop_price, ts_created, status, venue_id, detail, final) = row
    order = Order(client_order_id=cid, symbol=symbol, side=Side(side), quantity=quantity,
                  order_type=OrderType(order_type), ts_created=ts_created,
                  limit_price=limit_price, stop_price=stop_price, reason=reason,
                  expected_price=expected, stop_loss=stop_loss, take_profit=take_profit)
    return Intent(order, status, venue_id, detail or "", bool(final))
