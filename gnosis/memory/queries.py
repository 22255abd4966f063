"""What people ask of a memory file: list episodes, show one, and the statistics over time.

The functions take an open DuckDB connection, so the bot's store (in-process dashboard) and
the read-only ``MemoryReader`` (the CLI, another process) answer with the same queries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from gnosis.memory.store import Database, MemoryUnavailable, explain, prepare

OUTCOMES = ("win", "loss", "open")
_LIST_COLUMNS = ("id", "symbol", "bar_ts", "signal", "confidence", "regime", "entry_price",
                 "quantity", "exit_ts", "pnl", "return_pct", "bars_held", "exit_reason",
                 "rule", "lesson")


def _filters(symbol: str | None, regime: str | None, outcome: str | None,
             alias: str = "") -> tuple[str, list[Any]]:
    prefix = f"{alias}." if alias else ""
    clauses: list[str] = []
    params: list[Any] = []
    if symbol:
        clauses.append(f"{prefix}symbol = ?")
        params.append(symbol.upper())
    if regime:
        clauses.append(f"{prefix}regime = ?")
        params.append(regime)
    if outcome == "win":
        clauses.append(f"{prefix}exit_ts IS NOT NULL AND {prefix}pnl > 0")
    elif outcome == "loss":
        clauses.append(f"{prefix}exit_ts IS NOT NULL AND {prefix}pnl <= 0")
    elif outcome == "open":
        clauses.append(f"{prefix}exit_ts IS NULL")
    elif outcome is not None:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def list_episodes(con: duckdb.DuckDBPyConnection, *, symbol: str | None = None,
                  regime: str | None = None, outcome: str | None = None,
                  limit: int = 50) -> list[dict[str, Any]]:
    """The latest episodes first (by decision time), filtered."""
    where, params = _filters(symbol, regime, outcome)
    cursor = con.execute(
        f"SELECT {', '.join(_LIST_COLUMNS)} FROM episodes{where} "  # noqa: S608
        "ORDER BY decided_ts DESC, id LIMIT ?", [*params, limit])
    return _dicts(cursor)


def get_episode(con: duckdb.DuckDBPyConnection, episode_id: str) -> dict[str, Any] | None:
    """One episode with its situation, outcome, reflection and the recall its entry got.

    ``episode_id`` may be the whole id or any unique part of it; an ambiguous part raises
    ``LookupError`` naming the matches.
    """
    rows = _dicts(con.execute("SELECT * FROM episodes WHERE id = ?", [episode_id]))
    if not rows:
        rows = _dicts(con.execute("SELECT * FROM episodes WHERE contains(id, ?) "
                                  "ORDER BY id LIMIT 6", [episode_id]))
        if len(rows) > 1:
            shown = ", ".join(r["id"] for r in rows[:5])
            raise LookupError(f"{episode_id!r} matches several episodes: {shown}"
                              f"{', ...' if len(rows) > 5 else ''}")
    if not rows:
        return None
    episode = rows[0]
    episode["vector"] = list(episode["vector"])
    recall = _dicts(con.execute("SELECT * FROM recalls WHERE symbol = ? AND bar_ts = ?",
                                [episode["symbol"], episode["bar_ts"]]))
    episode["recall"] = recall[0] if recall else None
    return episode


def stats(con: duckdb.DuckDBPyConnection, *, symbol: str | None = None,
          regime: str | None = None) -> dict[str, Any]:
    """Win rates overall and by regime, symbol, exit reason and reflection rule; what recall
    did (adjustments); both per month of decision time; and how memory's calls turned out."""
    where, params = _filters(symbol, regime, None)
    base = f"(SELECT * FROM episodes{where})"  # noqa: S608
    total = _dicts(con.execute(
        f"""SELECT count(*) AS episodes, count(exit_ts) AS closed,
                   count(*) - count(exit_ts) AS open,
                   count(*) FILTER (WHERE pnl > 0) AS wins,
                   avg(CASE WHEN pnl > 0 THEN 1.0 ELSE 0.0 END) FILTER (WHERE exit_ts
                       IS NOT NULL) AS win_rate,
                   avg(return_pct) AS mean_return, coalesce(sum(pnl), 0) AS total_pnl,
                   min(decided_ts) AS first_ts, max(exit_ts) AS last_exit_ts
            FROM {base}""", params))[0]  # noqa: S608

    def grouped(column: str) -> list[dict[str, Any]]:
        return _dicts(con.execute(
            f"""SELECT {column} AS key, count(*) AS closed,
                       avg(CASE WHEN pnl > 0 THEN 1.0 ELSE 0.0 END) AS win_rate,
                       avg(return_pct) AS mean_return, sum(pnl) AS pnl
                FROM {base} WHERE exit_ts IS NOT NULL
                GROUP BY {column} ORDER BY closed DESC, key""", params))  # noqa: S608

    recall_where, recall_params = _filters(symbol, regime, None)
    recalls_base = f"(SELECT * FROM recalls{recall_where})"  # noqa: S608
    recalls = _dicts(con.execute(
        f"""SELECT count(*) AS recalls,
                   count(*) FILTER (WHERE confidence_after <> confidence_before
                                    OR size_scale <> 1.0) AS adjusted,
                   count(*) FILTER (WHERE size_scale > 1.0) AS scaled_up,
                   count(*) FILTER (WHERE size_scale < 1.0) AS scaled_down,
                   avg(confidence_after - confidence_before) AS mean_confidence_change,
                   avg(size_scale) AS mean_size_scale,
                   avg(len(episodes)) AS mean_episodes_used,
                   avg(win_rate) AS mean_recalled_win_rate
            FROM {recalls_base}""", recall_params))[0]  # noqa: S608
    over_time = _dicts(con.execute(
        f"""WITH closed AS (
                SELECT strftime(make_timestamp(decided_ts // 1000), '%Y-%m') AS month,
                       count(*) AS closed,
                       avg(CASE WHEN pnl > 0 THEN 1.0 ELSE 0.0 END) AS win_rate,
                       avg(return_pct) AS mean_return
                FROM {base} WHERE exit_ts IS NOT NULL GROUP BY month),
            recalled AS (
                SELECT strftime(make_timestamp(decided_ts // 1000), '%Y-%m') AS month,
                       count(*) AS recalls,
                       count(*) FILTER (WHERE confidence_after <> confidence_before
                                        OR size_scale <> 1.0) AS adjusted,
                       avg(confidence_after - confidence_before) AS mean_confidence_change,
                       avg(size_scale) AS mean_size_scale
                FROM {recalls_base} GROUP BY month)
            SELECT month, coalesce(c.closed, 0) AS closed, c.win_rate, c.mean_return,
                   coalesce(r.recalls, 0) AS recalls, coalesce(r.adjusted, 0) AS adjusted,
                   r.mean_confidence_change, r.mean_size_scale
            FROM closed c FULL OUTER JOIN recalled r USING (month)
            ORDER BY month""", [*params, *recall_params]))  # noqa: S608
    calls = _dicts(con.execute(
        f"""SELECT CASE WHEN r.size_scale IS NULL THEN 'no recall'
                        WHEN r.size_scale > 1.0 THEN 'scaled up'
                        WHEN r.size_scale < 1.0 THEN 'scaled down'
                        ELSE 'unchanged' END AS advice,
                   count(*) AS closed,
                   avg(CASE WHEN e.pnl > 0 THEN 1.0 ELSE 0.0 END) AS win_rate,
                   avg(e.return_pct) AS mean_return, sum(e.pnl) AS pnl
            FROM {base} e LEFT JOIN recalls r ON r.symbol = e.symbol AND r.bar_ts = e.bar_ts
            WHERE e.exit_ts IS NOT NULL
            GROUP BY advice ORDER BY advice""", params))  # noqa: S608
    return {
        **total,
        "by_regime": grouped("regime"),
        "by_symbol": grouped("symbol"),
        "by_exit_reason": grouped("exit_reason"),
        "by_rule": grouped("rule"),
        "recalls": recalls,
        "over_time": over_time,
        "memory_calls": calls,
    }


