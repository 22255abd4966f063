"""The memory store on real DuckDB files: write, reflect, recall, adjust, restart, recall
again; idempotent replays; the causal cut; corrupt and locked files; --memory-from."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gnosis.core.config import MemoryConfig
from gnosis.memory import (
    DuckDBMemory,
    MemoryReader,
    MemoryStoreError,
    MemoryUnavailable,
    memory_path,
    open_memory,
)
from tests.integration.memory_writer import MINUTE, episode_id, situation, trade


def remember(memory: DuckDBMemory, i: int, *, close: bool = True) -> None:
    s = situation(i)
    memory.open_episode(episode_id(i), s, entry_price=s.price, quantity=10.0,
                        stop_price=s.price * (1 - 0.01 * s.signal),
                        target_price=s.price * (1 + 0.02 * s.signal))
    if close:
        memory.close_episode(episode_id(i), trade(i))


def like(i: int, later: int):
    """Situation i again, decided ``later`` minutes after situation i's bar."""
    s = situation(i)
    return replace(s, ts_event=s.ts_event + later * MINUTE,
                   ts_decided=s.ts_decided + later * MINUTE)


def test_write_reflect_recall_adjust_restart_recall_again(tmp_path: Path) -> None:
    memory = open_memory(tmp_path)  # live: a short-lived connection per write
    assert memory is not None
    for i in range(12):
        remember(memory, i)
    remember(memory, 40, close=False)  # an open episode is never recalled
    probe = like(11, 500)
    advice = memory.advise(probe)
    assert len(advice.episodes) >= 3
    assert all(e.exit_ts < probe.ts_event for e in advice.episodes)
    assert episode_id(40) not in {e.episode_id for e in advice.episodes}
    assert advice.size_scale != 1.0 and advice.confidence != probe.confidence
    assert advice.episodes[0].similarity == pytest.approx(1.0, abs=1e-6)  # itself, recalled
    shown = memory.episode(episode_id(3))
    assert shown is not None and shown["exit_ts"] is not None
    assert shown["rule"] and shown["critique"] and shown["lesson"]
    assert shown["recall"] is None  # its entry was not advised
    memory.close()

    restarted = open_memory(tmp_path)  # a new process would see exactly this
    assert restarted is not None
    assert restarted.advise(probe) == advice
    assert len(restarted.index) == 12
    assert restarted.episode(episode_id(40))["exit_ts"] is None
    restarted.close_episode(episode_id(40), trade(40))
    later = restarted.advise(like(40, 500))
    assert episode_id(40) in {e.episode_id for e in later.episodes}
    logged = MemoryReader(memory_path(tmp_path)).stats()["recalls"]["recalls"]
    assert logged == 2  # the same recall logged twice is one row


def test_replayed_writes_leave_one_row_each(tmp_path: Path) -> None:
    memory = open_memory(tmp_path)
    assert memory is not None
    for _ in range(3):
        memory.advise(situation(0))
        remember(memory, 0)
    reader = MemoryReader(memory_path(tmp_path))
    stats = reader.stats()
    assert (stats["episodes"], stats["closed"], stats["recalls"]["recalls"]) == (1, 1, 1)
    assert len(memory.index) == 1


def test_an_exit_on_the_decision_bar_or_later_is_not_recalled() -> None:
    memory = open_memory(None, backtest=True)
    assert memory is not None
    remember(memory, 0)
    exit_ts = trade(0).exit_ts
    at_exit = replace(situation(0), ts_event=exit_ts, ts_decided=exit_ts + MINUTE)
    after = replace(situation(0), ts_event=exit_ts + MINUTE, ts_decided=exit_ts + 2 * MINUTE)
    assert memory.advise(at_exit).episodes == ()
    assert [e.episode_id for e in memory.advise(after).episodes] == [episode_id(0)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exits=st.lists(st.integers(0, 400), min_size=1, max_size=15),
       decided=st.lists(st.integers(0, 420), min_size=1, max_size=5))
def test_recall_never_admits_an_exit_at_or_after_the_decision(exits: list[int],
                                                              decided: list[int]) -> None:
    memory = open_memory(None, backtest=True, config=MemoryConfig(min_similarity=-0.99))
    assert memory is not None
    base = situation(0)
    for n, minute in enumerate(exits):
        memory.open_episode(f"e{n}", base, entry_price=100.0, quantity=1.0, stop_price=None,
                            target_price=None)
        memory.close_episode(f"e{n}", replace(trade(0), exit_ts=base.ts_event + minute * MINUTE,
                                              entry_order_id=f"e{n}"))
    for minute in decided:
        probe = replace(base, ts_event=base.ts_event + minute * MINUTE,
                        ts_decided=base.ts_event + (minute + 1) * MINUTE)
        recalled = memory.advise(probe).episodes
        assert all(e.exit_ts < probe.ts_event < probe.ts_decided for e in recalled)
        assert len(recalled) == min(sum(m < minute for m in exits), memory.config.k)
    memory.close()


def test_recall_scans_only_the_most_recent_candidates() -> None:
    memory = open_memory(None, backtest=True, config=MemoryConfig(max_candidates=100, k=1000,
                                                                  min_similarity=-0.99))
    assert memory is not None
    for i in range(150):
        remember(memory, i)
    recalled = memory.advise(like(149, 1000)).episodes
    assert {e.episode_id for e in recalled} == {episode_id(i) for i in range(50, 150)}


