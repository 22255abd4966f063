"""SIGKILL a real process while it writes episodes to a real memory file: nothing it had
committed is lost or half-written, and replaying the writes after each kill (as the engine
does after a crash) ends in exactly the file an uninterrupted writer produces."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from gnosis.memory import memory_path, open_memory
from tests.integration import memory_writer as writer

pytestmark = pytest.mark.slow

EPISODES = 45
KILLS = 8
REPLAY = 2  # a restart replays the last few writes, as the engine replays uncommitted bars


def tables(path: Path | None, memory=None) -> dict[str, list[tuple]]:
    con = memory.db._persistent if memory is not None else duckdb.connect(str(path),
                                                                         read_only=True)
    try:
        return {
            "episodes": con.execute("SELECT * EXCLUDE (vector), vector::DOUBLE[] "
                                    "FROM episodes ORDER BY id").fetchall(),
            "recalls": con.execute("SELECT * FROM recalls ORDER BY symbol, bar_ts").fetchall(),
        }
    finally:
        if memory is None:
            con.close()


def check_committed(path: Path, confirmed: dict[str, int]) -> None:
    """Everything the writer confirmed is there and whole; no row is half-written."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute("SELECT id, exit_ts IS NULL, pnl IS NULL, lesson IS NULL, "
                           "critique IS NULL, exit_reason IS NULL FROM episodes").fetchall()
        recalled = {r[0] for r in con.execute("SELECT bar_ts FROM recalls").fetchall()}
    finally:
        con.close()
    state = {row[0]: row[1:] for row in rows}
    assert len(state) == len(rows)
    for episode, nulls in state.items():
        assert len(set(nulls)) == 1, f"{episode} is half-closed: {nulls}"
    for i in range(confirmed.get("opened", -1) + 1):
        assert writer.episode_id(i) in state, f"opened episode {i} was lost"
    for i in range(confirmed.get("closed", -1) + 1):
        assert state[writer.episode_id(i)][0] is False, f"closed episode {i} lost its outcome"
    for i in range(confirmed.get("recalled", -1) + 1):
        assert writer.situation(i).ts_event in recalled, f"recall {i} was lost"


def test_sigkill_during_writes_loses_nothing_committed(tmp_path: Path) -> None:
    seed = int(os.environ.get("GNOSIS_TEST_SEED", "20261125"))
    print(f"kill-timing seed {seed}")
    rng = random.Random(seed)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    directory = tmp_path / "crashed"
    confirmed: dict[str, int] = {}
    kills, moments = 0, []
    while kills < KILLS:
        first = max(0, confirmed.get("closed", -1) + 1 - REPLAY)
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.memory_writer", str(directory),
             str(first), str(EPISODES)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        assert process.stdout is not None
        # let it commit a random number of writes, then kill it a random instant later:
        # inside a transaction, a connection's open or its checkpoint on close
        lines = [process.stdout.readline() for _ in range(rng.randint(1, 12))]
        assert lines[0], process.stderr.read() if process.stderr else "writer died"
        time.sleep(rng.uniform(0.0, 0.08))
        process.send_signal(signal.SIGKILL)
        out, _ = process.communicate(timeout=30)
        if process.returncode == 0:  # finished before the kill landed
            break
        kills += 1
        for what, i in (ln.split() for ln in [*lines, *out.splitlines()] if ln.strip()):
            confirmed[what] = max(confirmed.get(what, -1), int(i))
        moments.append(confirmed.get("closed", -1))
        check_committed(memory_path(directory), confirmed)
    subprocess.run([sys.executable, "-m", "tests.integration.memory_writer", str(directory),
                    str(max(0, confirmed.get("closed", -1) + 1 - REPLAY)), str(EPISODES)],
                   check=True, capture_output=True, env=env, timeout=300)

    print(f"{kills} kills; episodes closed at each kill: {moments}")
    assert kills >= KILLS - 2, f"only {kills} kills landed"
    assert len(set(moments)) >= 3, f"kills did not land at distinct moments: {moments}"
    reference = open_memory(None, backtest=True)
    assert reference is not None
    for i in range(EPISODES):  # the same writes, uninterrupted, in an in-memory store
        s = writer.situation(i)
        reference.advise(s)
        reference.open_episode(writer.episode_id(i), s, entry_price=s.price, quantity=10.0,
                               stop_price=s.price * (1 - 0.01 * s.signal),
                               target_price=s.price * (1 + 0.02 * s.signal))
        reference.close_episode(writer.episode_id(i), writer.trade(i))
    expected = tables(None, reference)
    assert len(expected["episodes"]) == EPISODES
    assert tables(memory_path(directory)) == expected
