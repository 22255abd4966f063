"""The agents' per-symbol state lives in its own rows: a bar's commit rewrites its symbol's row
only, a restart from it is exact, and a state directory from before the split still loads."""

from __future__ import annotations

import pickle
import sqlite3
from pathlib import Path

import pytest

from gnosis.bootstrap import build_system, synthetic_market
from gnosis.core.config import load_config
from gnosis.model.types import Bar
from gnosis.trading.state import DB_NAME, StateError, StateStore

SYMBOLS = ("SPY", "QQQ")


@pytest.fixture(scope="module")
def bars() -> list[Bar]:
    config = load_config(market={"symbols": SYMBOLS, "seed": 7})
    return list(synthetic_market(config, 2 * 1_500).bars())[:2 * 1_400]


def system(state: Path | None, bars: list[Bar]):  # noqa: ANN201 - the bootstrap's System
    config = load_config(market={"symbols": SYMBOLS, "seed": 7})
    market = synthetic_market(config, 2 * 1_500)
    return build_system(config, market, market=market, state_dir=state)


def stored_then_edited(state: Path, bars: list[Bar], sql: str) -> None:
    """50 bars into ``state``, then ``sql`` run on its state file (as a person or a bad disk
    might)."""
    run = system(state, bars)
    for bar in bars[:50]:
        run.engine.on_bar(bar)
    run.store.close()
    with sqlite3.connect(state / DB_NAME) as db:
        db.execute(sql)


def parts(state: Path) -> dict[str, bytes]:
    with sqlite3.connect(state / DB_NAME) as db:
        return dict(db.execute("SELECT key, body FROM strategy_parts").fetchall())


def main_snapshot_size(state: Path) -> int:
    with sqlite3.connect(state / DB_NAME) as db:
        return len(db.execute("SELECT body FROM snapshot").fetchone()[0])


def test_a_bar_rewrites_its_own_symbols_state_only(tmp_path: Path, bars: list[Bar]) -> None:
    run = system(tmp_path, bars)
    for bar in bars[:-2]:
        run.engine.on_bar(bar)
    before = parts(tmp_path)
    assert set(before) == set(SYMBOLS)
    last = bars[-2]
    run.engine.on_bar(last)
    after = parts(tmp_path)
    other = next(s for s in SYMBOLS if s != last.symbol)
    assert after[other] == before[other]
    assert after[last.symbol] != before[last.symbol]
    # the main snapshot no longer carries the brains (~130 KB a symbol, the HMM's window)
    assert main_snapshot_size(tmp_path) < 30_000 < min(len(b) for b in after.values())
    run.store.close()


def test_a_restart_from_split_state_ends_where_an_uninterrupted_run_ends(
        tmp_path: Path, bars: list[Bar]) -> None:
    whole = system(None, bars)
    for bar in bars:
        whole.engine.on_bar(bar)
    cut = 1_700  # past both symbols' first fit (decided at bar 600, in effect at 990)
    first = system(tmp_path, bars)
    for bar in bars[:cut]:
        first.engine.on_bar(bar)
    first.store.close()
    second = system(tmp_path, bars)
    assert second.engine.resume_from_store()
    for bar in bars[cut:]:
        second.engine.on_bar(bar)
    assert second.engine.summary() == whole.engine.summary()
    assert second.engine.summary()["trades"] > 0
    second.store.close()


def test_a_state_directory_from_before_the_split_still_loads(tmp_path: Path,
                                                             bars: list[Bar]) -> None:
    """Written as the previous version did: the whole strategy in the snapshot blob and no
    strategy_parts table (journal schema 2)."""
    whole = system(None, bars)
    for bar in bars:
        whole.engine.on_bar(bar)
    cut = 1_500
    old = system(tmp_path, bars)
    for bar in bars[:cut]:
        old.engine.on_bar(bar)
    snapshot = old.engine.snapshot()
    snapshot["strategy"] = old.engine.strategy.snapshot()
    del snapshot["strategy_split"]
    old.store.commit(old.engine.sequence, snapshot)
    old.store.close()
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        db.execute("DROP TABLE strategy_parts")
    new = system(tmp_path, bars)
    assert new.engine.resume_from_store()
    for bar in bars[cut:]:
        new.engine.on_bar(bar)
    assert new.engine.summary() == whole.engine.summary()
    new.store.close()


