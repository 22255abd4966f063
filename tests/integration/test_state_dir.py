"""Who owns a state directory: real processes, real locks, real files.

One process owns a ``--state-dir``; others are refused with one line naming the owner's pid.
Operator commands reach a running bot through its inbox; a stopped bot's state is changed
with the configured risk settings. Bad directories and files get one line, never a traceback,
and nothing stored is lost.
"""

from __future__ import annotations

import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def gnosis(*args: str, env: dict[str, str] | None = None,
           timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gnosis.cli", *args], capture_output=True,
                          text=True, env=env or ENV, timeout=timeout)


def run_args(state: Path, *extra: str) -> list[str]:
    return ["run", "--state-dir", str(state), "--warmup-days", "1", "--days", "5",
            "--quiet", "--json", *extra]


def committed(state: Path) -> int:
    try:
        db = sqlite3.connect(state / "state.db", timeout=5)
        try:
            row = db.execute("SELECT sequence FROM snapshot").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return 0
    return 0 if row is None else int(row[0])


@contextmanager
def live_bot(state: Path, *extra: str) -> Iterator[subprocess.Popen[str]]:
    """A real `gnosis run` that trades slowly, until the block ends (then SIGTERM)."""
    process = subprocess.Popen([sys.executable, "-m", "gnosis.cli",
                                *run_args(state, "--speed", "600", *extra)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=ENV)
    try:
        deadline = time.monotonic() + 120
        while committed(state) <= 390:  # past the warm-up: trading live
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the bot never started trading"
            time.sleep(0.05)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def test_a_second_owner_is_refused_with_the_owners_pid(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with live_bot(state) as bot:
        journal_before = (state / "state.db").stat().st_size
        for args in (run_args(state), run_args(state, "--fresh"),
                     ["backtest", "--synthetic", "--bars", "500", "--state-dir", str(state)],
                     ["backtest", "--synthetic", "--bars", "500", "--state-dir", str(state),
                      "--fresh"]):
            line = one_line(gnosis(*args))
            assert f"in use by another gnosis process (pid {bot.pid})" in line, line
        assert bot.poll() is None, "the owner must keep running"
        assert (state / "state.db").stat().st_size >= journal_before  # --fresh deleted nothing
    assert committed(state) > 390


def test_operator_commands_go_through_the_running_bot(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with live_bot(state):
        halted = gnosis("halt", "--state-dir", str(state), "--reason", "lunch")
        assert halted.returncode == 0, halted.stderr
        assert "active -> halted" in halted.stdout
        resumed = gnosis("resume", "--state-dir", str(state))
        assert resumed.returncode == 0, resumed.stderr
        assert "halted -> active" in resumed.stdout
    db = sqlite3.connect(state / "state.db")
    events = [row[0] for row in db.execute("SELECT message FROM events ORDER BY rowid")]
    db.close()
    assert any("operator command: halt (lunch)" in e for e in events), events
    assert any("active -> halted: lunch" in e for e in events), events
    assert any("halted -> active" in e for e in events), events


def test_offline_resume_uses_the_configured_risk_settings(tmp_path: Path) -> None:
    state = tmp_path / "state"
    done = gnosis(*run_args(state, "--speed", "1e9", "--max-bars", "50"))
    assert done.returncode == 0, done.stderr
    assert gnosis("halt", "--state-dir", str(state)).returncode == 0
    env = {**ENV, "GNOSIS_RISK__MAX_DRAWDOWN_PCT": "0.02"}
    resumed = gnosis("resume", "--state-dir", str(state), env=env)
    assert resumed.returncode == 0 and "halted -> active" in resumed.stdout, resumed
    db = sqlite3.connect(state / "state.db")
    snapshot = pickle.loads(db.execute("SELECT body FROM snapshot").fetchone()[0])  # noqa: S301
    db.close()
    risk = snapshot["risk"]
    assert risk["state"] == "active"
    assert risk["halt_below"] == pytest.approx(risk["last"] * 0.98)  # not the default 10%


def test_resume_on_a_missing_directory_says_so_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    line = one_line(gnosis("resume", "--state-dir", str(missing)))
    assert "no saved state in" in line
    assert not missing.exists()


def test_a_restart_of_another_run_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = gnosis(*run_args(state, "--speed", "1e9", "--max-bars", "20", "--symbols", "SPY"))
    assert first.returncode == 0, first.stderr
    for change in (["--symbols", "QQQ"], ["--seed", "8"], ["--strategy", "sma"],
                   ["--days", "6"]):
        line = one_line(gnosis(*run_args(state, "--speed", "1e9", "--max-bars", "20",
                                          *change)))
        assert "holds another run" in line and "--fresh" in line, line
    fresh = gnosis(*run_args(state, "--speed", "1e9", "--max-bars", "20", "--symbols", "QQQ",
                             "--fresh"))
    assert fresh.returncode == 0, fresh.stderr


def test_bad_state_directories_get_one_line_and_lose_nothing(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    garbage = b"this is not a database" * 100
    (corrupt / "state.db").write_bytes(garbage)
    line = one_line(gnosis(*run_args(corrupt, "--max-bars", "5")))
    assert "not a readable Gnosis state file" in line and "--fresh" in line
    assert (corrupt / "state.db").read_bytes() == garbage  # nothing lost

    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    assert "is a file, not a folder" in one_line(gnosis(*run_args(a_file, "--max-bars", "5")))
    assert a_file.read_text() == "mine"


def test_a_backtest_does_not_overwrite_a_stored_run(tmp_path: Path) -> None:
    state = tmp_path / "state"
    args = ["backtest", "--synthetic", "--bars", "300", "--state-dir", str(state), "--json",
            "--no-progress"]
    assert gnosis(*args).returncode == 0
    line = one_line(gnosis(*args))
    assert "already holds a run" in line and "--fresh" in line
    assert gnosis(*args, "--fresh").returncode == 0
