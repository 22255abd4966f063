"""``gnosis sim-exchange`` as a real process: it prints where it listens, the SDK trades with it,
SIGTERM stops it cleanly; bad arguments are one line and exit 2."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import requests
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, TimeInForce
from alpaca.trading.requests import MarketOrderRequest

from tests.support.sim_exchange import exchange_process, wait_for

pytestmark = pytest.mark.timeout(180)


def test_cli_serves_the_sdk_and_stops_cleanly_on_sigterm() -> None:
    with exchange_process("--speed", "1200", "--key", "cli-key", "--secret", "cli-secret",
                          "--days", "2") as proc:
        assert any("ALPACA_STREAM_URL=ws://127.0.0.1:" in line for line in proc.output)
        assert not any("cli-secret" in line for line in proc.output)  # secrets never printed
        client = TradingClient("cli-key", "cli-secret", paper=True, url_override=proc.base_url)
        assert client.get_account().status.value == "ACTIVE"
        order = client.submit_order(MarketOrderRequest(symbol="SPY", qty=3, side=OrderSide.BUY,
                                                       time_in_force=TimeInForce.DAY))
        wait_for(lambda: client.get_order_by_id(order.id).status == OrderStatus.FILLED,
                 what="the fill")
        status = requests.get(f"{proc.base_url}/_sim/status", timeout=10).json()
        assert status["orders"] == 1 and status["symbols"] == ["SPY"]
        proc.process.send_signal(signal.SIGTERM)
        assert proc.process.wait(30) == 0
    assert proc.output[-1] == "gnosis sim-exchange: stopped"


@pytest.mark.parametrize("args", [
    ["--port", "70000"],
    ["--port", "0", "--speed", "0"],
    ["--port", "0", "--key", "only-key"],
    ["--port", "0", "--news", "headlines.csv"],
    ["--port", "0", "--data", "/no/such/file.csv"],
])
def test_bad_arguments_are_one_line_and_exit_2(args: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", "gnosis.cli", "sim-exchange", *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("gnosis sim-exchange: ")
    assert "Traceback" not in result.stderr