def test_missing_symbol_state_is_refused_with_the_symbols(tmp_path: Path,
                                                         bars: list[Bar]) -> None:
    stored_then_edited(tmp_path, bars, "DELETE FROM strategy_parts WHERE key = 'QQQ'")
    store = StateStore(tmp_path)
    loaded = store.load()
    assert loaded is not None and set(loaded[1]["strategy_parts"]) == {"SPY"}
    store.close()
    again = system(tmp_path, bars)
    with pytest.raises(StateError, match="lacks the symbols \\['QQQ'\\].*--fresh"):
        again.engine.resume_from_store()
    again.store.close()


def test_loaded_parts_are_not_written_back_into_the_snapshot(tmp_path: Path,
                                                            bars: list[Bar]) -> None:
    """An offline command (gnosis resume) loads, edits and commits the snapshot: the parts it
    was given stay in their rows, not in the snapshot blob."""
    run = system(tmp_path, bars)
    for bar in bars[:50]:
        run.engine.on_bar(bar)
    run.store.close()
    store = StateStore(tmp_path)
    sequence, snapshot = store.load()  # type: ignore[misc]
    store.commit(sequence, snapshot)
    store.close()
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        body = pickle.loads(db.execute("SELECT body FROM snapshot").fetchone()[0])  # noqa: S301
    assert "strategy_parts" not in body and set(parts(tmp_path)) == set(SYMBOLS)


def journal(state: Path, run_id: str) -> dict[str, list[tuple]]:
    tables = ("fills", "trades", "orders", "equity", "events")
    with sqlite3.connect(state / DB_NAME) as db:
        return {table: [tuple(str(v).replace(run_id, "RUN") for v in row)
                        for row in db.execute(f"SELECT * FROM {table} ORDER BY rowid")]  # noqa: S608
                for table in tables}


def test_a_burst_commits_once_and_journals_each_bar_under_its_own_sequence(
        tmp_path: Path, bars: list[Bar]) -> None:
    """Grouping bars into commits changes nothing in the journal: every row keeps its bar's
    sequence, every bar its equity row."""
    runs = []
    for group in (1, 7):
        state = tmp_path / f"group{group}"
        run = system(state, bars)
        for n, bar in enumerate(bars[:1_200], start=1):
            run.engine.on_bar(bar, commit=n % group == 0)
        assert run.engine.uncommitted_bars == 1_200 % group
        run.engine.commit_now()
        assert run.engine.uncommitted_bars == 0
        runs.append(journal(state, run.engine.run_id))
        run.store.close()
    per_bar, grouped = runs
    assert grouped == per_bar
    assert len(per_bar["equity"]) == 1_200 and per_bar["orders"]


def test_a_kill_before_the_bursts_commit_replays_the_burst(tmp_path: Path,
                                                           bars: list[Bar]) -> None:
    whole = system(None, bars)
    for bar in bars:
        whole.engine.on_bar(bar)
    first = system(tmp_path, bars)
    for bar in bars[:1_200]:
        first.engine.on_bar(bar)
    for bar in bars[1_200:1_260]:  # a burst processed, then the process dies uncommitted
        first.engine.on_bar(bar, commit=False)
    first.store.close()
    again = system(tmp_path, bars)
    assert again.engine.resume_from_store()
    assert again.engine.sequence == 1_200
    for bar in bars[1_200:]:
        again.engine.on_bar(bar)
    assert again.engine.summary() == whole.engine.summary()
    again.store.close()


def test_work_between_bars_is_journaled_under_the_last_bars_sequence(
        tmp_path: Path, bars: list[Bar]) -> None:
    run = system(tmp_path, bars)
    for bar in bars[:40]:
        run.engine.on_bar(bar)
    for bar in bars[40:45]:
        run.engine.on_bar(bar, commit=False)
    run.engine.note("operator says hello")
    run.engine.commit_now()
    events = [row for row in run.store.rows("events") if row["kind"] == "notice"]
    assert [(row["sequence"], row["message"]) for row in events] == [
        (45, "operator says hello")]
    assert [row["sequence"] for row in run.store.rows("equity")] == list(range(1, 46))
    written = {table: len(run.store.rows(table)) for table in ("events", "equity", "fills")}
    run.engine.commit_now()  # nothing new: nothing written twice
    assert {table: len(run.store.rows(table)) for table in written} == written
    run.store.close()


def test_an_unreadable_symbol_state_is_refused_in_one_line(tmp_path: Path,
                                                           bars: list[Bar]) -> None:
    stored_then_edited(tmp_path, bars,
                       "UPDATE strategy_parts SET body = x'00112233' WHERE key = 'SPY'")
    again = system(tmp_path, bars)
    with pytest.raises(StateError, match="cannot be restored \\(UnpicklingError.*--fresh"):
        again.engine.resume_from_store()
    again.store.close()
