"""Crash-safe state: one SQLite transaction per processed bar.

Each commit writes the whole engine snapshot (positions, working orders with their client
order ids, cash, daily PnL, high-water mark, trading state, strategy state) together with the
journal rows of that bar. SQLite in WAL mode with ``synchronous=FULL`` makes the commit atomic
and durable, so ``kill -9`` at any instant leaves either the state before the bar or after it,
never a mixture; the restarted engine replays from the first bar it had not committed.
The snapshot is pickled: the state directory must be trusted like the code itself.
"""

from __future__ import annotations

import pickle
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshot (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    sequence INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS fills (
    sequence INTEGER NOT NULL,
    client_order_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity REAL NOT NULL,
    price REAL NOT NULL,
    fee REAL NOT NULL,
    expected_price REAL NOT NULL,
    ts_event INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS trades (
    sequence INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity REAL NOT NULL,
    entry_price REAL NOT NULL,
    exit_price REAL NOT NULL,
    entry_ts INTEGER NOT NULL,
    exit_ts INTEGER NOT NULL,
    bars_held INTEGER NOT NULL,
    pnl REAL NOT NULL,
    return_pct REAL NOT NULL,
    fees REAL NOT NULL,
    exit_reason TEXT NOT NULL,
    entry_order_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    client_order_id TEXT PRIMARY KEY,
    sequence INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity REAL NOT NULL,
    order_type TEXT NOT NULL,
    reason TEXT NOT NULL,
    ts_created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS equity (
    sequence INTEGER PRIMARY KEY,
    ts_event INTEGER NOT NULL,
    equity REAL NOT NULL
);
"""


class StateStore:
    """Durable engine state and journal in ``<state_dir>/state.db``."""

    def __init__(self, state_dir: Path | str) -> None:
        self.directory = Path(state_dir)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "state.db"
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def load(self) -> tuple[int, dict[str, Any]] | None:
        """Return (sequence, snapshot) of the last committed bar, or None on a fresh start."""
        row = self._db.execute("SELECT sequence, body FROM snapshot WHERE id = 1").fetchone()
        if row is None:
            return None
        return int(row[0]), pickle.loads(row[1])  # noqa: S301 - our own state file

    def commit(
        self,
        sequence: int,
        snapshot: dict[str, Any],
        *,
        fills: Iterable[Any] = (),
        trades: Iterable[Any] = (),
        orders: Iterable[Any] = (),
        equity: tuple[int, float] | None = None,
    ) -> None:
        """Atomically record the state after bar ``sequence`` and that bar's journal rows."""
        body = pickle.dumps(snapshot, protocol=pickle.HIGHEST_PROTOCOL)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "INSERT INTO snapshot (id, sequence, body) VALUES (1, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET sequence = excluded.sequence, body = excluded.body",
                (sequence, body),
            )
            db.executemany(
                "INSERT INTO fills VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (sequence, f.client_order_id, f.symbol, f.side.value, f.quantity, f.price,
                     f.fee, f.expected_price, f.ts_event)
                    for f in fills
                ],
            )
            db.executemany(
                "INSERT INTO trades VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (sequence, t.symbol, t.side, t.quantity, t.entry_price, t.exit_price,
                     t.entry_ts, t.exit_ts, t.bars_held, t.pnl, t.return_pct, t.fees,
                     t.exit_reason, t.entry_order_id)
                    for t in trades
                ],
            )
            # INSERT (not REPLACE): a duplicated client order id is an integrity error, so a
            # restart that tried to submit the same order twice would fail loudly here.
            db.executemany(
                "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (o.client_order_id, sequence, o.symbol, o.side.value, o.quantity,
                     o.order_type.value, o.reason, o.ts_created)
                    for o in orders
                ],
            )
            if equity is not None:
                db.execute("INSERT INTO equity VALUES (?, ?, ?)", (sequence, *equity))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Return a journal table as dicts (tables: fills, trades, orders, equity)."""
        if table not in {"fills", "trades", "orders", "equity"}:
            raise ValueError(f"unknown journal table {table!r}")
        cursor = self._db.execute(f"SELECT * FROM {table} ORDER BY rowid")  # noqa: S608
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def close(self) -> None:
        self._db.close()