class MemoryReader:
    """Read-only access to a memory file for the CLI and a dashboard in another process.

    The bot opens the file only for the milliseconds of each write, so a reader waits at most
    ``lock_timeout_s`` for it; a file that stays locked (another program holding it) or is
    corrupt raises ``MemoryUnavailable`` with the reason.
    """

    def __init__(self, path: Path, *, lock_timeout_s: float = 5.0) -> None:
        if not path.exists():
            raise MemoryUnavailable(f"no episodic memory at {path} (it is created by "
                                    "`gnosis run`, or `gnosis backtest --memory on "
                                    "--state-dir DIR`)")
        self.path = path
        try:
            self.db = Database(path, shared=True, read_only=True,
                               lock_timeout_s=lock_timeout_s)
            with self.db.connection() as con:
                prepare(con, path, create=False)
        except duckdb.Error as exc:
            raise MemoryUnavailable(explain(path, exc)) from None

    def _run(self, query: Any, **kwargs: Any) -> Any:
        try:
            with self.db.connection() as con:
                return query(con, **kwargs)
        except duckdb.Error as exc:
            raise MemoryUnavailable(explain(self.path, exc)) from None

    def episodes(self, **filters: Any) -> list[dict[str, Any]]:
        return self._run(list_episodes, **filters)

    def episode(self, episode_id: str) -> dict[str, Any] | None:
        return self._run(get_episode, episode_id=episode_id)

    def stats(self, **filters: Any) -> dict[str, Any]:
        return self._run(stats, **filters)
