"""``gnosis backtest --source alpaca``: bars (and news) downloaded once through the real SDK into
a Parquet cache, then replayed; a second run needs no network and gives the same result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gnosis.cli import main
from tests.support.alpaca_bot import point_at
from tests.support.sim_exchange import running_exchange

pytestmark = pytest.mark.timeout(180)
TIMING = ("bars_per_s", "elapsed_s")


def backtest(capsys: pytest.CaptureFixture[str], cache: Path, *extra: str) -> dict:
    code = main(["backtest", "--source", "alpaca", "--symbols", "SPY,QQQ", "--start",
                 "2024-01-02", "--end", "2024-01-04", "--cache-dir", str(cache), "--json",
                 *extra])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    return {k: v for k, v in summary.items() if k not in TIMING}


def test_download_once_then_replay_from_the_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "cache"
    with running_exchange(symbols=("SPY", "QQQ"), speed=60.0, days=1,
                          history_days=3) as server:
        point_at(server, monkeypatch)
        first = backtest(capsys, cache)
    files = sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*.parquet"))
    bar_files = [f for f in files if "/bars/iex/1Min/" in f]
    assert len(bar_files) == 6  # three closed sessions of two symbols
    assert any("/news/SPY/" in f for f in files)  # the agents' headlines came along
    # the venue is gone now: the same backtest runs from the cache alone
    second = backtest(capsys, cache)
    assert first["inputs"].pop("cache") == {"sessions": 3, "cached": 0, "downloaded": 6}
    assert second["inputs"].pop("cache") == {"sessions": 3, "cached": 6, "downloaded": 0}
    assert second == first
    assert first["inputs"]["news"]["headlines"] > 0  # the agents' headlines came along
    assert first["bars"] + first["warmup_bars"] == 3 * 390 * 2 and first["trades"] > 0
    hedge = first["votes"]["hedge"]
    assert hedge["abstain"] == first["bars"]  # Alpaca has no historical chains: said so
    assert "no historical option chains" in first["inputs"]["options"]


def test_bad_ranges_and_missing_keys_are_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("ALPACA_API_KEY", raising=False)
    monkeypatch.delenv("ALPACA_SECRET_KEY", raising=False)
    assert main(["backtest", "--source", "alpaca", "--start", "2024-01-02", "--end",
                 "2024-01-04", "--cache-dir", str(tmp_path)]) == 2
    assert "Alpaca keys are not set" in capsys.readouterr().err
    monkeypatch.setenv("ALPACA_API_KEY", "k")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "s")
    for args in (["--start", "2024-01-05", "--end", "2024-01-02"], ["--start", "soon",
                                                                   "--end", "2024-01-02"],
                 ["--end", "2024-01-02"], ["--start", "2024-01-02", "--end", "2024-01-04",
                                           "--timeframe", "7Weeks"]):
        assert main(["backtest", "--source", "alpaca", "--cache-dir", str(tmp_path),
                     *args]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("gnosis backtest: ") and len(err.splitlines()) == 1, err
