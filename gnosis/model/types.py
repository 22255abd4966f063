"""Immutable domain types that refuse bad values at construction.

Timestamps are integer nanoseconds since the Unix epoch, UTC (``ts_event`` is when the source
says a thing happened, ``ts_init`` is when we received it), as in NautilusTrader: integers are
cheap on the per-bar path and cannot be naive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from gnosis.model.regime import RegimeState

NANOS_PER_SECOND = 1_000_000_000
NANOS_PER_MINUTE = 60 * NANOS_PER_SECOND
_INF = math.inf


class InvalidValue(ValueError):
    """A value that the domain cannot represent (NaN, infinity, non-positive price, ...)."""


def ns_to_datetime(ts: int) -> datetime:
    """Return the timezone-aware UTC datetime of an epoch-nanosecond timestamp."""
    return datetime.fromtimestamp(ts / NANOS_PER_SECOND, tz=UTC)


def datetime_to_ns(moment: datetime) -> int:
    """Return epoch nanoseconds of an aware datetime; naive datetimes are refused."""
    if moment.tzinfo is None:
        raise InvalidValue(f"naive datetime {moment!r}: timestamps must be timezone-aware")
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NANOS_PER_SECOND + delta.microseconds * 1000


def format_ns(ts: int) -> str:
    """Return a compact ISO-8601 UTC string of an epoch-nanosecond timestamp."""
    return ns_to_datetime(ts).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_positive(name: str, value: float) -> None:
    if not (0.0 < value < _INF):
        raise InvalidValue(f"{name} must be a finite positive number, got {value!r}")


def _check_finite(name: str, value: float) -> None:
    if not (-_INF < value < _INF):
        raise InvalidValue(f"{name} must be finite, got {value!r}")


class _BarFields(NamedTuple):
    symbol: str
    ts_event: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    trade_count: int | None = None
    vwap: float | None = None
    ts_init: int = 0
    interval_s: int = 60


class Bar(_BarFields):
    """One OHLCV bar; ``ts_event`` is the start of the bar's interval.

    A tuple underneath (immutable, compact, fast to build on the hot path); construction
    validates every field so a bad bar can never enter the engine.
    """

    __slots__ = ()

    def __new__(
        cls,
        symbol: str,
        ts_event: int,
        open: float,  # noqa: A002 - the market's own word
        high: float,
        low: float,
        close: float,
        volume: float,
        trade_count: int | None = None,
        vwap: float | None = None,
        ts_init: int = 0,
        interval_s: int = 60,
    ) -> Bar:
        # One chained comparison rejects NaN (every comparison with NaN is false), infinities,
        # non-positive prices and an inconsistent range.
        if not (0.0 < low <= open <= high < _INF and low <= close <= high):
            raise InvalidValue(
                f"bad bar {symbol} @ {ts_event}: o={open} h={high} l={low} c={close} "
                "(need 0 < low <= open,close <= high < inf)"
            )
        if not (0.0 <= volume < _INF):
            raise InvalidValue(f"bad bar {symbol} @ {ts_event}: volume={volume}")
        if not symbol:
            raise InvalidValue("bar without a symbol")
        if vwap is not None and not (0.0 < vwap < _INF):
            vwap = None  # vwap is advisory; a broken one is dropped, not fatal
        return _BarFields.__new__(
            cls,
            symbol,
            ts_event,
            open,
            high,
            low,
            close,
            volume,
            trade_count,
            vwap,
            ts_init or ts_event + interval_s * NANOS_PER_SECOND,
            interval_s,
        )

    @property
    def timestamp(self) -> datetime:
        return ns_to_datetime(self.ts_event)

    @property
    def ts_close(self) -> int:
        """When the bar's interval ends (the earliest moment its close is known)."""
        return self.ts_event + self.interval_s * NANOS_PER_SECOND


