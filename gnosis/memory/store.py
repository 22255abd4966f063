"""The DuckDB episode store and its recall index.

Durability. Every write (an episode opened, an episode closed with its reflection, a recall
logged) is one mutating DuckDB statement, so one transaction, committed before the call
returns. Writes are idempotent by key (episode id = the entry's client order id; a recall by
symbol and decision bar): after ``kill -9`` the engine replays the bars after its last commit
and calls the same writes again, which find their rows and leave one copy.

Concurrency. DuckDB lets one process write a file, and no other process open it meanwhile,
not even read-only. The bot therefore opens the file in *shared* mode: a short-lived
connection per write, so between writes the CLI and a dashboard in another process can open
it read-only. Each side retries for ``lock_timeout_s`` while the other holds the file; a
writer that still cannot get it raises ``MemoryStoreError`` and the engine trades on without
memory. Measured by ``benchmarks/bench_memory_recall.py`` at 100,000 episodes on a busy
2-core machine: a write costs about 40-70 ms this way (opening DuckDB and checkpointing on
close) against about 5-10 ms on a connection held open, paid only on candidate entries and
exits. The alternative, the bot holding the file and exporting a snapshot for readers, would
cost about 0.5-0.8 s per Parquet export of all episodes and show readers stale data.
Backtests use one persistent connection, or an in-memory database without a state directory.

Recall never touches the file: on open, the closed episodes' vectors are loaded into an
in-memory DuckDB table ordered by exit time, and every committed close is appended to it.
The cosine similarity and the top-k run there (``array_cosine_similarity`` on ``FLOAT[N]``),
over at most the ``max_candidates`` most recent closed episodes before the decision bar, so
a recall costs the same with 100,000 stored episodes as with 10,000.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from gnosis.core.clock import perf_counter_ns
from gnosis.core.config import MemoryConfig
from gnosis.memory.advice import Candidate, advice_from
from gnosis.memory.reflection import Outcome, reflect
from gnosis.memory.vector import DIMENSION, VECTOR_VERSION, agreement, situation_vector
from gnosis.model.memory import MemoryAdvice, Situation
from gnosis.model.types import Trade, format_ns

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_RETRY_SLEEP_S = 0.01

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS episodes (
    id VARCHAR PRIMARY KEY,
    symbol VARCHAR NOT NULL,
    bar_ts BIGINT NOT NULL,
    decided_ts BIGINT NOT NULL,
    signal TINYINT NOT NULL,
    confidence DOUBLE NOT NULL,
    regime VARCHAR,
    regime_confidence DOUBLE,
    trend_strength DOUBLE,
    volatility DOUBLE,
    volatility_class VARCHAR,
    range_position DOUBLE,
    hmm_state VARCHAR,
    hmm_probabilities DOUBLE[],
    votes STRUCT(agent VARCHAR, signal TINYINT, confidence DOUBLE, abstained BOOLEAN,
                 reasoning VARCHAR)[],
    agreement DOUBLE,
    price DOUBLE NOT NULL,
    vector FLOAT[{DIMENSION}] NOT NULL,
    entry_price DOUBLE NOT NULL,
    quantity DOUBLE NOT NULL,
    stop_price DOUBLE,
    target_price DOUBLE,
    entry_ts BIGINT,
    exit_ts BIGINT,
    exit_price DOUBLE,
    pnl DOUBLE,
    return_pct DOUBLE,
    fees DOUBLE,
    bars_held INTEGER,
    exit_reason VARCHAR,
    max_favorable DOUBLE,
    max_adverse DOUBLE,
    rule VARCHAR,
    critique VARCHAR,
    lesson VARCHAR
);
CREATE TABLE IF NOT EXISTS recalls (
    symbol VARCHAR NOT NULL,
    bar_ts BIGINT NOT NULL,
    decided_ts BIGINT NOT NULL,
    signal TINYINT NOT NULL,
    regime VARCHAR,
    confidence_before DOUBLE NOT NULL,
    confidence_after DOUBLE NOT NULL,
    size_scale DOUBLE NOT NULL,
    win_rate DOUBLE,
    alignment DOUBLE,
    reason VARCHAR NOT NULL,
    episodes STRUCT(id VARCHAR, similarity DOUBLE, weight DOUBLE)[] NOT NULL,
    PRIMARY KEY (symbol, bar_ts)
);
"""

