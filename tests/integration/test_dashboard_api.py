"""The dashboard's API against a real bot: a LiveBot (agent ensemble, simulated market) runs in a
thread, the dashboard is served by a real uvicorn on a free loopback port, real WebSocket
clients connect. Every endpoint, every message type, paging, 422s, the token, secrets, and a
client that stops reading (dropped while the bot carries on) are checked here.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from gnosis.bootstrap import build_system, synthetic_market
from gnosis.core.config import load_config
from gnosis.dashboard import launch
from gnosis.model.memory import MemoryAdvice, RecalledEpisode, Situation
from gnosis.model.types import Trade
from gnosis.trading.live_bot import LiveBot

TOKEN = "dashboard-test-token-5b1f"
API_KEY = "PKTESTSECRETKEY0123456789"
SECRET_KEY = "sEcReT/alpaca+secret-value-ABCDEFGHIJKLMNOP"
SPEED = 3_000  # 50 simulated minutes a second: trades within seconds, bars stay paced
LIVE_BARS = 20_000  # bounded: the bot stops by itself if a test forgets it
MESSAGE_TYPES = {"positions", "trade", "agent_votes", "regime", "bar", "portfolio_stats",
                 "memory_recall", "notice", "trading_state"}


class RecallingMemory:
    """A small episodic memory for this test: it recalls the last closed trades as evidence
    (similarity 1, no adjustment). The real one is built elsewhere; the engine's port is the
    contract this dashboard reads through its ``MemoryRecalled`` events."""

    def __init__(self) -> None:
        self.closed: list[tuple[str, Situation, Trade]] = []
        self.open: dict[str, Situation] = {}

    def advise(self, situation: Situation) -> MemoryAdvice:
        episodes = tuple(
            RecalledEpisode(episode_id=eid, symbol=past.symbol, entry_ts=trade.entry_ts,
                            exit_ts=trade.exit_ts, regime=past.regime, signal=past.signal,
                            return_pct=trade.return_pct, exit_reason=trade.exit_reason,
                            similarity=1.0, weight=1.0, lesson="test evidence")
            for eid, past, trade in self.closed[-3:] if trade.exit_ts < situation.ts_decided)
        if not episodes:
            return MemoryAdvice.neutral(situation.confidence, "nothing comparable yet")
        wins = sum(1 for e in episodes if e.return_pct > 0) / len(episodes)
        return MemoryAdvice(situation.confidence, 1.0, f"{len(episodes)} recent episodes",
                            episodes, win_rate=wins)

    def open_episode(self, episode_id: str, situation: Situation, **_: Any) -> None:
        self.open[episode_id] = situation

    def close_episode(self, episode_id: str, trade: Trade) -> None:
        situation = self.open.pop(episode_id, None)
        if situation is not None:
            self.closed.append((episode_id, situation, trade))


@dataclass
class Live:
    url: str
    bot: LiveBot
    dashboard: launch.AttachedDashboard
    state_dir: Path

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws"

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(self.url + path, params=params, timeout=10)

    def post(self, path: str, token: str | None = TOKEN) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.post(self.url + path, headers=headers, json={"reason": "test"}, timeout=10)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    saved = {k: os.environ.get(k) for k in ("ALPACA_API_KEY", "ALPACA_SECRET_KEY")}
    os.environ["ALPACA_API_KEY"] = API_KEY  # secrets in the config: none may ever be served
    os.environ["ALPACA_SECRET_KEY"] = SECRET_KEY
    state_dir = tmp_path_factory.mktemp("dashboard-state")
    config = load_config(market={"symbols": ("SPY", "QQQ"), "seed": 5, "days": 10,
                                 "warmup_days": 1},
                         state_dir=state_dir)
    assert config.alpaca_secret_key is not None
    market = synthetic_market(config, history=True)
    # no durable store: SQLite stays on the thread that made it, and the bot runs on another
    system = build_system(config, market, market=market, memory=RecallingMemory())
    bot = LiveBot(system.engine, market, speed=SPEED, max_bars=LIVE_BARS,
                  warmup_bars=market.bars_in_sessions(1))
    dashboard = launch.attach(system.engine, bot, state_dir=state_dir, port=0, token=TOKEN,
                              queue_size=256, send_timeout=2.0)
    thread = threading.Thread(target=bot.run, name="test-bot", daemon=True)
    thread.start()
    assert dashboard.url is not None
    try:
        yield Live(dashboard.url, bot, dashboard, state_dir)
    finally:
        bot.stop()
        thread.join(30)
        dashboard.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def receive(ws: ClientConnection, timeout: float = 60) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=timeout))


def collect(live: Live, wanted: set[str], limit: int = 200_000) -> dict[str, dict[str, Any]]:
    """Read live messages until one of each wanted type arrived; return the first of each."""
    seen: dict[str, dict[str, Any]] = {}
    with connect(live.ws_url, max_size=None, max_queue=None) as ws:
        init = receive(ws)
        assert init["type"] == "init"
        seen["init"] = init
        for _ in range(limit):
            message = receive(ws)
            seen.setdefault(message["type"], message)
            if wanted <= seen.keys():
                break
    return seen


def wait_for(condition: Any, what: str, attempts: int = 600) -> Any:
    """Poll ``condition`` (a callable) until it returns something truthy (no timing asserts:
    the bound is only there so a broken run ends)."""
    pause = threading.Event()
    for _ in range(attempts):
        value = condition()
        if value:
            return value
        pause.wait(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def test_websocket_sends_init_then_every_message_type(live: Live) -> None:
    seen = collect(live, MESSAGE_TYPES - {"trading_state"})
    init = seen["init"]
    assert set(init) >= {"type", "data", "timestamp", "seq"}
    state = init["data"]
    assert state["info"]["symbols"] == ["SPY", "QQQ"]
    assert state["info"]["strategy"] == "agents"
    assert state["trading_state"]["state"] in ("active", "reducing", "halted")
    for kind in MESSAGE_TYPES - {"trading_state"}:
        message = seen[kind]
        assert set(message) == {"type", "data", "timestamp", "seq"}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", message["timestamp"])
        assert message["seq"] > init["seq"]
    votes = seen["agent_votes"]["data"]
    agents = {v["agent"] for v in votes["votes"]}
    assert agents == {"hedge", "liquidity", "sentiment", "wyckoff", "markov"}
    assert all(v["reasoning"] for v in votes["votes"])
    assert all(v["active"] or v["confidence"] is None for v in votes["votes"])
    regime = seen["regime"]["data"]
    assert {"primary", "confidence", "trend_strength", "volatility", "hmm_state"} <= set(regime)
    bar = seen["bar"]["data"]
    assert bar["low"] <= min(bar["open"], bar["close"]) <= bar["high"]
    trade = seen["trade"]["data"]
    assert trade["exit_reason"] and trade["exit_time"] >= trade["entry_time"]
    recall = seen["memory_recall"]["data"]
    assert recall["reason"] and "episodes" in recall
    assert seen["portfolio_stats"]["data"]["initial_capital"] == 100_000.0


def test_every_endpoint_answers_with_its_public_schema(live: Live) -> None:
    wait_for(lambda: live.get("/api/state").json()["trades_total"] > 0, "a trade")
    page = live.get("/")
    assert page.status_code == 200 and "<title>Gnosis" in page.text
    assert live.get("/static/app.js").status_code == 200
    chart = live.get("/vendor/lightweight-charts.mjs")
    assert chart.status_code == 200 and "createChart" in chart.text
    state = live.get("/api/state").json()
    assert state["available"] and state["info"]["mode"] == "attached"
    assert state["info"]["control_enabled"] is True
    assert len(state["trades"]) <= 20 and state["portfolio"]["equity"] > 0
    assert state["equity_curve"] and state["memory"]["available"]
    positions = live.get("/api/positions").json()["positions"]
    for position in positions:
        assert position["stop_price"] is not None and position["target_price"] is not None
    portfolio = live.get("/api/portfolio").json()
    assert {"equity", "pnl", "daily_pnl", "win_rate", "drawdown", "trading_state"} <= set(portfolio)
    assert live.get("/api/memory").json()["available"] is True
    regimes = live.get("/api/regime").json()["symbols"]
    assert set(regimes) == {"SPY", "QQQ"} and regimes["SPY"]["primary"]
    assert set(live.get("/api/regime", symbol="qqq").json()["symbols"]) == {"QQQ"}
    bars = live.get("/api/bars", symbol="SPY", limit=5).json()
    assert bars["symbol"] == "SPY" and 1 <= len(bars["bars"]) <= 5
    assert [b["time"] for b in bars["bars"]] == sorted(b["time"] for b in bars["bars"])
    health = live.get("/api/health").json()
    assert health["status"] == "ok" and health["chart_library"] is True
    schema = live.get("/openapi.json").json()
    for name in ("StateView", "TradesPage", "PortfolioView", "BarsView", "MemoryView"):
        assert name in schema["components"]["schemas"]
    assert live.get("/docs").status_code == 200


def test_trades_are_paged_newest_first_and_filtered_by_symbol(live: Live) -> None:
    wait_for(lambda: live.get("/api/trades").json()["total"] >= 4, "four trades")
    everything = live.get("/api/trades", limit=500).json()
    items = everything["items"]
    assert [t["exit_time"] for t in items] == sorted((t["exit_time"] for t in items),
                                                     reverse=True)

    def consistent_page() -> tuple[dict[str, Any], dict[str, Any]] | None:
        """A page and the full list with no trade closing in between (the bot runs on)."""
        whole = live.get("/api/trades", limit=500).json()
        page = live.get("/api/trades", offset=1, limit=2).json()
        return (whole, page) if page["total"] == whole["total"] else None

    whole, page = wait_for(consistent_page, "two reads between trades")
    assert page["offset"] == 1 and page["limit"] == 2
    assert page["items"] == whole["items"][1:3]
    for symbol in ("SPY", "QQQ"):
        only = live.get("/api/trades", symbol=symbol.lower(), limit=500).json()
        assert only["symbol"] == symbol
        assert all(t["symbol"] == symbol for t in only["items"])
    assert live.get("/api/trades", offset=10**6).json()["items"] == []


@pytest.mark.parametrize(("path", "params"), [
    ("/api/trades", {"limit": 0}),
    ("/api/trades", {"limit": 501}),
    ("/api/trades", {"limit": "ten"}),
    ("/api/trades", {"offset": -1}),
    ("/api/trades", {"symbol": "S P Y"}),
    ("/api/trades", {"symbol": "<script>"}),
    ("/api/bars", {}),
    ("/api/bars", {"symbol": "SPY", "limit": 0}),
    ("/api/bars", {"symbol": "SPY", "limit": 100_000}),
    ("/api/bars", {"symbol": "SPY", "limit": "1e9"}),
    ("/api/regime", {"symbol": "x" * 40}),
])
def test_bad_query_parameters_get_422(live: Live, path: str, params: dict[str, Any]) -> None:
    response = live.get(path, **params)
    assert response.status_code == 422, response.text


def test_unknown_symbols_and_commands_are_refused_cleanly(live: Live) -> None:
    assert live.get("/api/bars", symbol="ZZZZ").status_code == 404
    assert live.get("/api/regime", symbol="ZZZZ").status_code == 404
    assert live.post("/api/control/liquidate").status_code == 422
    assert httpx.get(live.url + "/api/control/halt").status_code == 405


def test_control_needs_the_token_and_reaches_the_engine(live: Live) -> None:
    assert live.post("/api/control/halt", token=None).status_code == 401
    wrong = live.post("/api/control/halt", token="not-the-token")
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert live.bot.engine.trading_state.value != "halted"
    with connect(live.ws_url, max_size=None, max_queue=None) as ws:
        assert receive(ws)["type"] == "init"
        accepted = live.post("/api/control/halt")
        assert accepted.status_code == 202 and accepted.json()["command"] == "halt"
        state = _next_of(ws, "trading_state")
        assert state["state"] == "halted" and state["previous"] == "active"
        assert live.get("/api/state").json()["trading_state"]["state"] == "halted"
        assert live.post("/api/control/flatten").status_code == 202
        assert live.post("/api/control/resume").status_code == 202
        assert _next_of(ws, "trading_state")["state"] == "active"
    notices = [n["message"] for n in live.get("/api/state").json()["notices"]]
    assert any(m.startswith("dashboard: halt requested") for m in notices)


def _next_of(ws: ClientConnection, kind: str) -> dict[str, Any]:
    for _ in range(100_000):
        message = receive(ws)
        if message["type"] == kind:
            return message["data"]  # type: ignore[no-any-return]
    raise AssertionError(f"no {kind} message")


def test_no_secret_is_ever_served(live: Live) -> None:
    bodies = [live.get(path).text for path in (
        "/", "/api/state", "/api/positions", "/api/trades", "/api/portfolio", "/api/memory",
        "/api/regime", "/api/health", "/openapi.json", "/docs", "/static/app.js")]
    bodies.append(live.get("/api/bars", symbol="SPY").text)
    bodies.append(live.post("/api/control/halt", token="wrong").text)
    with connect(live.ws_url, max_size=None, max_queue=None) as ws:
        bodies.extend(ws.recv(timeout=60) for _ in range(50))
    wait_for(lambda: (live.state_dir / "dashboard.json").exists(), "the state file")
    bodies.append((live.state_dir / "dashboard.json").read_text())
    for secret in (API_KEY, SECRET_KEY, TOKEN):
        for body in bodies:
            assert secret not in body


def test_a_client_that_stops_reading_is_dropped_and_the_bot_goes_on(live: Live) -> None:
    dropped_before = live.get("/api/health").json()["dropped_clients"]
    stalled = _stalled_client(live.url)
    try:
        with connect(live.ws_url, max_size=None, max_queue=None) as healthy:
            assert receive(healthy)["type"] == "init"
            bars_then = live.bot.engine.stats.bars
            wait_for(lambda: live.get("/api/health").json()["dropped_clients"] > dropped_before,
                     "the stalled client to be dropped", attempts=1_200)
            # the bot kept processing bars and the healthy client kept receiving them
            assert live.bot.engine.stats.bars > bars_then
            received = [receive(healthy)["type"] for _ in range(20)]
            assert "bar" in received
    finally:
        stalled.close()


def _stalled_client(url: str) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads again."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    answer = sock.recv(1024)
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return sock


def test_the_standalone_server_follows_the_state_file_read_only(live: Live) -> None:
    """``uvicorn gnosis.dashboard.dashboard_server:app``, as a user starts it, on the same
    state directory as the running bot."""
    wait_for(lambda: (live.state_dir / "dashboard.json").exists(), "the state file")
    env = {**os.environ, "GNOSIS_STATE_DIR": str(live.state_dir)}
    with subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "gnosis.dashboard.dashboard_server:app",
         "--host", "127.0.0.1", "--port", "0", "--log-level", "info"],
        env=env, stderr=subprocess.PIPE, text=True,
    ) as server:
        try:
            url = _uvicorn_url(server)
            state = httpx.get(url + "/api/state", timeout=10).json()
            assert state["available"] and state["info"]["mode"] == "standalone"
            assert state["info"]["read_only"] is True and state["portfolio"]["equity"] > 0
            assert state["info"]["symbols"] == ["SPY", "QQQ"]
            refused = httpx.post(url + "/api/control/halt", timeout=10,
                                 headers={"Authorization": f"Bearer {TOKEN}"})
            assert refused.status_code == 409
            assert refused.json()["detail"] == "read-only: this dashboard is not attached to a bot"
            ws_url = url.replace("http", "ws") + "/ws"
            with connect(ws_url, max_size=None, max_queue=None) as ws:
                first = receive(ws)
                assert first["type"] == "init" and first["data"]["available"]
                assert receive(ws)["type"] in MESSAGE_TYPES  # pushed as the file changes
        finally:
            server.terminate()


def _uvicorn_url(server: subprocess.Popen[str]) -> str:
    assert server.stderr is not None
    for line in server.stderr:
        found = re.search(r"running on (http://127\.0\.0\.1:\d+)", line, re.IGNORECASE)
        if found:
            return found.group(1)
    raise AssertionError("uvicorn did not start")


def test_a_standalone_server_without_a_bot_says_so_then_follows_one(tmp_path: Path) -> None:
    from websockets.exceptions import ConnectionClosed

    from gnosis.dashboard.dashboard_server import create_standalone_app
    from gnosis.dashboard.publisher import DashboardPublisher, StateFileWriter
    from gnosis.dashboard.server import serve_app

    handle = serve_app(create_standalone_app(tmp_path, poll_interval=0.05), port=0)
    url, ws_url = handle.url, handle.url.replace("http://", "ws://") + "/ws"
    try:
        state = httpx.get(url + "/api/state", timeout=10).json()
        assert state["available"] is False
        assert state["unavailable_reason"] == f"no bot is publishing in {tmp_path.resolve()}"
        assert httpx.get(url + "/api/health", timeout=10).json()["status"] == "no_data"
        assert httpx.post(url + "/api/control/flatten", timeout=10).status_code == 409
        config = load_config(market={"symbols": ("SPY",)})
        market = synthetic_market(config, bars=400)
        bars = list(market.bars())
        engine = build_system(config, market, market=market).engine
        publisher = DashboardPublisher(engine)
        writer = StateFileWriter(publisher.state, tmp_path, pump=publisher.pump)
        with connect(ws_url, max_size=None) as ws:
            assert receive(ws)["data"]["available"] is False
            for bar in bars[:200]:
                engine.on_bar(bar)
            writer.write()
            with pytest.raises(ConnectionClosed):  # a bot appeared: reconnect for all of it
                receive(ws)
        # max_queue=None: the client keeps reading what it does not consume, so its close
        # handshake is not stuck behind unread messages
        with connect(ws_url, max_size=None, max_queue=None) as ws:
            init = receive(ws)
            assert init["data"]["available"] is True
            assert init["data"]["info"]["mode"] == "standalone"
            for bar in bars[200:300]:
                engine.on_bar(bar)
            writer.write()
            pushed = [receive(ws) for _ in range(100)]  # what changed, as messages
            assert [m["data"]["time"] for m in pushed if m["type"] == "bar"][:3] == [
                bar.ts_event // 10**9 for bar in bars[200:203]]
        bars_served = httpx.get(url + "/api/bars", params={"symbol": "SPY"}, timeout=10).json()
        assert len(bars_served["bars"]) == 300
    finally:
        handle.stop()


def test_control_answers_503_when_the_bots_queue_is_full() -> None:
    from gnosis.dashboard.server import bot_control

    class FullBot:
        def command(self, name: str, reason: str) -> None:
            import queue

            raise queue.Full

    assert bot_control(FullBot())("halt", "test") is False


def test_a_public_bind_without_a_token_is_refused_by_the_cli(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GNOSIS_DASHBOARD_TOKEN"}
    done = subprocess.run(
        [sys.executable, "-m", "gnosis.cli", "run", "--dashboard", "--host", "0.0.0.0",
         "--state-dir", str(tmp_path), "--max-bars", "1"],
        env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "refusing to serve the dashboard on 0.0.0.0 without a token" in lines[0]
    assert not (tmp_path / "state.db").exists()  # refused before anything started
