"""The README's two-terminal walkthrough as real processes: ``gnosis sim-exchange`` in one,
``gnosis run --feed alpaca --broker alpaca`` in the other. Missing and rejected keys are one line
and exit 2; the secret never appears in any output or any file of the state directory."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.sim_exchange import ExchangeProcess, exchange_process

pytestmark = pytest.mark.timeout(240)
KEY = "walkthrough-key"
SECRET = "walkthrough-secret-5f3a9c"  # noqa: S105 - a test secret to look for in outputs


@pytest.fixture(scope="module")
def exchange() -> Iterator[ExchangeProcess]:
    with exchange_process("--speed", "1200", "--key", KEY, "--secret", SECRET,
                          "--days", "3", "--history-days", "1") as proc:
        yield proc


def environment(proc: ExchangeProcess, **changes: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ALPACA_", "GNOSIS_"))}
    env.update(ALPACA_BASE_URL=proc.base_url, ALPACA_DATA_URL=proc.base_url,
               ALPACA_STREAM_URL=proc.stream_url, ALPACA_API_KEY=KEY, ALPACA_SECRET_KEY=SECRET,
               PYTHONUNBUFFERED="1")
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def gnosis(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gnosis.cli", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=180)


def test_missing_keys_are_one_line(exchange: ExchangeProcess, tmp_path: Path) -> None:
    env = environment(exchange, ALPACA_API_KEY=None, ALPACA_SECRET_KEY=None)
    result = gnosis(["run", "--feed", "alpaca", "--state-dir", str(tmp_path / "s")], env,
                    tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        result.stderr.strip()] and "Traceback" not in result.stderr
    assert result.stderr.startswith("gnosis run: Alpaca keys are not set")


def test_a_rejected_key_is_one_line_and_never_echoed(exchange: ExchangeProcess,
                                                     tmp_path: Path) -> None:
    env = environment(exchange, ALPACA_SECRET_KEY="not-the-secret-77")
    result = gnosis(["run", "--feed", "alpaca", "--broker", "alpaca", "--state-dir",
                     str(tmp_path / "s")], env, tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("gnosis run: Alpaca rejected the API key")
    assert "not-the-secret-77" not in result.stdout + result.stderr


def test_the_broker_needs_the_alpaca_feed(exchange: ExchangeProcess, tmp_path: Path) -> None:
    result = gnosis(["run", "--broker", "alpaca"], environment(exchange), tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == ("gnosis run: --broker alpaca trades on Alpaca's data: add "
                                     "--feed alpaca")


def test_the_walkthrough_trades_on_the_simulator_and_keeps_the_secret(
        exchange: ExchangeProcess, tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = environment(exchange, GNOSIS_STRATEGY__NAME="sma", GNOSIS_STRATEGY__SMA_FAST="3",
                      GNOSIS_STRATEGY__SMA_SLOW="8")
    result = gnosis(["run", "--feed", "alpaca", "--broker", "alpaca", "--symbols", "SPY",
                     "--warmup-days", "1", "--max-bars", "60", "--state-dir", str(state)],
                    env, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "orders on the Alpaca paper account" in result.stdout
    assert "reconciled with Alpaca (start)" in result.stdout
    assert "fill buy" in result.stdout or "fill sell" in result.stdout
    status = requests.get(f"{exchange.base_url}/_sim/status", timeout=10).json()
    assert status["orders"] > 0
    # the secret is nowhere: not in the output, the logs, the state, the journal
    assert SECRET not in result.stdout + result.stderr
    files = [p for p in state.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"state.db", "alpaca-orders.db"}
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
