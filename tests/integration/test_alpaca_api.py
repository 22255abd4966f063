"""The seed's Python API on Alpaca: ``LiveTradingBot(feed="alpaca")`` is a dry run unless
``enable_trading=True``, and ``stop()`` from another thread ends ``run()`` cleanly."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from gnosis.trading.live_bot import LiveTradingBot
from tests.support.alpaca_bot import config_for, point_at
from tests.support.sim_exchange import running_exchange, wait_for

pytestmark = pytest.mark.timeout(180)


def run_until(bot: LiveTradingBot, done: Any) -> dict[str, Any]:
    result: list[dict[str, Any]] = []
    thread = threading.Thread(target=lambda: result.append(bot.run()), daemon=True)
    thread.start()
    wait_for(lambda: bot.bot is not None and done(bot), timeout=90, what="the bot's progress")
    bot.stop()
    thread.join(30)
    assert not thread.is_alive(), "stop() did not end run()"
    return result[0]


@pytest.mark.parametrize("enable_trading", [False, True])
def test_the_seed_api_on_alpaca(enable_trading: bool, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    with running_exchange(symbols=("SPY", "QQQ"), speed=1200.0, days=2,
                          history_days=1) as server:
        point_at(server, monkeypatch)
        bot = LiveTradingBot(symbols=["SPY", "QQQ"], bar_interval="1Min", enable_memory=False,
                             enable_trading=enable_trading, paper_mode=True, feed="alpaca",
                             state_dir=tmp_path, console=False,
                             config=config_for(("SPY", "QQQ")))
        summary = run_until(bot, lambda b: b.bot.engine.stats.decisions.get(1, 0)
                            + b.bot.engine.stats.decisions.get(-1, 0) >= 3)
        orders = server.status()["orders"]
    assert summary["bars"] > 0 and "error" not in summary
    assert bot.parts is not None and (bot.parts.broker is not None) == enable_trading
    if enable_trading:
        assert orders > 0  # orders went to the (simulated) paper account
    else:
        assert orders == 0  # a dry run sends nothing to Alpaca