_SITUATION_COLUMNS = (
    "symbol", "bar_ts", "decided_ts", "signal", "confidence", "regime", "regime_confidence",
    "trend_strength", "volatility", "volatility_class", "range_position", "hmm_state",
    "hmm_probabilities", "votes", "agreement", "price", "vector", "entry_price", "quantity",
    "stop_price", "target_price",
)
_OUTCOME_COLUMNS = (
    "entry_ts", "exit_ts", "exit_price", "pnl", "return_pct", "fees", "bars_held",
    "exit_reason", "max_favorable", "max_adverse", "rule", "critique", "lesson",
)
_CLOSE_NEEDS = ("stop_price", "target_price", "agreement", "symbol", "regime", "signal",
                "vector")
_INDEX_COLUMNS = ("id", "symbol", "entry_ts", "exit_ts", "regime", "signal", "return_pct",
                  "pnl", "exit_reason", "lesson", "vector")
# the statements, built once from the column lists above (no value is ever formatted in)
_INSERT_EPISODE = (f"INSERT INTO episodes (id, {', '.join(_SITUATION_COLUMNS)}) "  # noqa: S608
                   f"VALUES ({', '.join('?' for _ in range(len(_SITUATION_COLUMNS) + 1))})")
_UPDATE_SITUATION = ("UPDATE episodes SET "  # noqa: S608
                     + ", ".join(f"{c} = ?" for c in _SITUATION_COLUMNS) + " WHERE id = ?")
_UPDATE_RECALL = ("UPDATE recalls SET decided_ts = ?, signal = ?, regime = ?, "
                  "confidence_before = ?, confidence_after = ?, size_scale = ?, win_rate = ?, "
                  "alignment = ?, reason = ?, episodes = ? WHERE symbol = ? AND bar_ts = ?")
_UPDATE_OUTCOME = ("UPDATE episodes SET "  # noqa: S608
                   + ", ".join(f"{c} = ?" for c in _OUTCOME_COLUMNS) + " WHERE id = ?")


class MemoryUnavailable(RuntimeError):
    """The memory file cannot be used (corrupt, locked, another version): the message says
    which file, why, and what to do."""


class MemoryStoreError(RuntimeError):
    """A read or write on an open memory store failed."""


def _first(con: duckdb.DuckDBPyConnection, query: str, params: Any = None) -> Any:
    """The first row of a query, with the result fully consumed (DuckDB refuses new work on a
    connection whose last result is still open)."""
    rows = con.execute(query, params).fetchall()
    return rows[0] if rows else None


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


def explain(path: Path | None, exc: Exception) -> str:
    """One line a person can act on, for a DuckDB error met while opening ``path``."""
    where = "in-memory episodic memory" if path is None else f"episodic memory file {path}"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if _is_lock_error(exc):
        return (f"{where} is locked by another process ({text}); stop that process or use "
                "another --state-dir")
    if "not a valid DuckDB database" in text or "Corrupt database" in text \
            or "Could not read enough bytes" in text or "checksum" in text:
        return (f"{where} is corrupt ({text}); move it aside to start an empty memory, or "
                "run with --memory off")
    return f"{where} cannot be used ({type(exc).__name__}: {text})"


