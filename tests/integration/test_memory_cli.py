"""The command line around memory: backtest --memory on|off|--memory-from, gnosis memory
stats|list|show, and gnosis run trading on when its memory file is corrupt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gnosis.bootstrap import build_system, synthetic_market
from gnosis.cli import main
from gnosis.core.config import load_config
from gnosis.memory import memory_path, open_memory


def gnosis(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def backtest(capsys: pytest.CaptureFixture[str], *extra: str) -> dict:
    code, out, err = gnosis(capsys, "backtest", "--synthetic", "--bars", "3000", "--seed", "5",
                            "--json", *extra)
    assert code == 0, err
    return json.loads(out)


def test_backtest_memory_on_off_and_the_memory_commands(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    off = backtest(capsys, "--memory", "off")
    assert "memory" not in off
    on = backtest(capsys, "--memory", "on")
    effects = on["memory"]
    assert effects["recalls"] > 0 and effects["available"] is True
    assert set(effects) >= {"scaled_up", "scaled_down", "refused_by_memory", "adjusted",
                            "mean_confidence_change", "mean_size_scale"}
    # the same replay into a memory file (the CLI's --state-dir would also commit the engine
    # state on every bar, which only slows this test down)
    config = load_config(market={"seed": 5})
    memory = open_memory(tmp_path / "run", config=config.memory, backtest=True)
    market = synthetic_market(config, 3000)
    system = build_system(config, market, market=market, memory=memory)
    for bar in list(market.bars())[:3000]:
        system.engine.on_bar(bar)
    assert memory is not None
    memory.close()
    assert system.engine.summary()["memory"] == effects

    state = ("--state-dir", str(tmp_path / "run"))
    code, out, _ = gnosis(capsys, "memory", "stats", "--json", *state)
    stats = json.loads(out)
    assert code == 0 and stats["closed"] >= on["trades"] - on["open_positions"]
    assert stats["recalls"]["recalls"] == effects["recalls"]
    assert stats["over_time"] and stats["by_rule"] and stats["memory_calls"]

    code, out, _ = gnosis(capsys, "memory", "stats", *state)
    assert code == 0 and "win rate" in out and "over time" in out and "by lesson rule" in out

    code, out, _ = gnosis(capsys, "memory", "list", "--outcome", "loss", "--json", *state)
    losses = json.loads(out)["episodes"]
    assert losses and all(row["pnl"] <= 0 for row in losses)
    code, out, _ = gnosis(capsys, "memory", "list", "--limit", "5", "--regime",
                          losses[0]["regime"], *state)
    assert code == 0 and losses[0]["regime"] in out and len(out.splitlines()) <= 7

    episode = losses[0]["id"]
    code, out, _ = gnosis(capsys, "memory", "show", episode, *state)
    assert code == 0 and episode in out and "lesson" in out and "critique" in out
    code, out, _ = gnosis(capsys, "memory", "show", episode.split("-")[2], "--json", *state)
    shown = json.loads(out)
    assert shown["id"] == episode and len(shown["vector"]) == 24 and shown["votes"]
    code, _, err = gnosis(capsys, "memory", "show", "no-such-episode", *state)
    assert code == 2 and "no episode" in err

    # an earlier run's store seeds a later backtest only when it ended before its first bar
    code, _, err = gnosis(capsys, "backtest", "--synthetic", "--bars", "500", "--seed", "5",
                          "--memory", "on", "--memory-from", str(tmp_path / "run"), "--json")
    assert code == 2 and "look-ahead" in err
    code, _, err = gnosis(capsys, "backtest", "--synthetic", "--bars", "500", "--memory", "on",
                          *state)
    assert code == 2 and "already holds" in err


def test_memory_commands_explain_a_missing_or_corrupt_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = gnosis(capsys, "memory", "stats", "--state-dir", str(tmp_path))
    assert code == 2 and "no episodic memory at" in err
    memory_path(tmp_path).write_bytes(b"\x00garbage" * 4096)
    code, _, err = gnosis(capsys, "memory", "list", "--state-dir", str(tmp_path))
    assert code == 2 and "corrupt" in err


def run_bot(capsys: pytest.CaptureFixture[str], state_dir: Path, *extra: str) -> tuple:
    return gnosis(capsys, "run", "--strategy", "sma", "--warmup-days", "0", "--speed", "1e7",
                  "--max-bars", "600", "--state-dir", str(state_dir), "--json", *extra)


def test_run_trades_on_without_memory_when_its_file_is_corrupt(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    memory_path(tmp_path).write_bytes(b"\x00garbage" * 4096)
    code, out, err = run_bot(capsys, tmp_path)
    assert code == 0
    assert "episodic memory unavailable" in err and "corrupt" in err
    summary = json.loads(out)
    assert summary["trades"] > 0 and "memory" not in summary
    assert memory_path(tmp_path).read_bytes().startswith(b"\x00garbage")  # left for a person


def test_run_uses_memory_by_default_and_fresh_forgets_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_bot(capsys, tmp_path)
    assert code == 0 and json.loads(out)["memory"]["recalls"] > 0
    code, out, _ = gnosis(capsys, "memory", "stats", "--json", "--state-dir", str(tmp_path))
    assert json.loads(out)["episodes"] > 0
    code, out, _ = run_bot(capsys, tmp_path, "--fresh", "--memory", "off")
    assert code == 0 and "memory" not in json.loads(out)
    assert not memory_path(tmp_path).exists()
