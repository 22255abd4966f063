"""Crash-safe state: one SQLite transaction per processed bar, in a directory one process owns.

Each commit writes the engine snapshot (positions, working orders with their client order ids,
cash, daily PnL, high-water mark, trading state, strategy state) together with the journal rows
of that bar. A strategy with per-symbol state (the agents: ~130 KB a symbol, mostly the HMM's
window) keeps it in ``strategy_parts`` rows, and a bar's commit rewrites its own symbol's row
only: the cost of a commit does not grow with the number of symbols. The live bot commits a
burst of bars (every symbol's bar of a minute) once, after its last bar, each bar's journal
rows under its own sequence. SQLite in WAL mode with ``synchronous=FULL`` makes the commit
atomic and durable, so ``kill -9`` at any instant leaves either the state before the commit or
after it, never a mixture; the restarted engine replays from the first bar it had not
committed.

One process owns a state directory at a time: opening a store takes an exclusive lock on
``<dir>/gnosis.lock`` (released by the kernel when the process dies, even by SIGKILL) and
writes its pid there, so a second process is refused with the owner's pid.
The snapshot is pickled: the state directory must be trusted like the code itself. It carries
a schema number; state written by another version of Gnosis is refused, never half-loaded.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pickle
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from gnosis.model.types import Fill, Order, Trade

SNAPSHOT_SCHEMA = 5  # bump when the snapshot's shape changes (5: the HMM keeps a pending refit)
JOURNAL_SCHEMA = 2  # bump when a journal table changes
DB_NAME = "state.db"
LOCK_NAME = "gnosis.lock"

# a table added after journal schema 2 (state directories from before get it on open)
_PARTS_TABLE = """
CREATE TABLE IF NOT EXISTS strategy_parts (
    key TEXT PRIMARY KEY,
    body BLOB NOT NULL
);
"""

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
    reference_price REAL NOT NULL,
    remaining REAL NOT NULL,
    reason TEXT NOT NULL,
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
    entry_order_id TEXT NOT NULL,
    max_favorable REAL NOT NULL,
    max_adverse REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    client_order_id TEXT PRIMARY KEY,
    sequence INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity REAL NOT NULL,
    order_type TEXT NOT NULL,
    reason TEXT NOT NULL,
    ts_created INTEGER NOT NULL,
    stop_loss REAL,
    take_profit REAL
);
CREATE TABLE IF NOT EXISTS equity (
    sequence INTEGER PRIMARY KEY,
    ts_event INTEGER NOT NULL,
    equity REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    sequence INTEGER NOT NULL,
    ts_event INTEGER NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL
);
"""
_SCHEMA += _PARTS_TABLE
JOURNAL_TABLES = ("fills", "trades", "orders", "equity", "events")


class JournalRows(NamedTuple):
    """What one processed bar (or the work between two bars) adds to the journal."""

    sequence: int
    fills: Sequence[Fill] = ()
    trades: Sequence[Trade] = ()
    orders: Sequence[Order] = ()
    events: Sequence[tuple[int, str, str]] = ()  # (ts, kind, message)
    equity: tuple[int, float] | None = None  # (bar ts_event, equity after it); None between bars


class StateError(Exception):
    """A state directory that cannot be used; the message says why and what to do."""