class Database:
    """Connections to one DuckDB database: persistent, or one short-lived connection per use
    (``shared``) so other processes can open the file between uses."""

    def __init__(self, path: Path | None, *, shared: bool = False, read_only: bool = False,
                 lock_timeout_s: float = 2.0) -> None:
        self.path = path
        self.shared = shared and path is not None
        self.read_only = read_only
        self._lock_timeout_ns = int(lock_timeout_s * 1e9)
        self._persistent: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()
        if not self.shared:
            self._persistent = self._connect()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        if self.path is None:
            return duckdb.connect(":memory:")
        deadline = perf_counter_ns() + self._lock_timeout_ns
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=self.read_only)
            except duckdb.IOException as exc:
                if not _is_lock_error(exc) or perf_counter_ns() >= deadline:
                    raise
                time.sleep(_RETRY_SLEEP_S)  # the holder's write or read takes milliseconds

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self._persistent is not None:
            with self._lock:  # a DuckDB connection serves one thread at a time
                yield self._persistent
            return
        con = self._connect()
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.connection() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def close(self) -> None:
        if self._persistent is not None:
            self._persistent.close()
            self._persistent = None


def prepare(con: duckdb.DuckDBPyConnection, path: Path | None, *, create: bool) -> None:
    """Create the schema (``create``) or check it; then read every row once, so a corrupt
    block fails here, at open, rather than in the middle of a trading session."""
    tables = {row[0] for row in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
    ).fetchall()}
    if not tables and create:
        con.execute("BEGIN TRANSACTION")
        con.execute(_SCHEMA)
        con.execute("INSERT INTO meta VALUES ('schema_version', ?), ('vector_version', ?), "
                    "('vector_dimension', ?)",
                    [str(SCHEMA_VERSION), str(VECTOR_VERSION), str(DIMENSION)])
        con.execute("COMMIT")
        return
    if not {"meta", "episodes", "recalls"} <= tables:
        raise MemoryUnavailable(
            f"{path} is a DuckDB file but not a Gnosis memory (tables: "
            f"{', '.join(sorted(tables)) or 'none'}); point --state-dir elsewhere")
    meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    expected = {"schema_version": str(SCHEMA_VERSION), "vector_version": str(VECTOR_VERSION),
                "vector_dimension": str(DIMENSION)}
    for key, value in expected.items():
        if meta.get(key) != value:
            raise MemoryUnavailable(
                f"{path} was written with {key} {meta.get(key)} and this Gnosis uses {value}; "
                "its situation vectors are not comparable: move the file aside to start an "
                "empty memory")
    for table in ("episodes", "recalls"):
        con.execute(f"SELECT count(*), max(hash(t)) FROM {table} t").fetchall()  # noqa: S608


def _situation_row(situation: Situation, entry_price: float, quantity: float,
                   stop_price: float | None, target_price: float | None) -> list[Any]:
    state = situation.regime_state
    return [
        situation.symbol, situation.ts_event, situation.ts_decided, situation.signal,
        situation.confidence, situation.regime, situation.regime_confidence,
        None if state is None else state.trend_strength,
        None if state is None else state.volatility,
        None if state is None else state.volatility_class,
        None if state is None else state.range_position,
        None if state is None else state.hmm_state,
        None if state is None or state.hmm_probabilities is None
        else list(state.hmm_probabilities),
        [{"agent": v.agent, "signal": v.signal, "confidence": v.confidence,
          "abstained": v.abstained, "reasoning": v.reasoning} for v in situation.votes],
        agreement(situation.votes, situation.signal),
        situation.price, list(situation_vector(situation)), entry_price, quantity, stop_price,
        target_price,
    ]


