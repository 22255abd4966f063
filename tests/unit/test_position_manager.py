"""Side-aware positions, cash and PnL."""

import pytest

from gnosis.model.types import Bar, Fill, Side
from gnosis.trading.position_manager import PositionManager


def fill(side: Side, qty: float, price: float, fee: float = 0.0, ts: int = 0) -> Fill:
    return Fill("x", "SPY", side, qty, price, fee, ts, price)


@pytest.mark.parametrize(
    ("entry_side", "entry", "exit_price", "pnl", "side"),
    [
        (Side.BUY, 100.0, 110.0, 100.0, "long"),
        (Side.BUY, 100.0, 90.0, -100.0, "long"),
        (Side.SELL, 100.0, 90.0, 100.0, "short"),
        (Side.SELL, 100.0, 110.0, -100.0, "short"),
    ],
)
def test_round_trip_pnl_is_side_aware(entry_side: Side, entry: float, exit_price: float,
                                      pnl: float, side: str) -> None:
    pm = PositionManager(10_000.0)
    pm.on_fill(fill(entry_side, 10, entry, fee=1.0), bar_index=0, reason="entry")
    exit_side = Side.SELL if entry_side is Side.BUY else Side.BUY
    _, trade = pm.on_fill(fill(exit_side, 10, exit_price, fee=1.0), bar_index=5, reason="x")
    assert trade is not None and trade.side == side
    assert trade.pnl == pytest.approx(pnl - 2.0)
    assert trade.bars_held == 5
    assert pm.equity == pytest.approx(10_000.0 + pnl - 2.0)
    assert pm.positions == {}


def test_equity_marks_to_market_for_shorts() -> None:
    pm = PositionManager(10_000.0)
    pm.on_fill(fill(Side.SELL, 10, 100.0), bar_index=0, reason="entry")
    pm.mark(Bar("SPY", 60 * 10**9, 100.0, 106.0, 99.0, 105.0, 1.0))
    assert pm.equity == pytest.approx(10_000.0 - 50.0)
    assert pm.gross_exposure == pytest.approx(1_050.0)
    assert pm.positions["SPY"].unrealized_pnl == pytest.approx(-50.0)


def test_partial_exits_and_adds_average_correctly() -> None:
    pm = PositionManager(100_000.0)
    pm.on_fill(fill(Side.BUY, 10, 100.0), bar_index=0, reason="entry")
    pm.on_fill(fill(Side.BUY, 10, 110.0), bar_index=1, reason="entry")
    assert pm.positions["SPY"].average_price == pytest.approx(105.0)
    _, trade = pm.on_fill(fill(Side.SELL, 5, 120.0), bar_index=2, reason="x")
    assert trade is None and pm.positions["SPY"].quantity == 15
    _, trade = pm.on_fill(fill(Side.SELL, 15, 100.0), bar_index=3, reason="stop_loss")
    assert trade is not None
    assert trade.pnl == pytest.approx(5 * 15.0 - 15 * 5.0)
    assert pm.equity == pytest.approx(100_000.0)


def test_snapshot_restores_equity_exactly() -> None:
    pm = PositionManager(50_000.0)
    pm.on_fill(fill(Side.BUY, 7, 123.0, fee=0.5), bar_index=0, reason="entry")
    clone = PositionManager(0.0)
    clone.restore(pm.snapshot())
    assert clone.equity == pm.equity and clone.positions.keys() == pm.positions.keys()