def lock_owner(state_dir: Path) -> int | None:
    """The pid of the live process that owns ``state_dir``, or None when nobody does."""
    path = Path(state_dir) / LOCK_NAME
    if not path.is_file():
        return None
    try:
        with path.open("a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                text = handle.read().strip()
                return int(text) if text.isdigit() else -1
            fcntl.flock(handle, fcntl.LOCK_UN)
            return None
    except OSError:
        return None


def _check_directory(directory: Path, create: bool) -> None:
    if directory.exists() and not directory.is_dir():
        raise StateError(f"state dir {directory} is a file, not a folder")
    if not directory.exists():
        if not create:
            raise StateError(f"state dir {directory} does not exist")
        try:
            directory.mkdir(parents=True)
        except OSError as exc:
            raise StateError(f"cannot create state dir {directory}: {exc.strerror}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise StateError(f"state dir {directory} is not writable")


class StateStore:
    """Durable engine state and journal in ``<state_dir>/state.db``, owned by this process."""

    def __init__(self, state_dir: Path | str, *, create: bool = True,
                 fresh: bool = False) -> None:
        self.directory = Path(state_dir)
        _check_directory(self.directory, create)
        self._lock = self._acquire()
        self.path = self.directory / DB_NAME
        if fresh:
            for suffix in ("", "-wal", "-shm"):
                (self.directory / f"{DB_NAME}{suffix}").unlink(missing_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._check_journal_schema()
        except sqlite3.DatabaseError as exc:
            self._release()
            raise StateError(
                f"{self.path} is not a readable Gnosis state file ({exc}); move it aside, or "
                "start over with --fresh"
            ) from None

    def _acquire(self) -> Any:
        path = self.directory / LOCK_NAME
        try:
            handle = path.open("a+")
        except OSError as exc:
            raise StateError(f"cannot open {path}: {exc.strerror}") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise StateError(
                f"state dir {self.directory} is in use by another gnosis process (pid {owner})"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        return handle

    def _release(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                self._lock.seek(0)
                self._lock.truncate()
                fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def _check_journal_schema(self) -> None:
        db = self._db
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if version == 0 and not tables & set(JOURNAL_TABLES):
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version = {JOURNAL_SCHEMA}")
            return
        if version == JOURNAL_SCHEMA and "strategy_parts" not in tables:
            db.executescript(_PARTS_TABLE)
        if version != JOURNAL_SCHEMA:
            raise StateError(
                f"{self.path} was written by another version of Gnosis (journal schema "
                f"{version}, this version reads {JOURNAL_SCHEMA}); keep it with that version, "
                "or start over with --fresh"
            )

    def load(self) -> tuple[int, dict[str, Any]] | None:
        """Return (sequence, snapshot) of the last committed bar, or None on a fresh start."""
        try:
            row = self._db.execute("SELECT sequence, body FROM snapshot WHERE id = 1").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StateError(f"{self.path} cannot be read ({exc}); start over with --fresh") \
                from None
        if row is None:
            return None
        try:
            snapshot = pickle.loads(row[1])  # noqa: S301 - our own state file
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same
            raise StateError(
                f"{self.path}: the saved state cannot be loaded ({type(exc).__name__}: {exc}); "
                "it was probably written by another version of Gnosis: start over with --fresh"
            ) from None
        schema = snapshot.get("schema") if isinstance(snapshot, dict) else None
        if schema != SNAPSHOT_SCHEMA:
            raise StateError(
                f"{self.path} holds state of schema {schema}, this version of Gnosis reads "
                f"{SNAPSHOT_SCHEMA}; keep it with the version that wrote it, or start over "
                "with --fresh"
            )
        if snapshot.get("strategy_split"):
            snapshot["strategy_parts"] = dict(
                self._db.execute("SELECT key, body FROM strategy_parts").fetchall())
        return int(row[0]), snapshot

    def commit(
        self,
        sequence: int,
        snapshot: dict[str, Any],
        *,
        journal: Iterable[JournalRows] = (),
        parts: dict[str, bytes] | None = None,
    ) -> None:
        """Atomically record the state after bar ``sequence`` with the journal rows of the bars
        (and the work between bars) since the previous commit, each under its own sequence, so
        the journal does not depend on how bars were grouped into commits.

        ``parts`` are pieces of state kept apart (the strategy's per-symbol state): only the
        ones given are written, the others stay as committed before; ``load`` returns them all
        in ``snapshot["strategy_parts"]``.
        """
        if "strategy_parts" in snapshot:  # a loaded snapshot written back (offline commands)
            snapshot = {k: v for k, v in snapshot.items() if k != "strategy_parts"}
        body = pickle.dumps(snapshot, protocol=pickle.HIGHEST_PROTOCOL)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "INSERT INTO snapshot (id, sequence, body) VALUES (1, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET sequence = excluded.sequence, body = excluded.body",
                (sequence, body),
            )
            if parts:
                db.executemany(
                    "INSERT INTO strategy_parts (key, body) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET body = excluded.body", parts.items())
            for rows in journal:
                self._journal(rows)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _journal(self, rows: JournalRows) -> None:
        sequence, fills, trades, orders, events, equity = rows
        db = self._db
        db.executemany(
            "INSERT INTO fills VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(sequence, f.client_order_id, f.symbol, f.side.value, f.quantity, f.price, f.fee,
              f.expected_price, f.reference, f.remaining, f.reason, f.ts_event) for f in fills],
        )
        db.executemany(
            "INSERT INTO trades VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(sequence, t.symbol, t.side, t.quantity, t.entry_price, t.exit_price, t.entry_ts,
              t.exit_ts, t.bars_held, t.pnl, t.return_pct, t.fees, t.exit_reason,
              t.entry_order_id, t.max_favorable, t.max_adverse) for t in trades],
        )
        # INSERT (not REPLACE): a duplicated client order id is an integrity error, so a
        # restart that tried to submit the same order twice would fail loudly here.
        db.executemany(
            "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(o.client_order_id, sequence, o.symbol, o.side.value, o.quantity,
              o.order_type.value, o.reason, o.ts_created, o.stop_loss, o.take_profit)
             for o in orders],
        )
        db.executemany("INSERT INTO events VALUES (?, ?, ?, ?)",
                       [(sequence, ts, kind, message) for ts, kind, message in events])
        if equity is not None:
            db.execute("INSERT INTO equity VALUES (?, ?, ?)", (sequence, *equity))

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Return a journal table as dicts (tables: fills, trades, orders, equity, events)."""
        if table not in JOURNAL_TABLES:
            raise ValueError(f"unknown journal table {table!r}")
        cursor = self._db.execute(f"SELECT * FROM {table} ORDER BY rowid")  # noqa: S608
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def recent_trades(self, limit: int) -> list[Trade]:
        """The journal's latest ``limit`` closed trades, oldest first (a restarted dashboard
        shows them)."""
        rows = self._db.execute(
            "SELECT symbol, side, quantity, entry_price, exit_price, entry_ts, exit_ts, "
            "bars_held, pnl, return_pct, fees, exit_reason, entry_order_id, max_favorable, "
            "max_adverse FROM trades ORDER BY rowid DESC LIMIT ?", (limit,)).fetchall()
        return [Trade(*row) for row in reversed(rows)]

    def trade_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM trades").fetchone()[0])

    def equity_points(self) -> list[tuple[int, float]]:
        """(ts_event ns, equity) of every committed bar, in order."""
        return [(int(ts), float(equity)) for ts, equity in self._db.execute(
            "SELECT ts_event, equity FROM equity ORDER BY sequence")]

    def close(self) -> None:
        self._db.close()
        self._release()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
