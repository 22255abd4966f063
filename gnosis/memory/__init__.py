"""Episodic memory (DESIGN §6): a DuckDB file of past entries, their outcomes and lessons,
recalled by situation similarity to nudge confidence and size within bounds.

``open_memory`` is the one wiring function: the CLI (``gnosis run``, ``gnosis backtest``)
and ``LiveTradingBot(enable_memory=...)`` all call it.
"""

from __future__ import annotations

from pathlib import Path

from gnosis.core.config import MemoryConfig
from gnosis.memory.queries import MemoryReader
from gnosis.memory.store import (
    Database,
    DuckDBMemory,
    MemoryStoreError,
    MemoryUnavailable,
    explain,
)
from gnosis.memory.vector import COMPONENTS, DIMENSION, situation_vector

MEMORY_FILE = "memory.duckdb"

__all__ = [
    "COMPONENTS",
    "DIMENSION",
    "MEMORY_FILE",
    "DuckDBMemory",
    "MemoryReader",
    "MemoryStoreError",
    "MemoryUnavailable",
    "discard_memory",
    "memory_path",
    "open_memory",
    "situation_vector",
]


def memory_path(state_dir: Path) -> Path:
    """Where a state directory keeps its episodic memory."""
    return Path(state_dir) / MEMORY_FILE


def discard_memory(state_dir: Path) -> None:
    """Delete a state directory's memory (``gnosis run --fresh``: its episode ids belong to
    the discarded run, and a fresh run of the same market would meet them again)."""
    path = memory_path(state_dir)
    for suffix in ("", ".wal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def open_memory(state_dir: Path | None, *, enabled: bool = True,
                config: MemoryConfig | None = None, from_dir: Path | None = None,
                starts_at: int | None = None, backtest: bool = False) -> DuckDBMemory | None:
    """The episodic memory of a run, or None when it is switched off.

    Live (``backtest=False``): ``<state_dir>/memory.duckdb``, kept across restarts and runs,
    opened in shared mode so the CLI and a dashboard can read it while the bot trades.
    Backtest: starts empty (in memory without a state directory); ``from_dir`` copies the
    closed episodes of an earlier run's store, refused when any exited at or after
    ``starts_at`` (the first bar), which would be look-ahead.

    Raises ``MemoryUnavailable`` with a clear message when a file is corrupt, locked, of
    another version, or not usable for this run; the caller decides whether to trade on
    without memory (``gnosis run``) or to stop (a backtest that asked for memory).
    """
    if not enabled:
        if from_dir is not None:
            raise MemoryUnavailable("--memory-from needs --memory on")
        return None
    config = config or MemoryConfig()
    if backtest:
        path = None if state_dir is None else memory_path(state_dir)
        memory = DuckDBMemory(path, config, shared=False)
        stored = memory.count()
        if stored:
            memory.close()
            raise MemoryUnavailable(
                f"{path} already holds {stored} episodes of an earlier run; a backtest "
                "starts with an empty memory: use another --state-dir, and pass this one as "
                "--memory-from to start from its episodes")
    else:
        if state_dir is None:
            raise MemoryUnavailable("live episodic memory needs a state directory")
        memory = DuckDBMemory(memory_path(state_dir), config, shared=True)
    if from_dir is not None:
        source_path = memory_path(from_dir) if Path(from_dir).is_dir() else Path(from_dir)
        if not source_path.exists():
            memory.close()
            raise MemoryUnavailable(f"--memory-from {from_dir}: no {MEMORY_FILE} there")
        try:
            import duckdb

            try:
                source = Database(source_path, shared=True, read_only=True,
                                  lock_timeout_s=config.lock_timeout_s)
                memory.import_closed(source, before_ts=starts_at)
            except duckdb.Error as exc:
                raise MemoryUnavailable(explain(source_path, exc)) from None
        except BaseException:
            memory.close()
            raise
    return memory
