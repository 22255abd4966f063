"""The bot trading on Alpaca: the real alpaca-py SDK, real sockets, ``gnosis sim-exchange`` as the
venue. A session of bars → decisions → bracket orders → fills → positions; partial fills; a
rejected order; REST 429 and 500 answers; what the venue holds equals what the book holds."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from gnosis.adapters.alpaca.journal import OrderJournal
from gnosis.model.types import OrderType
from gnosis.simexchange import SimExchangeServer
from tests.support.alpaca_bot import (
    BotRun,
    book_positions,
    config_for,
    point_at,
    venue_orders,
    venue_positions,
)
from tests.support.sim_exchange import running_exchange

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimExchangeServer]:
    with running_exchange(symbols=("SPY", "QQQ"), speed=900.0, days=2, history_days=1) as srv:
        point_at(srv, monkeypatch)
        yield srv


def settle(run: BotRun, server: SimExchangeServer) -> None:
    """Freeze the venue's clock, then wait until the book agrees with it (fills in flight
    reach the engine through the stream or the poll)."""
    server.pause()
    run.wait(lambda: book_positions(run) == venue_positions(server),
             "the book to match the venue's positions")


def test_a_session_of_bars_decisions_brackets_fills_and_partial_fills(
        server: SimExchangeServer, tmp_path: Path) -> None:
    server.inject({"fault": "split_fills", "parts": 3, "count": 6})  # partial fills
    run = BotRun(config_for(("SPY", "QQQ")), state_dir=tmp_path, max_bars=240).start()
    run.wait(lambda: run.summary is not None or run.live_bars() >= 240, "240 live bars",
             timeout=120)
    settle(run, server)
    summary = run.finish()
    assert summary["bars"] >= 240 and summary["trades"] >= 3, summary

    # every intent was placed exactly once, under the engine's own client order id
    orders = [o for o in venue_orders(server) if o["client_order_id"].startswith("gn-")]
    ids = [o["client_order_id"] for o in orders]
    assert len(ids) == len(set(ids))
    intents = {i.client_order_id: i for i in OrderJournal(tmp_path).all()}
    assert set(ids) == {cid for cid, i in intents.items() if i.status == "placed"}
    assert {o.client_order_id for o in run.submitted} == set(intents)

    # entries went as brackets (market, GTC) whose legs carry the engine's stop and target
    entries = [o for o in orders if intents[o["client_order_id"]].order.reason == "entry"]
    assert entries and all(o["order_class"] == "bracket" and len(o["legs"]) == 2
                           and o["time_in_force"] == "gtc" for o in entries)
    for order in entries:
        intent = intents[order["client_order_id"]].order
        levels = {leg["type"]: float(leg["stop_price"] or leg["limit_price"])
                  for leg in order["legs"]}
        assert levels == {"stop": round(intent.stop_loss, 2),
                          "limit": round(intent.take_profit, 2)}

    # fills were booked one by one, never by cumulative quantities: per order they add up
    # to what the venue says it filled, and partial fills were among them
    booked: dict[str, float] = defaultdict(float)
    for fill in run.fills:
        booked[fill.client_order_id] += fill.quantity
    for order in orders:
        assert booked.get(order["client_order_id"], 0.0) == pytest.approx(
            float(order["filled_qty"])), order["client_order_id"]
    partial = [f for f in run.fills if f.remaining > 0]
    assert partial, "the split fills must arrive as partial fills"
    executions = [f.execution_id for f in run.fills if f.execution_id]
    assert len(executions) == len(set(executions))
    leg_fills = Counter(f.reason for f in run.fills)
    assert leg_fills["entry"] >= 3

    # the book holds what the venue holds, and every position is protected by a stop leg
    positions = venue_positions(server)
    assert book_positions(run) == positions
    engine = run.engine
    for symbol, position in engine.positions.positions.items():
        cover = engine.stop_cover(symbol, position)
        exit_ticket = engine.exit_ticket(symbol)
        assert cover >= abs(position.quantity) or exit_ticket is not None, symbol
    assert all(o.order_type is not OrderType.LIMIT or o.reason == "take_profit"
               for o, _left in engine.broker.working())
    assert run.notice("reconciled with Alpaca (start)")


def test_orders_the_venue_rejects_end_cleanly(server: SimExchangeServer,
                                              tmp_path: Path) -> None:
    server.inject({"fault": "reject_orders", "mode": "venue", "count": 1})
    server.inject({"fault": "reject_orders", "mode": "api", "count": 1})
    run = BotRun(config_for(("SPY", "QQQ")), state_dir=tmp_path).start()
    run.wait(lambda: len(run.submitted) >= 4, "four orders")
    settle(run, server)
    run.finish()
    first, second = run.submitted[0].client_order_id, run.submitted[1].client_order_id
    ended = {e.client_order_id: e.reason for e in run.canceled}
    assert "rejected" in ended[first] and "rejected" in ended[second]
    statuses = {o["client_order_id"]: o["status"] for o in venue_orders(server)}
    assert statuses[first] == "rejected"  # accepted, then rejected on the stream
    assert second not in statuses  # refused by the API (403): never created
    assert all(f.client_order_id not in (first, second) for f in run.fills)
    journal = {i.client_order_id: i.status for i in OrderJournal(tmp_path).all()}
    assert journal[first] == "placed" and journal[second] == "refused"
    assert book_positions(run) == venue_positions(server)
    assert run.engine.entry_ticket(run.submitted[0].symbol) is None or \
        run.engine.entry_ticket(run.submitted[0].symbol).client_order_id != first


def test_rest_429_and_500_on_history_are_retried_and_the_bot_trades_on(
        server: SimExchangeServer) -> None:
    # the warm-up's history download meets a 500 and then a 429 (the SDK retries 429 itself)
    server.inject({"fault": "http_error", "status": 500, "path_prefix": "/v2/stocks/bars"})
    server.inject({"fault": "http_error", "status": 429, "path_prefix": "/v2/stocks/bars"})
    run = BotRun(config_for(("SPY", "QQQ"))).start()
    run.wait(lambda: len(run.fills) >= 2, "fills after the faults")
    assert server.status()["faults"]["http"] == []  # both were met, and got through
    assert run.notice("warmed up on 7")  # two symbols' full session, despite the faults
    settle(run, server)
    run.finish()
    assert book_positions(run) == venue_positions(server)


def test_a_post_answered_500_is_looked_up_then_sent_once_and_a_duplicate_id_is_fetched(
        server: SimExchangeServer) -> None:
    """The broker's POST against the real SDK and the simulator, without the engine: a 500
    may hide a placed order, so the broker asks by client order id (meeting a 429 there,
    which the SDK retries) before it sends again; and a client order id the venue already
    has is fetched, never placed twice."""
    from pydantic import SecretStr

    from gnosis.adapters.alpaca.broker import AlpacaBroker
    from gnosis.adapters.alpaca.settings import AlpacaSettings
    from gnosis.model.types import Order, Side
    from tests.unit.test_alpaca_broker import FakeBot

    env = server.environment()
    settings = AlpacaSettings(SecretStr(env["ALPACA_API_KEY"]),
                              SecretStr(env["ALPACA_SECRET_KEY"]), base_url=env["ALPACA_BASE_URL"])

    def broker() -> AlpacaBroker:
        venue = AlpacaBroker(settings, ("SPY",), journal=OrderJournal(None))
        venue._bot = FakeBot()  # type: ignore[assignment]
        return venue

    order = Order("gn-test-0000001-SPY", "SPY", Side.BUY, 3, OrderType.MARKET, 0,
                  reason="entry", expected_price=100.0)
    first = broker()
    server.inject({"fault": "http_error", "status": 500, "path_prefix": "/v2/orders"})
    server.inject({"fault": "http_error", "status": 429, "path_prefix": "/v2/orders"})
    assert first.submit(order)
    first._place(first._commands.get_nowait()[1])
    assert first.stats["submit_retries"] == 1 and first.stats["placed"] == 1
    assert server.status()["faults"]["http"] == []
    second = broker()  # a journal that lost the intent: the venue's answer decides
    assert second.submit(order)
    second._place(second._commands.get_nowait()[1])
    assert second.stats["duplicate_answers"] == 1 and second.stats["placed"] == 1
    ids = [o["client_order_id"] for o in venue_orders(server)]
    assert ids.count(order.client_order_id) == 1