def test_a_corrupt_file_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    memory = open_memory(tmp_path, backtest=True)  # one connection: quicker to fill
    assert memory is not None
    for i in range(300):  # enough rows that the data spans several blocks
        memory.open_episode(episode_id(i), situation(i), entry_price=1.0, quantity=1.0,
                            stop_price=None, target_price=None)
    memory.close()
    path = memory_path(tmp_path)
    size = path.stat().st_size
    with path.open("r+b") as handle:  # scribble over the middle of the data blocks
        handle.seek(size // 2)
        handle.write(os.urandom(size // 4))
    with pytest.raises(MemoryUnavailable, match="corrupt"):
        open_memory(tmp_path)
    with pytest.raises(MemoryUnavailable, match="corrupt"):
        MemoryReader(path)
    path.write_bytes(b"not a database\n" * 1000)
    with pytest.raises(MemoryUnavailable, match="corrupt.*move it aside"):
        open_memory(tmp_path)


def test_a_file_of_another_program_is_refused(tmp_path: Path) -> None:
    con = duckdb.connect(str(memory_path(tmp_path)))
    con.execute("CREATE TABLE prices (x INTEGER)")
    con.close()
    with pytest.raises(MemoryUnavailable, match="not a Gnosis memory"):
        open_memory(tmp_path)


def hold_lock(path: Path) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('holding', flush=True); time.sleep(120)", str(path)],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    return holder


def test_a_lock_held_by_another_process(tmp_path: Path) -> None:
    config = MemoryConfig(lock_timeout_s=0.2)
    memory = open_memory(tmp_path, config=config)
    assert memory is not None
    remember(memory, 0)
    holder = hold_lock(memory_path(tmp_path))
    try:
        with pytest.raises(MemoryUnavailable,
                           match=rf"locked by another process.*PID {holder.pid}"):
            open_memory(tmp_path, config=config)
        with pytest.raises(MemoryUnavailable, match="locked"):
            MemoryReader(memory_path(tmp_path), lock_timeout_s=0.2)
        with pytest.raises(MemoryStoreError, match="open episode .*locked"):
            remember(memory, 1)  # the running bot's next write: the engine drops memory
        with pytest.raises(MemoryStoreError, match="log the recall .*locked"):
            memory.advise(like(0, 100))
    finally:
        holder.kill()
        holder.communicate()
    remember(memory, 1)  # the lock is gone: writes work again
    assert MemoryReader(memory_path(tmp_path)).stats()["closed"] == 2


def test_readers_read_while_a_process_writes(tmp_path: Path) -> None:
    writer = subprocess.Popen([sys.executable, "-m", "tests.integration.memory_writer",
                               str(tmp_path), "0", "8"], stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    writer.stdout.readline()
    seen = []
    while writer.poll() is None:
        seen.append(MemoryReader(memory_path(tmp_path)).stats()["closed"])
        time.sleep(0.05)
    writer.communicate()
    assert writer.returncode == 0
    assert seen == sorted(seen) and len(seen) >= 3, seen
    assert MemoryReader(memory_path(tmp_path)).stats()["closed"] == 8


def test_memory_from_refuses_look_ahead_and_seeds_a_backtest(tmp_path: Path) -> None:
    earlier = open_memory(tmp_path / "earlier", backtest=True)
    assert earlier is not None
    for i in range(10):
        remember(earlier, i)
    remember(earlier, 10, close=False)  # open episodes are not carried over
    earlier.close()
    last_exit = trade(9).exit_ts
    with pytest.raises(MemoryUnavailable, match="look-ahead"):
        open_memory(None, backtest=True, from_dir=tmp_path / "earlier", starts_at=last_exit)
    seeded = open_memory(None, backtest=True, from_dir=tmp_path / "earlier",
                         starts_at=last_exit + 1)
    assert seeded is not None and seeded.count() == 10 and len(seeded.index) == 10
    assert seeded.advise(like(9, 100)).episodes
    with pytest.raises(MemoryUnavailable, match="already holds 11 episodes"):
        open_memory(tmp_path / "earlier", backtest=True)
    with pytest.raises(MemoryUnavailable, match="no memory.duckdb"):
        open_memory(None, backtest=True, from_dir=tmp_path / "nowhere")


def test_ties_go_to_the_later_exit_then_the_smaller_id() -> None:
    memory = open_memory(None, backtest=True, config=MemoryConfig(k=2, min_episodes=1))
    assert memory is not None
    base = situation(0)
    exit_ts = base.ts_event + 5 * MINUTE
    for name, exit_at in (("e-c", exit_ts), ("e-a", exit_ts), ("e-b", exit_ts),
                          ("e-0", exit_ts - MINUTE)):
        memory.open_episode(name, base, entry_price=100.0, quantity=1.0, stop_price=None,
                            target_price=None)
        memory.close_episode(name, replace(trade(0), exit_ts=exit_at, entry_order_id=name))
    probe = replace(base, ts_event=exit_ts + MINUTE, ts_decided=exit_ts + 2 * MINUTE)
    assert [e.episode_id for e in memory.advise(probe).episodes] == ["e-a", "e-b"]
    memory.close()
