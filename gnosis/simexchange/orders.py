"""The Alpaca order state machine and the account, over gnosis' ``SimBroker`` fill model.

``OrderBook`` keeps Alpaca's view of every order (UUID ``id``, the client's ``client_order_id``,
statuses, cumulative ``filled_qty``, ``filled_avg_price``, bracket ``legs``) and an account
ledger (cash, positions, average entry prices). Execution is ``SimBroker``'s, used through its
public methods only, so the simulator and the bot's dry runs fill alike:

* an order is working from ``active_from`` (the next minute after it arrives: a one-bar
  latency, as in backtests); market orders fill at that bar's open ± slippage, capped at a share
  of the bar's volume (the rest keeps working: partial fills); stop and limit orders fill where
  the bar's path first crosses them;
* a bracket's legs (stop-loss and take-profit) are ``held`` until the entry fills; then they
  work for the filled quantity and grow with each partial fill (``SimBroker`` does this), and
  when one fills the other is canceled (OCO). Legs inherit the entry's time in force, so a
  ``day`` bracket's legs expire at the close, as Alpaca's do.

Every change appends a ``trade_updates`` event (``events``), which the exchange drains and
broadcasts. Nothing here does I/O or reads a clock: ``now`` is passed in.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gnosis.model.types import Bar, Fill, InvalidValue, Order, OrderType, Side
from gnosis.simexchange.wire import (
    WireError,
    forbidden,
    money,
    name_uuid,
    not_found,
    parse_positive,
    rfc3339,
    unprocessable,
)
from gnosis.trading.sim_broker import SimBroker

TERMINAL = {"filled", "canceled", "expired", "rejected", "replaced", "done_for_day"}
SUPPORTED_TYPES = {"market": OrderType.MARKET, "limit": OrderType.LIMIT, "stop": OrderType.STOP}
SUPPORTED_TIF = {"day", "gtc", "ioc"}
QTY_EPSILON = 1e-9


@dataclass(slots=True)
class AlpacaOrder:
    id: str
    client_order_id: str
    symbol: str
    side: str
    type: str
    qty: float
    time_in_force: str
    created_at: int
    limit_price: float | None = None
    stop_price: float | None = None
    order_class: str = "simple"
    status: str = "new"
    updated_at: int = 0
    filled_qty: float = 0.0
    filled_value: float = 0.0
    filled_at: int | None = None
    canceled_at: int | None = None
    expired_at: int | None = None
    failed_at: int | None = None
    replaced_at: int | None = None
    replaced_by: str | None = None
    replaces: str | None = None
    expires_at: int | None = None
    notional: float | None = None
    legs: list[str] = field(default_factory=list)
    parent: str | None = None  # the entry's id, for a bracket leg
    leg_kind: str | None = None  # "stop_loss" | "take_profit"
    internal_id: str = ""  # the client order id SimBroker knows this order by
    active_from: int = 0
    opening_notional: float = 0.0  # buying power it holds while open
    opening: bool = True  # adds exposure (buy_to_open / sell_to_open) rather than reducing it
    fixed_qty: bool = False  # a replaced leg no longer follows the entry's fills

    @property
    def is_open(self) -> bool:
        return self.status not in TERMINAL

    @property
    def remaining(self) -> float:
        return max(0.0, self.qty - self.filled_qty)

    @property
    def avg_price(self) -> float | None:
        return self.filled_value / self.filled_qty if self.filled_qty > 0 else None


@dataclass(slots=True)
class Holding:
    qty: float = 0.0  # signed: negative is short
    avg_price: float = 0.0
    lastday_price: float | None = None


@dataclass(frozen=True, slots=True)
class OrderRequest:
    symbol: str
    side: str
    type: str
    time_in_force: str
    qty: float | None
    notional: float | None
    limit_price: float | None
    stop_price: float | None
    client_order_id: str | None
    order_class: str
    take_profit: float | None
    stop_loss: float | None


def _price(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    return None if value is None else parse_positive(value, key)


def parse_order_request(body: Any) -> OrderRequest:
    """Validate a ``POST /v2/orders`` body as Alpaca does, with its error messages."""
    if not isinstance(body, dict):
        raise unprocessable("request body must be a JSON object")
    symbol, side, order_type, tif = _order_kind(body)
    qty, notional = _order_size(body, order_type, tif)
    limit_price, stop_price = _order_prices(body, order_type)
    order_class = str(body.get("order_class") or "simple").lower()
    take_profit, stop_loss = _bracket_levels(body, order_class, order_type, tif, notional)
    if qty is not None and not float(qty).is_integer() and (
            order_class != "simple" or order_type == "stop" or tif != "day"):
        raise unprocessable("fractional orders must be simple market or limit orders with "
                            "time_in_force day")
    return OrderRequest(symbol, side, order_type, tif, qty, notional, limit_price, stop_price,
                        _client_order_id(body), order_class, take_profit, stop_loss)


def _order_kind(body: dict[str, Any]) -> tuple[str, str, str, str]:
    """(symbol, side, type, time in force), each checked."""
    symbol = str(body.get("symbol") or "").strip().upper()
    if not symbol:
        raise unprocessable("symbol is required")
    side = str(body.get("side") or "").lower()
    if side not in ("buy", "sell"):
        raise unprocessable(f"invalid side: {body.get('side')!r} (buy or sell)")
    order_type = str(body.get("type") or body.get("order_type") or "").lower()
    if order_type in ("stop_limit", "trailing_stop"):
        raise unprocessable(f"order type {order_type} is not supported by gnosis sim-exchange "
                            "(market, limit and stop are)")
    if order_type not in SUPPORTED_TYPES:
        raise unprocessable(f"invalid order type: {body.get('type')!r}")
    tif = str(body.get("time_in_force") or "").lower()
    if tif in ("opg", "cls", "fok"):
        raise unprocessable(f"time_in_force {tif} is not supported by gnosis sim-exchange "
                            "(day, gtc and ioc are)")
    if tif not in SUPPORTED_TIF:
        raise unprocessable(f"invalid time_in_force: {body.get('time_in_force')!r}")
    if body.get("extended_hours"):
        raise unprocessable("extended hours orders are not supported by gnosis sim-exchange "
                            "(it simulates regular sessions only)")
    return symbol, side, order_type, tif


def _order_size(body: dict[str, Any], order_type: str,
                tif: str) -> tuple[float | None, float | None]:
    """(qty, notional): exactly one of them."""
    has_qty = body.get("qty") not in (None, "")
    has_notional = body.get("notional") not in (None, "")
    if has_qty == has_notional:
        raise unprocessable("exactly one of qty or notional is required")
    qty = parse_positive(body["qty"], "qty") if has_qty else None
    notional = parse_positive(body["notional"], "notional") if has_notional else None
    if notional is not None and (order_type != "market" or tif != "day"):
        raise unprocessable("notional orders must be market orders with time_in_force day")
    return qty, notional


def _order_prices(body: dict[str, Any], order_type: str) -> tuple[float | None, float | None]:
    """(limit price, stop price): each required by its type and refused by the others."""
    limit_price = _price(body, "limit_price")
    stop_price = _price(body, "stop_price")
    if order_type == "limit" and limit_price is None:
        raise unprocessable("limit_price is required for limit orders")
    if order_type == "stop" and stop_price is None:
        raise unprocessable("stop_price is required for stop orders")
    if order_type != "limit" and limit_price is not None:
        raise unprocessable(f"limit_price is not allowed for {order_type} orders")
    if order_type != "stop" and stop_price is not None:
        raise unprocessable(f"stop_price is not allowed for {order_type} orders")
    return limit_price, stop_price


def _bracket_levels(body: dict[str, Any], order_class: str, order_type: str, tif: str,
                    notional: float | None) -> tuple[float | None, float | None]:
    """(take-profit limit, stop-loss stop) of a bracket; (None, None) for a simple order."""
    if order_class in ("oco", "oto", "mleg"):
        raise unprocessable(f"order_class {order_class} is not supported by gnosis sim-exchange")
    if order_class == "simple":
        return None, None
    if order_class != "bracket":
        raise unprocessable(f"invalid order_class: {body.get('order_class')!r}")
    take = body.get("take_profit") or {}
    stop = body.get("stop_loss") or {}
    if not isinstance(take, dict) or not isinstance(stop, dict):
        raise unprocessable("take_profit and stop_loss must be objects")
    if take.get("limit_price") is None:
        raise unprocessable("bracket orders require take_profit.limit_price")
    if stop.get("stop_price") is None:
        raise unprocessable("bracket orders require stop_loss.stop_price")
    if stop.get("limit_price") is not None:
        raise unprocessable("stop-limit stop_loss legs are not supported by gnosis "
                            "sim-exchange (a stop leg is)")
    take_profit = parse_positive(take["limit_price"], "take_profit.limit_price")
    stop_loss = parse_positive(stop["stop_price"], "stop_loss.stop_price")
    if order_type not in ("market", "limit") or tif not in ("day", "gtc"):
        raise unprocessable("bracket orders must be market or limit orders with "
                            "time_in_force day or gtc")
    if notional is not None:
        raise unprocessable("bracket orders need qty, not notional")
    return take_profit, stop_loss


def _client_order_id(body: dict[str, Any]) -> str | None:
    client_order_id = body.get("client_order_id")
    if client_order_id is None:
        return None
    client_order_id = str(client_order_id)
    if not client_order_id or len(client_order_id) > 128:
        raise unprocessable("client_order_id must be 1 to 128 characters")
    return client_order_id


class OrderBook:
    """Alpaca's orders and account over a ``SimBroker``."""

    def __init__(self, broker: SimBroker, initial_cash: float, *, multiplier: float = 2.0,
                 new_id: Callable[[], str] | None = None) -> None:
        self.broker = broker
        self.cash = float(initial_cash)
        self.multiplier = multiplier
        self.positions: dict[str, Holding] = {}
        self.prices: dict[str, float] = {}
        self.orders: dict[str, AlpacaOrder] = {}
        self.events: list[dict[str, Any]] = []
        self.last_equity = float(initial_cash)
        self._by_client: dict[str, str] = {}
        self._by_internal: dict[str, str] = {}
        self._new_id = new_id or (lambda: str(uuid.uuid4()))
        self.split_parts: list[int] = []  # injected: the next fills each split into k parts
        self.fees = 0.0

    # -- lookups ----------------------------------------------------------------------------
    def get(self, order_id: str) -> AlpacaOrder:
        order = self.orders.get(order_id)
        if order is None:
            raise not_found("order not found")
        return order

    def by_client_id(self, client_order_id: str) -> AlpacaOrder:
        order_id = self._by_client.get(client_order_id)
        if order_id is None:
            raise not_found("order not found")
        return self.orders[order_id]

    def open_orders(self) -> list[AlpacaOrder]:
        return [o for o in self.orders.values() if o.is_open]

    # -- account ----------------------------------------------------------------------------
    def mark(self, symbol: str, price: float) -> None:
        self.prices[symbol] = price

    def price_of(self, symbol: str) -> float | None:
        return self.prices.get(symbol)

    def market_values(self) -> tuple[float, float]:
        long_value = short_value = 0.0
        for symbol, holding in self.positions.items():
            price = self.prices.get(symbol, holding.avg_price)
            value = holding.qty * price
            if value >= 0:
                long_value += value
            else:
                short_value += value
        return long_value, short_value

    def equity(self) -> float:
        long_value, short_value = self.market_values()
        return self.cash + long_value + short_value

    def pending_opening(self) -> float:
        return sum(o.opening_notional * (o.remaining / o.qty) for o in self.orders.values()
                   if o.is_open and o.qty > 0 and o.opening_notional > 0)

    def buying_power(self) -> float:
        long_value, short_value = self.market_values()
        gross = long_value - short_value
        return max(0.0, self.multiplier * self.equity() - gross - self.pending_opening())

    def account(self, account_id: str, created_at: int) -> dict[str, Any]:
        long_value, short_value = self.market_values()
        equity = self.equity()
        gross = long_value - short_value
        buying_power = self.buying_power()
        return {
            "id": account_id, "account_number": "PA" + account_id.replace("-", "")[:10].upper(),
            "status": "ACTIVE", "crypto_status": "INACTIVE", "currency": "USD",
            "buying_power": money(buying_power, 2), "regt_buying_power": money(buying_power, 2),
            "non_marginable_buying_power": money(max(0.0, self.cash), 2),
            "options_buying_power": money(max(0.0, self.cash), 2),
            "cash": money(self.cash, 2), "accrued_fees": money(0.0),
            "pending_transfer_in": "0", "pending_transfer_out": "0",
            "portfolio_value": money(equity, 2), "equity": money(equity, 2),
            "last_equity": money(self.last_equity, 2),
            "long_market_value": money(long_value, 2),
            "short_market_value": money(short_value, 2),
            "initial_margin": money(0.5 * gross, 2),
            "maintenance_margin": money(0.25 * long_value - 0.3 * short_value, 2),
            "last_maintenance_margin": "0", "sma": "0", "multiplier": money(self.multiplier),
            "pattern_day_trader": False, "trading_blocked": False, "transfers_blocked": False,
            "account_blocked": False, "trade_suspended_by_user": False,
            "shorting_enabled": True, "created_at": rfc3339(created_at),
            "options_approved_level": 0, "options_trading_level": 0,
        }

    def position(self, symbol: str) -> dict[str, Any]:
        holding = self.positions.get(symbol)
        if holding is None or abs(holding.qty) < QTY_EPSILON:
            raise not_found(f"position does not exist: {symbol}")
        return self._position_json(symbol, holding)

    def all_positions(self) -> list[dict[str, Any]]:
        return [self._position_json(s, h) for s, h in sorted(self.positions.items())
                if abs(h.qty) >= QTY_EPSILON]

    def _position_json(self, symbol: str, holding: Holding) -> dict[str, Any]:
        from gnosis.simexchange.market import exchange_of

        price = self.prices.get(symbol, holding.avg_price)
        qty = holding.qty
        cost = abs(qty) * holding.avg_price
        value = qty * price
        pnl = (price - holding.avg_price) * qty
        lastday = holding.lastday_price or holding.avg_price
        intraday = (price - lastday) * qty
        held = self.held_for_orders(symbol, Side.SELL if qty > 0 else Side.BUY)
        return {
            "asset_id": name_uuid("asset", symbol), "symbol": symbol,
            "exchange": exchange_of(symbol), "asset_class": "us_equity",
            "asset_marginable": True, "avg_entry_price": money(holding.avg_price),
            "qty": money(qty), "qty_available": money(math.copysign(
                max(0.0, abs(qty) - held), qty)),
            "side": "long" if qty > 0 else "short", "market_value": money(value, 2),
            "cost_basis": money(cost if qty > 0 else -cost, 2),
            "unrealized_pl": money(pnl, 2),
            "unrealized_plpc": money(pnl / cost if cost else 0.0, 6),
            "unrealized_intraday_pl": money(intraday, 2),
            "unrealized_intraday_plpc": money(intraday / (abs(qty) * lastday) if qty else 0.0, 6),
            "current_price": money(price), "lastday_price": money(lastday),
            "change_today": money((price - lastday) / lastday if lastday else 0.0, 6),
        }

    def held_for_orders(self, symbol: str, side: Side) -> float:
        """Shares that open orders on ``side`` already hold (an OCO pair counts once)."""
        held = 0.0
        pairs: dict[str, float] = {}
        for order in self.orders.values():
            if not order.is_open or order.symbol != symbol or order.side != side.value:
                continue
            if order.status in ("held", "pending_new"):
                continue
            if order.parent is not None:
                pairs[order.parent] = max(pairs.get(order.parent, 0.0), order.remaining)
            elif not order.opening:
                held += order.remaining
        return held + sum(pairs.values())

    def on_session_close(self) -> None:
        """Remember the closing prices and equity: yesterday's, for intraday P&L."""
        self.last_equity = self.equity()
        for symbol, holding in self.positions.items():
            holding.lastday_price = self.prices.get(symbol, holding.avg_price)

    # -- commands ---------------------------------------------------------------------------
    def submit(self, request: OrderRequest, now: int, active_from: int,
               expires_at: int | None, *, venue_reject: bool = False) -> AlpacaOrder:
        """Accept an order (or raise the ``WireError`` Alpaca answers with)."""
        if request.client_order_id is not None and request.client_order_id in self._by_client:
            raise unprocessable("client_order_id must be unique")
        price = self.prices.get(request.symbol)
        qty = request.qty
        if request.notional is not None:
            if price is None:
                raise unprocessable(f"no price yet for {request.symbol}: cannot size a "
                                    "notional order")
            qty = round(request.notional / price, 9)
            if qty <= 0:
                raise unprocessable("notional is too small for one share fraction")
        assert qty is not None
        side = Side(request.side)
        reference = request.limit_price or request.stop_price or price
        opening = self._check_quantity(request.symbol, side, qty, reference)
        if request.order_class == "bracket" and reference is not None:
            self._check_bracket(request, side, reference)
        order_id = self._new_id()
        order = AlpacaOrder(
            id=order_id, client_order_id=request.client_order_id or str(uuid.uuid4()),
            symbol=request.symbol, side=request.side, type=request.type, qty=qty,
            time_in_force=request.time_in_force, created_at=now, updated_at=now,
            limit_price=request.limit_price, stop_price=request.stop_price,
            order_class=request.order_class, notional=request.notional,
            internal_id=order_id, active_from=active_from,
            opening_notional=opening * (reference or 0.0), opening=opening > 0,
            expires_at=expires_at if request.time_in_force == "day" else None,
        )
        self._register(order)
        if request.order_class == "bracket":
            self._create_legs(order, request)
        if venue_reject:
            order.status = "pending_new"
            self._event("pending_new", order, now)
            return order
        broker_order = self._broker_order(order, now, request.stop_loss, request.take_profit)
        self.broker.submit(broker_order, active_from=active_from)
        self._event("new", order, now)
        return order

    def reject(self, order_id: str, now: int, reason: str = "") -> None:
        """The venue refuses a pending order (an injected fault): ``rejected``."""
        order = self.orders[order_id]
        if order.status != "pending_new":
            return
        for leg_id in order.legs:
            leg = self.orders[leg_id]
            leg.status, leg.failed_at, leg.updated_at = "rejected", now, now
        order.status, order.failed_at, order.updated_at = "rejected", now, now
        order.opening_notional = 0.0
        self._event("rejected", order, now)

    def cancel(self, order_id: str, now: int) -> AlpacaOrder:
        order = self.get(order_id)
        if not order.is_open:
            raise WireError(422, 42210000, f"order is not cancelable (status {order.status})")
        if order.parent is not None:  # one leg of an OCO pair takes the other with it
            parent = self.orders[order.parent]
            if parent.is_open and parent.filled_qty <= QTY_EPSILON:
                return self.cancel(parent.id, now)
            for leg_id in parent.legs:
                self._cancel_one(self.orders[leg_id], now)
            return order
        self._cancel_one(order, now)
        if order.legs and order.filled_qty <= QTY_EPSILON:
            for leg_id in order.legs:
                self._cancel_one(self.orders[leg_id], now)
        return order

    def cancel_all(self, now: int) -> list[AlpacaOrder]:
        canceled: list[AlpacaOrder] = []
        for order in list(self.orders.values()):
            if order.is_open and order.parent is None:
                self.cancel(order.id, now)
                canceled.append(order)
        for order in list(self.orders.values()):  # legs of entries that had filled
            if order.is_open:
                self._cancel_one(order, now)
                canceled.append(order)
        return canceled

    def replace(self, order_id: str, body: Any, now: int, active_from: int) -> AlpacaOrder:
        """``PATCH /v2/orders/{id}``: a new order replaces the old one (``replaced``)."""
        if not isinstance(body, dict):
            raise unprocessable("request body must be a JSON object")
        order = self.get(order_id)
        if order.status in ("accepted", "pending_new", "pending_cancel", "pending_replace",
                            "held") or not order.is_open:
            raise WireError(422, 42210000, f"order is not replaceable (status {order.status})")
        if order.legs:
            raise unprocessable("replacing a bracket entry is not supported by gnosis "
                                "sim-exchange; cancel it and submit a new one (its legs can be "
                                "replaced once they work)")
        client_order_id = body.get("client_order_id")
        if client_order_id is not None and str(client_order_id) in self._by_client:
            raise unprocessable("client_order_id must be unique")
        qty = parse_positive(body["qty"], "qty") if body.get("qty") is not None \
            else order.remaining
        limit_price = _price(body, "limit_price") or order.limit_price
        stop_price = _price(body, "stop_price") or order.stop_price
        if order.type == "market" and (body.get("limit_price") or body.get("stop_price")):
            raise unprocessable("a market order has no price to replace")
        tif = str(body.get("time_in_force") or order.time_in_force).lower()
        if tif not in SUPPORTED_TIF:
            raise unprocessable(f"invalid time_in_force: {tif!r}")
        new_id = self._new_id()
        new = AlpacaOrder(
            id=new_id, client_order_id=str(client_order_id or uuid.uuid4()),
            symbol=order.symbol, side=order.side, type=order.type, qty=qty,
            time_in_force=tif, created_at=now, updated_at=now, limit_price=limit_price,
            stop_price=stop_price, order_class=order.order_class, replaces=order.id,
            parent=order.parent, leg_kind=order.leg_kind, internal_id=new_id,
            active_from=active_from, fixed_qty=True, opening=order.opening,
            opening_notional=order.opening_notional * (qty / order.qty) if order.qty else 0.0,
            expires_at=order.expires_at if tif == "day" else None,
        )
        parent = self.orders[order.parent] if order.parent else None
        self.broker.cancel(order.internal_id)
        self._register(new)
        if parent is not None:
            parent.legs = [new.id if leg == order.id else leg for leg in parent.legs]
        order.status, order.replaced_at, order.replaced_by = "replaced", now, new.id
        order.updated_at, order.opening_notional = now, 0.0
        broker_order = Order(
            client_order_id=new.internal_id, symbol=new.symbol, side=Side(new.side),
            quantity=qty, order_type=SUPPORTED_TYPES[new.type], ts_created=now,
            limit_price=limit_price if new.type == "limit" else None,
            stop_price=stop_price if new.type == "stop" else None,
            reason=new.leg_kind or "replace",
            parent_id=parent.internal_id if parent else None,
            oco_group=parent.internal_id if parent else None,
        )
        self.broker.submit(broker_order, active_from=active_from)
        self._event("replaced", order, now)
        self._event("new", new, now)
        return new

    def expire_day_orders(self, now: int) -> list[AlpacaOrder]:
        """At the session close every open ``day`` order (legs included) expires."""
        expired = []
        for order in list(self.orders.values()):
            if order.is_open and order.time_in_force == "day":
                self.broker.cancel(order.internal_id)
                order.status, order.expired_at, order.updated_at = "expired", now, now
                order.opening_notional = 0.0
                self._event("expired", order, now)
                expired.append(order)
        return expired

    # -- market data ------------------------------------------------------------------------
    def on_bar(self, bar: Bar, now: int) -> list[Fill]:
        """Fill what the bar allows, then settle OCO cancellations and IOC remainders."""
        fills = self.broker.on_bar(bar)
        for fill in fills:
            self._apply_fill(fill, now)
        self._reconcile(bar, now)
        return fills

    # -- internals --------------------------------------------------------------------------
    def _register(self, order: AlpacaOrder) -> None:
        self.orders[order.id] = order
        self._by_client[order.client_order_id] = order.id
        self._by_internal[order.internal_id] = order.id

    def _create_legs(self, parent: AlpacaOrder, request: OrderRequest) -> None:
        exit_side = "sell" if parent.side == "buy" else "buy"
        for kind, suffix, order_type, level in (
                ("take_profit", "tp", "limit", request.take_profit),
                ("stop_loss", "sl", "stop", request.stop_loss)):
            leg = AlpacaOrder(
                id=self._new_id(), client_order_id=str(uuid.uuid4()), symbol=parent.symbol,
                side=exit_side, type=order_type, qty=parent.qty,
                time_in_force=parent.time_in_force, created_at=parent.created_at,
                updated_at=parent.created_at,
                limit_price=level if order_type == "limit" else None,
                stop_price=level if order_type == "stop" else None, order_class="bracket",
                status="held", parent=parent.id, leg_kind=kind, opening=False,
                internal_id=f"{parent.internal_id}-{suffix}", expires_at=parent.expires_at,
            )
            self._register(leg)
            parent.legs.append(leg.id)

    def _broker_order(self, order: AlpacaOrder, now: int, stop_loss: float | None,
                      take_profit: float | None) -> Order:
        try:
            return Order(
                client_order_id=order.internal_id, symbol=order.symbol, side=Side(order.side),
                quantity=order.qty, order_type=SUPPORTED_TYPES[order.type], ts_created=now,
                limit_price=order.limit_price, stop_price=order.stop_price, reason="entry",
                stop_loss=stop_loss, take_profit=take_profit,
            )
        except InvalidValue as exc:
            raise unprocessable(str(exc)) from None

    def _check_quantity(self, symbol: str, side: Side, qty: float,
                        reference: float | None) -> float:
        """Return the opening part of an order (shares that add exposure) after Alpaca's checks:
        an order that reduces a position may not exceed what other orders leave available,
        and may not flip it; an opening order needs buying power."""
        holding = self.positions.get(symbol)
        position = holding.qty if holding else 0.0
        if position * side.sign < -QTY_EPSILON:  # reduces the position
            available = max(0.0, abs(position) - self.held_for_orders(symbol, side))
            if qty > available + QTY_EPSILON:
                raise forbidden(f"insufficient qty available for order (requested: "
                                f"{money(qty)}, available: {money(available)})")
            return 0.0
        if reference is not None and qty * reference > self.buying_power() + 1e-6:
            raise forbidden("insufficient buying power")
        return qty

    @staticmethod
    def _check_bracket(request: OrderRequest, side: Side, base: float) -> None:
        take, stop = request.take_profit, request.stop_loss
        assert take is not None and stop is not None
        if side is Side.BUY:
            if take < base + 0.01:
                raise WireError(422, 42210000,
                                f"take_profit.limit_price must be >= base_price + 0.01 "
                                f"(base_price {money(base)})")
            if stop > base - 0.01:
                raise WireError(422, 42210000,
                                f"stop_loss.stop_price must be <= base_price - 0.01 "
                                f"(base_price {money(base)})")
        else:
            if take > base - 0.01:
                raise WireError(422, 42210000,
                                f"take_profit.limit_price must be <= base_price - 0.01 "
                                f"(base_price {money(base)})")
            if stop < base + 0.01:
                raise WireError(422, 42210000,
                                f"stop_loss.stop_price must be >= base_price + 0.01 "
                                f"(base_price {money(base)})")

    def _cancel_one(self, order: AlpacaOrder, now: int) -> None:
        if not order.is_open:
            return
        self.broker.cancel(order.internal_id)
        order.status, order.canceled_at, order.updated_at = "canceled", now, now
        order.opening_notional = 0.0
        self._event("canceled", order, now)

    def _apply_fill(self, fill: Fill, now: int) -> None:
        order_id = self._by_internal.get(fill.client_order_id)
        if order_id is None:  # never happens: every SimBroker order is registered here
            raise InvalidValue(f"fill for unknown order {fill.client_order_id}")
        order = self.orders[order_id]
        if order.status == "held":  # a leg filling in the bar its entry filled
            self._activate(order, now)
        parts = self.split_parts.pop(0) if self.split_parts else 1
        for quantity in _split(fill.quantity, parts):
            fee = fill.fee * quantity / fill.quantity
            position = self._book_fill(order.symbol, Side(order.side), quantity, fill.price, fee)
            order.filled_qty += quantity
            order.filled_value += quantity * fill.price
            order.updated_at = now
            done = order.filled_qty >= order.qty - QTY_EPSILON
            order.status = "filled" if done else "partially_filled"
            if done:
                order.filled_at = now
                order.opening_notional = 0.0
            self._event("fill" if done else "partial_fill", order, now, price=fill.price,
                        qty=quantity, position_qty=position)
        if order.legs:
            for leg_id in order.legs:
                leg = self.orders[leg_id]
                if leg.is_open and not leg.fixed_qty:
                    leg.qty = order.filled_qty
                if leg.status == "held":
                    self._activate(leg, now)

    def _activate(self, leg: AlpacaOrder, now: int) -> None:
        parent = self.orders[leg.parent] if leg.parent else None
        leg.status, leg.updated_at = "new", now
        if parent is not None and not leg.fixed_qty:
            leg.qty = parent.filled_qty
        self._event("new", leg, now)

    def _book_fill(self, symbol: str, side: Side, quantity: float, price: float,
                   fee: float) -> float:
        holding = self.positions.setdefault(symbol, Holding())
        signed = side.sign * quantity
        old = holding.qty
        new = old + signed
        if abs(old) < QTY_EPSILON or old * signed > 0:  # opening or adding
            holding.avg_price = (abs(old) * holding.avg_price + quantity * price) / abs(new)
        elif old * new < 0:  # through zero: the rest opens at this price
            holding.avg_price = price
        holding.qty = 0.0 if abs(new) < QTY_EPSILON else new
        if holding.qty == 0.0:
            holding.avg_price = 0.0
            holding.lastday_price = None
        elif holding.lastday_price is None:
            holding.lastday_price = price
        self.cash -= signed * price + fee
        self.fees += fee
        return holding.qty

    def _reconcile(self, bar: Bar, now: int) -> None:
        for order in list(self.orders.values()):
            if not order.is_open or order.symbol != bar.symbol:
                continue
            if order.status in ("held", "pending_new"):
                continue
            if not self.broker.has_order(order.internal_id):
                # SimBroker dropped it without a fill: its OCO sibling filled
                self._mark_canceled(order, now)
            elif order.time_in_force == "ioc" and order.active_from <= bar.ts_event:
                self._cancel_one(order, now)

    def _mark_canceled(self, order: AlpacaOrder, now: int) -> None:
        order.status, order.canceled_at, order.updated_at = "canceled", now, now
        order.opening_notional = 0.0
        self._event("canceled", order, now)

    # -- events and JSON ----------------------------------------------------------------------
    def _event(self, event: str, order: AlpacaOrder, now: int, *, price: float | None = None,
               qty: float | None = None, position_qty: float | None = None) -> None:
        data: dict[str, Any] = {"event": event, "timestamp": rfc3339(now),
                                "order": self.to_json(order)}
        if price is not None:
            data.update(price=money(price), qty=money(qty), position_qty=money(position_qty),
                        execution_id=str(uuid.uuid4()))
        self.events.append(data)

    def to_json(self, order: AlpacaOrder, nested: bool = True) -> dict[str, Any]:
        legs = [self.to_json(self.orders[i], nested=False) for i in order.legs] \
            if order.legs and nested else None
        return {
            "id": order.id, "client_order_id": order.client_order_id,
            "created_at": rfc3339(order.created_at), "updated_at": rfc3339(order.updated_at),
            "submitted_at": rfc3339(order.created_at), "filled_at": rfc3339(order.filled_at),
            "expired_at": rfc3339(order.expired_at), "canceled_at": rfc3339(order.canceled_at),
            "failed_at": rfc3339(order.failed_at), "replaced_at": rfc3339(order.replaced_at),
            "replaced_by": order.replaced_by, "replaces": order.replaces,
            "expires_at": rfc3339(order.expires_at),
            "asset_id": name_uuid("asset", order.symbol), "symbol": order.symbol,
            "asset_class": "us_equity", "notional": money(order.notional),
            "qty": None if order.notional is not None and order.filled_qty == 0
            else money(order.qty),
            "filled_qty": money(order.filled_qty), "filled_avg_price": money(order.avg_price),
            "order_class": order.order_class, "order_type": order.type, "type": order.type,
            "side": order.side, "time_in_force": order.time_in_force,
            "limit_price": money(order.limit_price), "stop_price": money(order.stop_price),
            "status": order.status, "extended_hours": False, "legs": legs,
            "trail_percent": None, "trail_price": None, "hwm": None,
            "position_intent": _intent(order.side, order.opening),
        }


def _intent(side: str, opening: bool) -> str:
    if side == "buy":
        return "buy_to_open" if opening else "buy_to_close"
    return "sell_to_open" if opening else "sell_to_close"


def _split(quantity: float, parts: int) -> list[float]:
    """``quantity`` in ``parts`` pieces of whole shares where possible, summing exactly."""
    parts = max(1, int(parts))
    whole = math.floor(quantity)
    if parts == 1 or whole < parts:
        return [quantity]
    base = whole // parts
    pieces = [float(base)] * parts
    pieces[-1] += quantity - base * parts
    return pieces
