"""The seed's launchers, as a user runs them: real processes building ``LiveTradingBot``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def launch(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ALPACA_", "GNOSIS_"))}
    return subprocess.run([sys.executable, str(ROOT / script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_start_paper_trading_runs_the_seed_bot_on_the_simulated_market(tmp_path: Path) -> None:
    done = launch("start_paper_trading.py", "--symbols", "spy,qqq", "--max-bars", "6",
                  "--speed", "1e9", "--warmup-days", "1", "--state-dir", str(tmp_path / "s"),
                  cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("LiveTradingBot: SPY,QQQ 1Min on simulated market")
    assert "memory on" in out and "\nsummary\n" in out
    assert "  bars           6" in out
    assert (tmp_path / "s" / "state.db").exists() and (tmp_path / "s" / "memory.duckdb").exists()


@pytest.mark.parametrize(("script", "args", "words"), [
    ("start_paper_trading.py", ["--speed", "0"], "--speed: must be a finite number above 0"),
    ("start_paper_trading.py", ["--feed", "ib"], "invalid choice: 'ib'"),
    ("start_paper_trading.py", ["--feed", "alpaca"], "Alpaca keys are not set"),
    ("start_paper_trading.py", ["--trade"], "use feed='alpaca'"),
    ("start_with_dashboard.py", ["--host", "0.0.0.0"], "without a token"),
])
def test_a_launcher_refuses_in_one_line(tmp_path: Path, script: str, args: list[str],
                                        words: str) -> None:
    done = launch(script, *args, "--state-dir", str(tmp_path / "s"), cwd=tmp_path)
    assert done.returncode == 2
    assert words in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_start_with_dashboard_serves_the_page_and_stops_cleanly_on_ctrl_c(
        tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALPACA_", "GNOSIS_"))}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "start_with_dashboard.py"), "--port", "0", "--speed",
         "600", "--warmup-days", "1", "--state-dir", str(tmp_path / "s")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        deadline, url = time.monotonic() + 60, None
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.startswith("dashboard: "):
                url = line.split()[1]
        assert url is not None and url.startswith("http://127.0.0.1:")
        for _ in range(100):  # the first live bar reaches the published state
            with urllib.request.urlopen(f"{url}/api/state", timeout=5) as response:
                state = json.load(response)
            if state["symbols"].get("SPY", {}).get("regime"):
                break
            time.sleep(0.1)
        assert state["symbols"]["SPY"]["regime"]["symbol"] == "SPY"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert b"<html" in response.read(200).lower()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "\nsummary\n" in out


def test_a_busy_port_is_refused_and_leaves_the_state_directory_usable(tmp_path: Path) -> None:
    """The Python API: the dashboard cannot bind, run() refuses in one exception, and the
    lock, journal and memory are all released for the next run."""
    import socket

    from gnosis.trading.live_bot import LiveTradingBot, TradingRefused

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        bot = LiveTradingBot(dashboard=True, port=port, state_dir=tmp_path, speed=1e9,
                             max_bars=3, warmup_days=0, console=False)
        with pytest.raises(TradingRefused, match="cannot serve the dashboard"):
            bot.run()
    again = LiveTradingBot(state_dir=tmp_path, speed=1e9, max_bars=3, warmup_days=0,
                           console=False).run()
    assert again["bars"] == 3 and again["memory"]["available"] is True