class Side(Enum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @classmethod
    def of_sign(cls, sign: int) -> Side:
        if sign > 0:
            return cls.BUY
        if sign < 0:
            return cls.SELL
        raise InvalidValue("a side needs a non-zero sign")


class OrderType(Enum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"


class TradingState(Enum):
    """Engine trading state, as in mature engines: exits only when REDUCING, nothing when HALTED."""

    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


@dataclass(frozen=True, slots=True)
class Vote:
    """One agent's vote. An abstention is explicit and carries its reason."""

    agent: str
    signal: int
    confidence: float
    reasoning: str
    abstained: bool = False

    def __post_init__(self) -> None:
        if self.signal not in (-1, 0, 1):
            raise InvalidValue(f"{self.agent}: signal must be -1, 0 or +1, got {self.signal!r}")
        if not (0.0 <= self.confidence <= 1.0):
            raise InvalidValue(
                f"{self.agent}: confidence must be in [0, 1], got {self.confidence!r}"
            )
        if self.abstained and self.signal != 0:
            raise InvalidValue(f"{self.agent}: an abstention cannot carry a signal")

    @classmethod
    def abstain(cls, agent: str, reason: str) -> Vote:
        return cls(agent=agent, signal=0, confidence=0.0, reasoning=reason, abstained=True)


class Explainer(Protocol):
    """Formats a decision's explanation from what its strategy kept of the bar (``context``)."""

    def explain(self, context: Any) -> tuple[tuple[Vote, ...], tuple[tuple[str, str], ...], str,
                                             RegimeState | None]: ...


_DECISION_FIELDS = ("symbol", "ts_event", "signal", "confidence", "votes", "regime",
                    "regime_confidence", "reasoning", "inactive", "regime_state")


class _DecisionSlots:
    """A decision's storage, assignable. A decision is filled in as one of these and then
    becomes a ``Decision`` (the same layout, whose assignments raise): setting the slots of an
    immutable object one ``object.__setattr__`` at a time cost four times as much, and every
    bar makes a decision."""

    __slots__ = ("symbol", "ts_event", "signal", "confidence", "regime", "regime_confidence",
                 "_votes", "_inactive", "_reasoning", "_regime_state", "_explainer", "_context",
                 "_marks")

    symbol: str
    ts_event: int
    signal: int
    confidence: float
    regime: str | None
    regime_confidence: float | None
    _votes: tuple[Vote, ...]
    _inactive: tuple[tuple[str, str], ...]
    _reasoning: str
    _regime_state: RegimeState | None
    _explainer: Explainer | None
    _context: Any
    _marks: tuple[tuple[str, str], ...] | None


def _check_numbers(signal: int, confidence: float) -> None:
    if signal not in (-1, 0, 1):
        raise InvalidValue(f"decision signal must be -1, 0 or +1, got {signal!r}")
    if not (0.0 <= confidence <= 1.0):
        raise InvalidValue(f"decision confidence must be in [0, 1], got {confidence!r}")


class Decision(_DecisionSlots):
    """What a strategy concluded on one bar of one symbol. Immutable.

    The numbers (``signal``, ``confidence``, ``regime``, ``regime_confidence``) are always
    there. The explanation (``votes``, ``inactive`` agents and why, ``reasoning``, the
    detector's full ``regime_state``) is given, or formatted on first read by an ``Explainer``
    (``Decision.explained_by``): a backtest reads it for a few bars out of thousands (entries,
    ``--decisions``), and formatting every bar's strings cost more than deciding. Either way
    the values are the same; equality, hashing and pickling see the formatted explanation.
    ``vote_marks`` says how each agent voted ("-1", "0", "1", "abstain", "off") without
    formatting anything.
    """

    __slots__ = ()

    def __new__(cls, symbol: str, ts_event: int, signal: int, confidence: float,
                votes: tuple[Vote, ...] = (), regime: str | None = None,
                regime_confidence: float | None = None, reasoning: str = "",
                inactive: tuple[tuple[str, str], ...] = (),
                regime_state: RegimeState | None = None) -> Decision:
        """A decision with its explanation given (its marks follow from the votes)."""
        self = cls.explained_by(symbol, ts_event, signal, confidence, regime, regime_confidence,
                                None, None, None)
        self._keep(votes, inactive, reasoning, regime_state)
        return self

    @staticmethod
    def explained_by(symbol: str, ts_event: int, signal: int, confidence: float,
                     regime: str | None, regime_confidence: float | None,
                     marks: tuple[tuple[str, str], ...] | None, explainer: Explainer | None,
                     context: Any) -> Decision:
        """A decision whose explanation ``explainer.explain(context)`` formats on first read;
        ``marks`` are its ``vote_marks``."""
        if signal not in (-1, 0, 1) or not (0.0 <= confidence <= 1.0):  # one bar after another
            _check_numbers(signal, confidence)
        self = _new_slots(_DecisionSlots)
        self.symbol = symbol
        self.ts_event = ts_event
        self.signal = signal
        self.confidence = confidence
        self.regime = regime
        self.regime_confidence = regime_confidence
        self._explainer = explainer
        self._context = context
        self._marks = marks
        self.__class__ = Decision  # from now on immutable
        return self  # type: ignore[return-value]

    def _explain(self) -> None:
        explainer = self._explainer
        if explainer is not None:
            self._keep(*explainer.explain(self._context))

    def _keep(self, votes: tuple[Vote, ...], inactive: tuple[tuple[str, str], ...],
              reasoning: str, regime_state: RegimeState | None) -> None:
        """Hold the explanation (and drop what would have formatted it)."""
        _set(self, "_votes", votes)
        _set(self, "_inactive", inactive)
        _set(self, "_reasoning", reasoning)
        _set(self, "_regime_state", regime_state)
        _set(self, "_explainer", None)
        _set(self, "_context", None)

    @property
    def votes(self) -> tuple[Vote, ...]:
        self._explain()
        return self._votes

    @property
    def inactive(self) -> tuple[tuple[str, str], ...]:
        self._explain()
        return self._inactive

    @property
    def reasoning(self) -> str:
        self._explain()
        return self._reasoning

    @property
    def regime_state(self) -> RegimeState | None:
        self._explain()
        return self._regime_state

    @property
    def vote_marks(self) -> tuple[tuple[str, str], ...]:
        """(agent, "-1" | "0" | "1" | "abstain" | "off") of every agent, active ones first."""
        marks = self._marks
        if marks is None:
            marks = tuple((v.agent, "abstain" if v.abstained else str(v.signal))
                          for v in self._votes) + tuple((agent, "off")
                                                        for agent, _ in self._inactive)
            _set(self, "_marks", marks)
        return marks

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _DECISION_FIELDS)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Decision is immutable: cannot assign {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Decision is immutable: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={value!r}"
                          for name, value in zip(_DECISION_FIELDS, self._fields(), strict=True))
        return f"Decision({inner})"

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return Decision, self._fields()


_set = object.__setattr__
_new_slots = object.__new__


@dataclass(frozen=True, slots=True)
class Order:
    """An order as the engine knows it. ``client_order_id`` is deterministic and idempotent."""

    client_order_id: str
    symbol: str
    side: Side
    quantity: float
    order_type: OrderType
    ts_created: int
    limit_price: float | None = None
    stop_price: float | None = None
    reason: str = ""
    expected_price: float | None = None
    # A bracket: when this (entry) order fills, the broker places a stop-loss and a
    # take-profit child that cancel each other (as Alpaca's order_class="bracket").
    stop_loss: float | None = None
    take_profit: float | None = None
    parent_id: str | None = None
    oco_group: str | None = None

    def __post_init__(self) -> None:
        # a sound order passes one chained test (a trade makes four orders); only one that
        # fails it goes through the rules one by one, to say which
        stop, target = self.stop_loss, self.take_profit
        if (0.0 < self.quantity < _INF and self.client_order_id
                and (stop is None or 0.0 < stop < _INF)
                and (target is None or 0.0 < target < _INF)
                and (stop is None or target is None
                     or (target - stop) * (1 if self.side is Side.BUY else -1) > 0)
                and (self.limit_price is None or 0.0 < self.limit_price < _INF)
                and (self.stop_price is None or 0.0 < self.stop_price < _INF)):
            return
        self._refuse()

    def _refuse(self) -> None:
        _check_positive("order quantity", self.quantity)
        for name in ("stop_loss", "take_profit"):
            value = getattr(self, name)
            if value is not None:
                _check_positive(name, value)
        # the stop must sit on the losing side of the target for the order's direction
        if (self.stop_loss is not None and self.take_profit is not None
                and (self.take_profit - self.stop_loss) * self.side.sign <= 0):
            raise InvalidValue(
                f"bracket of {self.client_order_id}: stop {self.stop_loss} and target "
                f"{self.take_profit} are on the wrong sides for a {self.side.value}"
            )
        if self.limit_price is not None:
            _check_positive("limit price", self.limit_price)
        if self.stop_price is not None:
            _check_positive("stop price", self.stop_price)
        if not self.client_order_id:
            raise InvalidValue("an order needs a client order id")
        raise AssertionError(f"an order passed every rule yet failed their conjunction: {self}")


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution. ``quantity`` is this fill's quantity, never a cumulative one.

    Three prices tell where the money went: ``expected_price`` is what the decision saw (the
    close of the bar it was made on), ``reference_price`` is what the market offered when the
    order could execute (the fill bar's open for a market order, the level for a stop or a
    limit), and ``price`` is what we got. Slippage is ``price`` against the reference (the
    execution model's cost); the implementation shortfall is the reference against the
    expectation (the market moving while the order waited).
    """

    client_order_id: str
    symbol: str
    side: Side
    quantity: float
    price: float
    fee: float
    ts_event: int
    expected_price: float
    liquidity_note: str = ""
    reason: str = ""  # why the order existed: entry, stop_loss, take_profit, time_stop, ...
    remaining: float = 0.0  # what is left of the order after this fill (0: the order is done)
    reference_price: float | None = None  # None: the expected price (no separate reference)
    execution_id: str = ""  # the venue's id of this execution: a fill reported twice is one

    def __post_init__(self) -> None:
        _check_positive("fill quantity", self.quantity)
        _check_positive("fill price", self.price)
        _check_finite("fee", self.fee)
        if self.fee < 0:
            raise InvalidValue(f"fee must be non-negative, got {self.fee}")
        if not (0.0 <= self.remaining < _INF):
            raise InvalidValue(f"remaining quantity must be >= 0, got {self.remaining}")

    @property
    def reference(self) -> float:
        return self.expected_price if self.reference_price is None else self.reference_price

    @property
    def slippage_cost(self) -> float:
        """Cash lost to execution against the reference price (positive = worse)."""
        return (self.price - self.reference) * self.quantity * self.side.sign

    @property
    def shortfall_cost(self) -> float:
        """Cash lost to the market moving between the decision and the chance to execute."""
        return (self.reference - self.expected_price) * self.quantity * self.side.sign


@dataclass(frozen=True, slots=True)
class Trade:
    """A closed round trip. ``max_favorable``/``max_adverse`` are the best and worst excursion
    of the price from the entry while the trade was open, as fractions of the entry price
    (side-aware: both are >= 0)."""

    symbol: str
    side: str  # "long" | "short"
    quantity: float
    entry_price: float
    exit_price: float
    entry_ts: int
    exit_ts: int
    bars_held: int
    pnl: float  # after fees
    return_pct: float
    fees: float
    exit_reason: str
    entry_order_id: str
    max_favorable: float = 0.0
    max_adverse: float = 0.0

    @property
    def won(self) -> bool:
        return self.pnl > 0

    def as_row(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "side": self.side,
            "quantity": self.quantity,
            "entry_price": round(self.entry_price, 6),
            "exit_price": round(self.exit_price, 6),
            "entry_time": format_ns(self.entry_ts),
            "exit_time": format_ns(self.exit_ts),
            "bars_held": self.bars_held,
            "pnl": round(self.pnl, 6),
            "return_pct": round(self.return_pct, 8),
            "fees": round(self.fees, 6),
            "exit_reason": self.exit_reason,
            "entry_order_id": self.entry_order_id,
            "max_favorable": round(self.max_favorable, 8),
            "max_adverse": round(self.max_adverse, 8),
        }