class RecallIndex:
    """The closed episodes' vectors in an in-memory DuckDB table, in exit-time order.

    DuckDB holds only what the similarity search scans (id, exit time, vector); what advice
    needs of the k episodes found lives in a dict beside it, so the top-k carries three
    narrow columns instead of eleven.
    """

    def __init__(self) -> None:
        self._con = duckdb.connect(":memory:", config={"threads": 1})
        self._con.execute(
            f"CREATE TABLE idx (id VARCHAR, exit_ts BIGINT, vector FLOAT[{DIMENSION}])")
        self._exits: list[int] = []  # sorted exit times: the candidate window in O(log n)
        self._details: dict[str, tuple[Any, ...]] = {}  # id -> _INDEX_COLUMNS[1:-1]
        # The similarity threshold is applied to the k rows found, not in SQL: a filter on the
        # similarity would make DuckDB compute every cosine twice (measured: twice as slow),
        # and the k most similar rows include every row above the threshold among them.
        self._query = f"""
            SELECT id, array_cosine_similarity(vector, $v::FLOAT[{DIMENSION}]) AS similarity
            FROM idx WHERE exit_ts >= $floor AND exit_ts < $before
            ORDER BY similarity DESC, exit_ts DESC, id
            LIMIT $k"""  # noqa: S608 - only the dimension is formatted in

    def __len__(self) -> int:
        return len(self._exits)

    def load(self, con: duckdb.DuckDBPyConnection) -> None:
        columns = ", ".join(_INDEX_COLUMNS)
        table = con.sql(f"SELECT {columns} FROM episodes WHERE exit_ts IS NOT NULL "  # noqa: S608
                        "ORDER BY exit_ts, id").to_arrow_table()
        self._con.register("incoming", table.select(["id", "exit_ts", "vector"]))
        try:
            self._con.execute("INSERT INTO idx SELECT * FROM incoming")
        finally:
            self._con.unregister("incoming")
        self._exits = table.column("exit_ts").to_pylist()
        details = zip(*(table.column(c).to_pylist() for c in _INDEX_COLUMNS[1:-1]),
                      strict=True)
        self._details = dict(zip(table.column("id").to_pylist(), details, strict=True))

    def add(self, row: Sequence[Any]) -> None:
        """Append one closed episode (``_INDEX_COLUMNS`` order); a replayed close replaces."""
        episode_id, exit_ts = row[0], row[3]
        old = self._details.get(episode_id)
        if old is not None:
            self._con.execute("DELETE FROM idx WHERE id = ?", [episode_id])
            self._exits.pop(bisect.bisect_left(self._exits, old[2]))
        self._con.execute("INSERT INTO idx VALUES (?, ?, ?)", [episode_id, exit_ts, row[-1]])
        bisect.insort(self._exits, exit_ts)
        self._details[episode_id] = tuple(row[1:-1])

    def recall(self, vector: Sequence[float], before_ts: int, k: int, min_similarity: float,
               max_candidates: int) -> list[Candidate]:
        """The k closed episodes most similar to ``vector`` among the ``max_candidates`` most
        recent ones that exited strictly before ``before_ts``; ties go to the later exit,
        then to the smaller episode id."""
        end = bisect.bisect_left(self._exits, before_ts)
        if end == 0:
            return []
        floor = self._exits[max(0, end - max_candidates)]
        rows = self._con.execute(self._query, {
            "v": list(vector), "floor": floor, "before": before_ts, "k": k}).fetchall()
        found = []
        for episode_id, similarity in rows:
            if similarity is None or similarity <= min_similarity:
                break  # rows come most similar first
            symbol, entry_ts, exit_ts, regime, signal, ret, pnl, reason, lesson = \
                self._details[episode_id]
            found.append(Candidate(episode_id, symbol, entry_ts or 0, exit_ts, regime, signal,
                                   ret, pnl, reason or "", lesson or "", float(similarity)))
        return found

    def close(self) -> None:
        self._con.close()


