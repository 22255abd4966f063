"""Side inputs of the agents: option chains, news headlines and quotes, and their ports."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from gnosis.model.types import InvalidValue

CALL = "call"
PUT = "put"


def _positive(what: str, value: float) -> None:
    if not (0.0 < value < math.inf):
        raise InvalidValue(f"{what} must be positive and finite, got {value!r}")


@dataclass(frozen=True, slots=True)
class OptionContract:
    symbol: str
    underlying: str
    expiry_ts: int  # ns UTC
    strike: float
    right: str  # "call" | "put"
    open_interest: float
    implied_vol: float
    gamma: float | None = None  # per share, per $1 move of the underlying
    delta: float | None = None

    def __post_init__(self) -> None:
        _positive(f"{self.symbol} strike", self.strike)
        _positive(f"{self.symbol} implied volatility", self.implied_vol)
        if self.right not in (CALL, PUT):
            raise InvalidValue(f"{self.symbol}: right must be 'call' or 'put', got {self.right!r}")
        if not (0.0 <= self.open_interest < math.inf):
            raise InvalidValue(f"{self.symbol}: open interest {self.open_interest!r}")
        if self.gamma is not None and not (0.0 <= self.gamma < math.inf):
            raise InvalidValue(f"{self.symbol}: gamma {self.gamma!r}")


@dataclass(frozen=True, slots=True)
class OptionsChain:
    underlying: str
    ts_event: int  # the time the chain describes (a delayed feed's snapshot is older than now)
    spot: float
    contracts: tuple[OptionContract, ...]
    source: str = ""  # where it comes from and how late it is, for the agent's reasoning

    def __post_init__(self) -> None:
        _positive(f"{self.underlying} spot", self.spot)


@dataclass(frozen=True, slots=True)
class Headline:
    ts_event: int
    symbols: tuple[str, ...]
    headline: str
    summary: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        if not self.headline.strip():
            raise InvalidValue("a headline cannot be empty")


@dataclass(frozen=True, slots=True)
class Quote:
    symbol: str
    ts_event: int
    bid: float
    ask: float
    bid_size: float
    ask_size: float

    def __post_init__(self) -> None:
        _positive(f"{self.symbol} bid", self.bid)
        _positive(f"{self.symbol} ask", self.ask)
        if self.ask < self.bid:
            raise InvalidValue(f"{self.symbol}: crossed quote bid {self.bid} > ask {self.ask}")

    @property
    def spread_bps(self) -> float:
        return (self.ask - self.bid) / ((self.ask + self.bid) / 2.0) * 1e4


class OptionsChainProvider(Protocol):
    def chain(self, symbol: str, spot: float, as_of_ns: int) -> OptionsChain | None:
        """The chain of ``symbol`` known at ``as_of_ns`` (a bar's close: never a snapshot taken
        later), priced at ``spot``; None when there is none."""
        ...


class NewsProvider(Protocol):
    def headlines(self, symbol: str, after_ns: int, until_ns: int) -> Sequence[Headline]:
        """Headlines about ``symbol`` published in (``after_ns``, ``until_ns``], oldest first:
        a bar asks from the previous bar's close to its own close (usually none)."""
        ...


class QuoteProvider(Protocol):
    def quote(self, symbol: str, ts_event: int) -> Quote | None: ...
