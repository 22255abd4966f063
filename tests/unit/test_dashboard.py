"""The dashboard's core-thread half: events become small messages, the state stays bounded,
a standalone server can tell what changed, and the web layer's guards (bind, token) hold."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from gnosis.core.clock import ReplayClock
from gnosis.core.config import load_config
from gnosis.dashboard.app import tokens_match
from gnosis.dashboard.hub import Broadcaster
from gnosis.dashboard.launch import DashboardError, check
from gnosis.dashboard.publisher import DashboardPublisher, StateFileWriter, iso, num
from gnosis.dashboard.server import check_bind, is_loopback
from gnosis.dashboard.state import (
    BARS_PER_SYMBOL,
    MESSAGE_TYPES,
    NOTICES_KEPT,
    TRADES_KEPT,
    DashboardState,
    EquityCurve,
    changes,
)
from gnosis.model.events import MemoryRecalled, Notice
from gnosis.model.memory import MemoryAdvice, RecalledEpisode, Situation
from gnosis.strategies.sma_crossover import SmaCrossover
from gnosis.trading.engine import Engine
from gnosis.trading.sim_broker import SimBroker
from tests.conftest import interleave, random_walk_bars


def engine_with_publisher() -> tuple[Engine, DashboardPublisher, list[dict[str, Any]]]:
    config = load_config(market={"symbols": ("SPY", "QQQ")})
    engine = Engine(config, SmaCrossover(3, 8), SimBroker(config.execution))
    publisher = DashboardPublisher(engine, wall=ReplayClock(1_700_000_000_000_000_000))
    messages: list[dict[str, Any]] = []
    publisher.add_sink(messages.append)
    return engine, publisher, messages


def run_bars(engine: Engine, publisher: DashboardPublisher, n: int = 600) -> None:
    bars = interleave(random_walk_bars(n, seed=3), random_walk_bars(n, seed=4, symbol="QQQ",
                                                                    start=380.0))
    for bar in bars:
        engine.on_bar(bar)
    publisher.pump()


def test_engine_events_become_messages_with_increasing_sequence_numbers() -> None:
    engine, publisher, messages = engine_with_publisher()
    run_bars(engine, publisher)
    kinds = {m["type"] for m in messages}
    assert {"bar", "agent_votes", "positions", "portfolio_stats", "trade", "notice"} <= kinds
    assert kinds <= set(MESSAGE_TYPES)
    assert publisher.state.snapshot()["trading_state"]["state"] == "active"  # since attaching
    seqs = [m["seq"] for m in messages]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert all(set(m) == {"type", "data", "timestamp", "seq"} for m in messages)
    assert messages[0]["timestamp"] == "2023-11-14T22:13:20.000Z"
    json.dumps(messages, allow_nan=False)  # every message is plain JSON
    assert publisher.state.seq == seqs[-1]
    trades = [m["data"] for m in messages if m["type"] == "trade"]
    assert len(trades) == engine.positions.trade_count


def test_positions_and_portfolio_are_sent_only_when_they_change() -> None:
    engine, publisher, messages = engine_with_publisher()
    run_bars(engine, publisher)
    bars = sum(1 for m in messages if m["type"] == "bar")
    portfolio = [m["data"] for m in messages if m["type"] == "portfolio_stats"]
    assert 0 < len(portfolio) < bars  # flat stretches send nothing
    for before, after in zip(portfolio, portfolio[1:]):
        assert {k: v for k, v in before.items() if k not in ("time", "ts")} != \
               {k: v for k, v in after.items() if k not in ("time", "ts")}
    last = portfolio[-1]
    assert last["equity"] == pytest.approx(engine.positions.equity, abs=0.01)
    assert last["trades"] == engine.positions.trade_count
    positions = [m["data"]["positions"] for m in messages if m["type"] == "positions"]
    for before, after in zip(positions, positions[1:]):
        assert before != after
    for position in (p for batch in positions for p in batch):
        assert position["stop_price"] and position["target_price"]


def test_state_stays_bounded_over_a_long_run() -> None:
    state = DashboardState({"symbols": ["SPY"]})
    for i in range(BARS_PER_SYMBOL * 3):
        state.fold("bar", {"symbol": "SPY", "time": i * 60, "open": 1.0, "high": 1.0,
                           "low": 1.0, "close": 1.0, "volume": 1.0})
        state.fold("notice", {"kind": "notice", "message": f"n{i}", "ts": None})
    for i in range(TRADES_KEPT * 2):
        state.fold("trade", {"symbol": "SPY" if i % 2 else "QQQ", "exit_time": i})
    assert len(state.bars("SPY", 10**6) or []) == BARS_PER_SYMBOL
    snapshot = state.full_snapshot()
    assert len(snapshot["notices"]) == 50 and snapshot["trades_total"] == TRADES_KEPT * 2
    assert len(snapshot["all_trades"]) == TRADES_KEPT
    assert NOTICES_KEPT >= 50
    total, page = state.trades("SPY", offset=0, limit=5)
    assert total == TRADES_KEPT // 2 and [t["exit_time"] for t in page] == [1999, 1997, 1995,
                                                                            1993, 1991]


def test_equity_curve_keeps_the_whole_run_at_falling_resolution() -> None:
    curve = EquityCurve(capacity=100)
    for minute in range(10_000):
        curve.add(minute * 60, 100_000.0 + minute)
    points = curve.points
    assert len(points) < 100
    assert points[0][0] < 60 * 200  # still starts near the beginning
    assert points[-1] == (9_999 * 60, 100_000.0 + 9_999)  # and ends at the current equity
    assert [t for t, _ in points] == sorted({t for t, _ in points})
    curve.add(9_999 * 60, 1.0)  # a second symbol in the same minute replaces, never repeats
    assert curve.points[-1] == (9_999 * 60, 1.0)


def test_memory_recalls_carry_their_evidence_and_memory_failures_show() -> None:
    engine, publisher, messages = engine_with_publisher()
    publisher.pump()
    assert publisher.state.snapshot()["memory"]["available"] is False
    situation = Situation("SPY", 0, 60, 1, 0.7, "trending_up", 0.8, None, (), 450.0)
    episode = RecalledEpisode("gn-1", "SPY", 0, 60, "trending_up", 1, 0.01, "take_profit",
                              0.9, 0.5, "held the trend")
    engine.bus.publish(MemoryRecalled(0, 0, situation, MemoryAdvice(
        0.75, 1.2, "similar wins", (episode,), win_rate=1.0)))
    assert messages == [] or messages[-1]["type"] != "memory_recall"  # captured, not yet made
    publisher.pump()
    recall = messages[-1]
    assert recall["type"] == "memory_recall"
    assert recall["data"]["episodes"][0]["lesson"] == "held the trend"
    assert recall["data"]["confidence_after"] == 0.75
    assert publisher.state.snapshot()["memory"]["available"] is True
    engine.bus.publish(Notice(0, 0, "episodic memory failed to recall (OSError: x)",
                              {"component": "memory"}))
    publisher.pump()
    memory = publisher.state.snapshot()["memory"]
    assert memory["available"] is False and "failed" in memory["status"]


def test_changes_between_two_state_files_are_the_messages_a_client_missed() -> None:
    engine, publisher, _ = engine_with_publisher()
    run_bars(engine, publisher, 200)
    before = json.loads(json.dumps(publisher.state.full_snapshot()))
    bars_before = publisher.state.seq
    run_bars_more = interleave(random_walk_bars(300, seed=3), random_walk_bars(
        300, seed=4, symbol="QQQ", start=380.0))[400:]
    for bar in run_bars_more:
        engine.on_bar(bar)
    publisher.pump()
    after = json.loads(json.dumps(publisher.state.full_snapshot()))
    assert after["seq"] > bars_before
    found = changes(before, after)
    kinds = [kind for kind, _ in found]
    new_bars = [data for kind, data in found if kind == "bar"]
    assert len(new_bars) == len(run_bars_more)
    assert "portfolio_stats" in kinds and "agent_votes" in kinds
    assert kinds.count("trade") == after["trades_total"] - before["trades_total"]
    assert changes(after, after) == []


def test_the_state_file_is_written_atomically_and_only_when_changed(tmp_path: Path) -> None:
    engine, publisher, _ = engine_with_publisher()
    run_bars(engine, publisher, 100)
    writer = StateFileWriter(publisher.state, tmp_path, wall=ReplayClock(0),
                             pump=publisher.pump)
    assert writer.write() is True
    assert writer.write() is False  # nothing changed
    loaded = json.loads((tmp_path / "dashboard.json").read_text())
    assert loaded["seq"] == publisher.state.seq
    assert loaded["symbols"]["SPY"]["bars"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dashboard.json"]
    mirror = DashboardState()
    mirror.load(loaded)
    assert mirror.snapshot() | {"info": {}} == publisher.state.snapshot() | {"info": {}}


def test_json_safe_numbers_and_timestamps() -> None:
    assert num(float("nan")) is None and num(float("inf")) is None and num(None) is None
    assert num(1.5) == 1.5 and num(-2) == -2
    assert iso(1_704_205_800_123_456_789) == "2024-01-02T14:30:00.123Z"
    assert iso(None) is None


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True),
    ("0.0.0.0", False), ("192.168.1.10", False), ("::", False), ("example.org", False),
])
def test_only_loopback_binds_without_a_token(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    check_bind(host, "a-token")
    if loopback:
        check_bind(host, None)
    else:
        with pytest.raises(DashboardError, match="without a token"):
            check_bind(host, None)


def test_launch_checks_ports_and_the_token_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GNOSIS_DASHBOARD_TOKEN", raising=False)
    with pytest.raises(DashboardError, match="not a TCP port"):
        check(True, None, 70_000, None)
    with pytest.raises(DashboardError, match="without a token"):
        check(True, "0.0.0.0", 8080, None)
    check(False, "0.0.0.0", 8080, None)  # nothing served, nothing to refuse
    monkeypatch.setenv("GNOSIS_DASHBOARD_TOKEN", "from-env")
    check(True, "0.0.0.0", 8080, None)


def test_tokens_are_compared_as_bearer_tokens() -> None:
    assert tokens_match("s3cret", "Bearer s3cret")
    assert tokens_match("s3cret", "bearer s3cret")
    assert not tokens_match("s3cret", "Bearer s3cre")
    assert not tokens_match("s3cret", "s3cret")
    assert not tokens_match("s3cret", None)
    assert not tokens_match(None, "Bearer ")
    assert not tokens_match("", "Bearer ")


def test_the_broadcaster_never_blocks_the_publisher() -> None:
    """Without a running server publishing is a no-op; with a loop that is not draining, the
    backlog is bounded and counted, never waited on; the loop's drain then delivers it."""
    from gnosis.dashboard import hub

    broadcaster = Broadcaster(drain_interval=3600)
    broadcaster.publish({"type": "bar", "seq": 1})  # not attached yet: dropped silently
    assert broadcaster.messages == 0

    async def scenario() -> None:
        broadcaster.attach()
        for seq in range(hub.PENDING_LIMIT + 10):
            broadcaster.publish({"type": "bar", "data": {}, "seq": seq})
        assert broadcaster.lost_messages == 10
        broadcaster.drain()
        assert broadcaster.messages == hub.PENDING_LIMIT
        await broadcaster.detach()

    asyncio.run(scenario())