class DuckDBMemory:
    """Episodic memory on a DuckDB file (or in memory when ``path`` is None).

    Implements the ``EpisodicMemory`` port (advise, open_episode, close_episode) and the reads
    the CLI and the dashboard show (``episodes``, ``episode``, ``stats``).
    """

    def __init__(self, path: Path | None, config: MemoryConfig | None = None, *,
                 shared: bool = False) -> None:
        self.config = config or MemoryConfig()
        self.path = path
        self.index = RecallIndex()
        try:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            self.db = Database(path, shared=shared, lock_timeout_s=self.config.lock_timeout_s)
            with self.db.connection() as con:
                prepare(con, path, create=True)
                self.index.load(con)
                self._load_keys(con)
        except (duckdb.Error, OSError) as exc:
            self.index.close()
            raise MemoryUnavailable(explain(path, exc)) from None
        except MemoryUnavailable:
            self.index.close()
            raise

    def _load_keys(self, con: duckdb.DuckDBPyConnection) -> None:
        """What the writes need to know without asking the file each time (this process is
        the file's only writer): which episodes and recalls exist, and the entry details of
        the episodes still open (their close needs them for the reflection)."""
        self._known: set[str] = {r[0] for r in con.execute("SELECT id FROM episodes").fetchall()}
        self._logged: set[tuple[str, int]] = set(
            con.execute("SELECT symbol, bar_ts FROM recalls").fetchall())
        self._open: dict[str, tuple[Any, ...]] = {
            r[0]: tuple(r[1:]) for r in con.execute(
                f"SELECT id, {', '.join(_CLOSE_NEEDS)} FROM episodes "  # noqa: S608
                "WHERE exit_ts IS NULL").fetchall()}

    # -- the port ---------------------------------------------------------------------------
    def advise(self, situation: Situation) -> MemoryAdvice:
        """Recall, weigh, advise, and log the recall (one transaction)."""
        cfg = self.config
        candidates = self.index.recall(situation_vector(situation), situation.ts_event, cfg.k,
                                       cfg.min_similarity, cfg.max_candidates)
        advice = advice_from(situation, candidates, cfg)
        self._log_recall(situation, advice)
        return advice

    def open_episode(self, episode_id: str, situation: Situation, *, entry_price: float,
                     quantity: float, stop_price: float | None,
                     target_price: float | None) -> None:
        """Record the entry's situation; a replayed open rewrites the same row."""
        row = _situation_row(situation, entry_price, quantity, stop_price, target_price)
        with self._writing("open episode " + episode_id) as con:
            if episode_id in self._known:
                con.execute(_UPDATE_SITUATION, [*row, episode_id])
            else:
                con.execute(_INSERT_EPISODE, [episode_id, *row])
        self._known.add(episode_id)
        columns = dict(zip(_SITUATION_COLUMNS, row, strict=True))
        self._open[episode_id] = tuple(columns[c] for c in _CLOSE_NEEDS)

    def close_episode(self, episode_id: str, trade: Trade) -> None:
        """Record the outcome and its reflection; then the episode becomes recallable."""
        with self._writing("close episode " + episode_id) as con:
            found = self._open.get(episode_id)
            if found is None and episode_id in self._known:  # a replayed close
                found = _first(con, f"SELECT {', '.join(_CLOSE_NEEDS)} FROM episodes "  # noqa: S608
                               "WHERE id = ?", [episode_id])
            if found is None:
                log.warning("memory: close of unknown episode %s ignored (its open was not "
                            "recorded)", episode_id)
                return
            stop_price, target_price, agree, symbol, regime, signal, vector = found
            reflection = reflect(_outcome(trade, stop_price, target_price, agree, self.config))
            values = [trade.entry_ts, trade.exit_ts, trade.exit_price, trade.pnl,
                      trade.return_pct, trade.fees, trade.bars_held, trade.exit_reason,
                      trade.max_favorable, trade.max_adverse, reflection.rule,
                      reflection.critique, reflection.lesson]
            con.execute(_UPDATE_OUTCOME, [*values, episode_id])
        self._open.pop(episode_id, None)
        self.index.add((episode_id, symbol, trade.entry_ts, trade.exit_ts, regime, signal,
                        trade.return_pct, trade.pnl, trade.exit_reason, reflection.lesson,
                        list(vector)))

    # -- writes -------------------------------------------------------------------------------
    @contextmanager
    def _writing(self, what: str) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for one write. Each write runs exactly one mutating statement, which
        DuckDB commits as one transaction (an explicit BEGIN/COMMIT pair measured ~1 ms more
        per write, for nothing: the reads before it only choose the statement)."""
        try:
            with self.db.connection() as con:
                yield con
        except duckdb.Error as exc:
            raise MemoryStoreError(f"episodic memory {self.path or '(in memory)'}: {what} "
                                   f"failed: {explain(self.path, exc)}") from None

    def _log_recall(self, situation: Situation, advice: MemoryAdvice) -> None:
        used = [{"id": e.episode_id, "similarity": e.similarity, "weight": e.weight}
                for e in advice.episodes]
        with self._writing(f"log the recall of {situation.symbol} "
                           f"{format_ns(situation.ts_event)}") as con:
            key = [situation.symbol, situation.ts_event]
            values = [situation.ts_decided, situation.signal, situation.regime,
                      situation.confidence, advice.confidence, advice.size_scale,
                      advice.win_rate, advice.alignment, advice.reason, used]
            if (situation.symbol, situation.ts_event) in self._logged:
                con.execute(_UPDATE_RECALL, [*values, *key])
            else:
                con.execute("INSERT INTO recalls VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            [*key, *values])
        self._logged.add((situation.symbol, situation.ts_event))

    # -- reads (the in-process dashboard; the CLI uses ``MemoryReader``) -----------------------
    def episodes(self, **filters: Any) -> list[dict[str, Any]]:
        from gnosis.memory.queries import list_episodes

        with self.db.connection() as con:
            return list_episodes(con, **filters)

    def episode(self, episode_id: str) -> dict[str, Any] | None:
        from gnosis.memory.queries import get_episode

        with self.db.connection() as con:
            return get_episode(con, episode_id)

    def stats(self, **filters: Any) -> dict[str, Any]:
        from gnosis.memory.queries import stats

        with self.db.connection() as con:
            return stats(con, **filters)

    # -- history ------------------------------------------------------------------------------
    def count(self) -> int:
        with self.db.connection() as con:
            row = _first(con, "SELECT count(*) FROM episodes")
        return int(row[0]) if row else 0

    def import_closed(self, source: Database, *, before_ts: int | None) -> int:
        """Copy the closed episodes of another store; refuse any that exited at or after
        ``before_ts`` (recalling them in a run starting there would be look-ahead)."""
        with source.connection() as src:
            prepare(src, source.path, create=False)
            latest = _first(src, "SELECT max(exit_ts), count(*) FROM episodes "
                                 "WHERE exit_ts IS NOT NULL")
            if latest is None or latest[0] is None:
                return 0
            if before_ts is not None and latest[0] >= before_ts:
                raise MemoryUnavailable(
                    f"--memory-from {source.path}: its episodes end at {format_ns(latest[0])}, "
                    f"not before this run's first bar at {format_ns(before_ts)}; recalling "
                    "them would be look-ahead: use a store from a run on earlier data")
            table = src.sql("SELECT * FROM episodes WHERE exit_ts IS NOT NULL "
                            "ORDER BY exit_ts, id").to_arrow_table()
        with self._writing("import episodes") as con:
            con.register("incoming", table)
            try:
                con.execute("INSERT INTO episodes SELECT * FROM incoming "
                            "WHERE id NOT IN (SELECT id FROM episodes)")
            finally:
                con.unregister("incoming")
        self.index.close()
        self.index = RecallIndex()
        with self.db.connection() as con:
            self.index.load(con)
            self._load_keys(con)
        return int(latest[1])

    def close(self) -> None:
        self.db.close()
        self.index.close()


def _outcome(trade: Trade, stop_price: float | None, target_price: float | None,
             agree: float | None, config: MemoryConfig) -> Outcome:
    entry = trade.entry_price
    return Outcome(
        won=trade.won, return_pct=trade.return_pct, exit_reason=trade.exit_reason,
        bars_held=trade.bars_held, max_favorable=trade.max_favorable,
        max_adverse=trade.max_adverse,
        stop_pct=None if stop_price is None else abs(entry - stop_price) / entry,
        target_pct=None if target_price is None else abs(target_price - entry) / entry,
        agreement=agree, quick_bars=config.quick_exit_bars,
        split_agreement=config.split_vote_agreement,
    )