@pytest.mark.parametrize(("exit_price", "fee", "won"), [
    (101.0, 0.0, True),
    (100.0, 0.0, False),  # break-even is not a win
    (101.0, 10.0, False),  # fees turn +10 into 0: not a win
    (101.0, 9.99, True),
    (99.0, 0.0, False),
])
def test_a_win_is_a_trade_that_made_money_after_fees(exit_price: float, fee: float,
                                                     won: bool) -> None:
    pm = PositionManager(100_000.0)
    pm.on_fill(Fill("a", "SPY", Side.BUY, 10, 100.0, 0.0, 0, 100.0), bar_index=0,
               reason="entry")
    _, trade = pm.on_fill(Fill("b", "SPY", Side.SELL, 10, exit_price, fee, 1, exit_price),
                          bar_index=1, reason="take_profit")
    assert trade is not None and trade.won is won
    assert (pm.trade_count, pm.win_count) == (1, int(won))


def test_excursions_and_size_survive_partial_exits() -> None:
    pm = PositionManager(100_000.0)
    pm.on_fill(Fill("a", "SPY", Side.BUY, 10, 100.0, 0.0, 0, 100.0), bar_index=0,
               reason="entry")
    pm.mark(Bar("SPY", 60, 100.0, 104.0, 97.0, 103.0, 1e5))
    pm.on_fill(Fill("b", "SPY", Side.SELL, 4, 103.0, 0.0, 2, 103.0), bar_index=2,
               reason="take_profit")
    _, trade = pm.on_fill(Fill("c", "SPY", Side.SELL, 6, 102.0, 0.0, 3, 102.0),
                          bar_index=3, reason="take_profit")
    assert trade is not None
    assert trade.quantity == 10  # the trade's size, not its last fill's
    assert trade.pnl == pytest.approx(4 * 3.0 + 6 * 2.0)
    assert trade.return_pct == pytest.approx(24.0 / 1_000.0)
    assert (trade.max_favorable, trade.max_adverse) == (pytest.approx(0.04),
                                                        pytest.approx(0.03))


@pytest.mark.parametrize(("held", "adopted", "price"), [
    (0, 70, 100.0), (100, 60, 102.0), (100, 0, 99.0), (-50, -80, 98.0), (40, -40, 101.0),
])
def test_adopting_a_venues_position_keeps_equity_continuous(held: float, adopted: float,
                                                           price: float) -> None:
    pm = PositionManager(100_000.0)
    if held:
        side = Side.BUY if held > 0 else Side.SELL
        pm.on_fill(Fill("a", "SPY", side, abs(held), 100.0, 0.0, 0, 100.0), bar_index=0,
                   reason="entry")
    equity, cash = pm.equity, pm.cash
    pm.adopt("SPY", adopted, price, opened_bar=5, ts=7)
    position = pm.positions.get("SPY")
    assert (position.quantity if position else 0) == adopted
    assert pm.cash == pytest.approx(cash - (adopted - held) * price)
    # marked at the last price it had (the entry, 100), equity moves only by the difference
    # between that mark and the adoption price on the shares that changed hands
    assert pm.equity == pytest.approx(equity + (adopted - held) * ((100.0 if held else price)
                                                                    - price))
    if position is not None:
        assert position.average_price == price
        assert position.opened_bar == (0 if held else 5)
        pm.mark(Bar("SPY", 60, price, price, price, price, 1e5))
        assert pm.equity == pytest.approx(pm.cash + adopted * price)


def test_fees_of_every_fill_count_in_the_trade() -> None:
    pm = PositionManager(100_000.0)
    pm.on_fill(Fill("a", "SPY", Side.BUY, 6, 100.0, 0.6, 0, 100.0), bar_index=0,
               reason="entry")
    pm.on_fill(Fill("a", "SPY", Side.BUY, 4, 101.0, 0.4, 1, 100.0), bar_index=1,
               reason="entry")
    _, trade = pm.on_fill(Fill("b", "SPY", Side.SELL, 10, 102.0, 1.0, 2, 102.0),
                          bar_index=2, reason="take_profit")
    assert trade is not None
    assert trade.quantity == 10 and trade.entry_price == pytest.approx(100.4)
    assert trade.fees == pytest.approx(2.0)
    assert trade.pnl == pytest.approx(10 * 1.6 - 2.0)
