"""What the exchange publishes, derived from its bars.

* Bars come from the synthetic market (seeded) or a replay file, in time order.
* Trades and quotes are **synthetic**: a few trades along the bar's assumed path (O→L→H→C for
  an up bar, O→H→L→C for a down bar, the path ``SimBroker`` fills on), each preceded by a quote
  a spread around it. Their sizes are typical trade sizes, not a breakdown of the bar's volume.
* Updated bars (late trades) exist only on the synthetic market: deterministically by seed a
  small share of bars is re-sent ~30 simulated seconds after the minute closes with more volume
  and a close that may move by a cent inside the bar's range. A replay file has none unless a
  test injects one.
* News and options are served only where they are honest: on the synthetic market the simulated
  headlines and chain (coupled to the market's hidden phase and path); on a replay file only what
  ``--news FILE`` and ``--options FILE`` hold, otherwise nothing.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gnosis.core.hashing import unit_draw
from gnosis.model.market import CALL, OptionContract
from gnosis.model.types import NANOS_PER_MINUTE, NANOS_PER_SECOND, Bar, InvalidValue
from gnosis.simexchange.wire import msgpack_time, rfc3339

UPDATED_BAR_SHARE = 0.04
UPDATED_BAR_DELAY_NS = 30 * NANOS_PER_SECOND
TRADES_PER_BAR = 4
TRADE_OFFSETS_S = (2, 18, 37, 55)  # when in the minute the sample trades print
QUOTE_LEAD_NS = 200_000_000  # a quote shows 0.2 s before the trade at its price
INDICATIVE_DELAY_NS = 15 * NANOS_PER_MINUTE
ETFS = {"SPY", "QQQ", "IWM", "DIA"}
NANOS_PER_YEAR = 365.25 * 86_400 * NANOS_PER_SECOND


def exchange_of(symbol: str) -> str:
    return "ARCA" if symbol in ETFS else "NASDAQ"


def tape_of(symbol: str) -> str:
    return "B" if symbol in ETFS else "C"


# -- trades and quotes --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Tick:
    """A trade or quote message due at ``ts`` (wall time inside the bar's minute)."""

    ts: int
    symbol: str
    message: dict[str, Any]

    @property
    def channel(self) -> str:
        return "trades" if self.message["T"] == "t" else "quotes"


def bar_path(bar: Bar) -> tuple[float, float, float, float]:
    if bar.close >= bar.open:
        return bar.open, bar.low, bar.high, bar.close
    return bar.open, bar.high, bar.low, bar.close


def spread_for(price: float) -> float:
    """A cent, or about half a basis point on expensive names."""
    return max(0.01, round(price * 5e-5, 2))


def ticks_for_bar(bar: Bar, first_trade_id: int) -> list[Tick]:
    """Synthetic trades along the bar's path, each after a quote around its price."""
    path = bar_path(bar)
    count = bar.trade_count if bar.trade_count else TRADES_PER_BAR
    size = float(max(1, round(bar.volume / max(count, TRADES_PER_BAR))))
    spread = spread_for(bar.close)
    exchange = "V"  # IEX
    tape = tape_of(bar.symbol)
    ticks: list[Tick] = []
    for i, (price, offset) in enumerate(zip(path, TRADE_OFFSETS_S)):
        ts = bar.ts_event + offset * NANOS_PER_SECOND
        bid = round(math.floor((price - spread / 2) * 100 + 1e-6) / 100, 2)
        ask = round(max(bid + spread, price), 2)
        quote_size = float(1 + int(unit_draw(bar.symbol, bar.ts_event, i, "qs") * 5))
        ticks.append(Tick(ts - QUOTE_LEAD_NS, bar.symbol, {
            "T": "q", "S": bar.symbol, "bx": exchange, "bp": bid, "bs": quote_size,
            "ax": exchange, "ap": ask, "as": quote_size, "c": ["R"], "z": tape,
            "t": msgpack_time(ts - QUOTE_LEAD_NS)}))
        ticks.append(Tick(ts, bar.symbol, {
            "T": "t", "S": bar.symbol, "i": first_trade_id + i, "x": exchange, "p": price,
            "s": size, "c": ["@"], "z": tape, "t": msgpack_time(ts)}))
    return ticks


def updated_bar(bar: Bar, seed: int) -> Bar | None:
    """The late-trade revision of ``bar``, or None for most bars (deterministic by seed)."""
    if unit_draw(seed, bar.symbol, bar.ts_event, "updated") >= UPDATED_BAR_SHARE:
        return None
    extra = 0.01 + 0.04 * unit_draw(seed, bar.symbol, bar.ts_event, "late volume")
    move = round((unit_draw(seed, bar.symbol, bar.ts_event, "late close") - 0.5) * 2) * 0.01
    close = min(max(round(bar.close + move, 2), bar.low), bar.high)
    volume = float(round(bar.volume * (1.0 + extra)))
    trades = None if bar.trade_count is None else bar.trade_count + max(1, round(
        bar.trade_count * extra))
    vwap = round(min(max((bar.high + bar.low + 2.0 * close) / 4.0, bar.low), bar.high), 4)
    return Bar(bar.symbol, bar.ts_event, bar.open, bar.high, bar.low, close, volume, trades,
               vwap, bar.ts_init, bar.interval_s)


# -- bar history --------------------------------------------------------------------------------
class BarHistory:
    """Published 1-minute bars per symbol, in time order, with updates applied in place."""

    def __init__(self) -> None:
        self._ts: dict[str, list[int]] = {}
        self._bars: dict[str, list[Bar]] = {}

    def append(self, bar: Bar) -> None:
        times = self._ts.setdefault(bar.symbol, [])
        bars = self._bars.setdefault(bar.symbol, [])
        if times and bar.ts_event <= times[-1]:
            raise InvalidValue(f"{bar.symbol}: bar at {bar.ts_event} is not after the last one")
        times.append(bar.ts_event)
        bars.append(bar)

    def replace(self, bar: Bar) -> bool:
        times = self._ts.get(bar.symbol, [])
        i = bisect.bisect_left(times, bar.ts_event)
        if i < len(times) and times[i] == bar.ts_event:
            self._bars[bar.symbol][i] = bar
            return True
        return False

    def symbols(self) -> list[str]:
        return sorted(self._bars)

    def count(self, symbol: str) -> int:
        return len(self._ts.get(symbol, ()))

    def last(self, symbol: str) -> Bar | None:
        bars = self._bars.get(symbol)
        return bars[-1] if bars else None

    def at_or_before(self, symbol: str, ts: int) -> Bar | None:
        times = self._ts.get(symbol, [])
        i = bisect.bisect_right(times, ts) - 1
        return self._bars[symbol][i] if i >= 0 else None

    def window(self, symbol: str, start: int, end: int) -> list[Bar]:
        """Bars with ``start <= ts_event < end``."""
        times = self._ts.get(symbol, [])
        lo = bisect.bisect_left(times, start)
        hi = bisect.bisect_left(times, end)
        return self._bars.get(symbol, [])[lo:hi]


# -- news ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Article:
    id: int
    created_at: int
    symbols: tuple[str, ...]
    headline: str
    summary: str = ""
    source: str = ""
    author: str = ""

    def rest(self, include_content: bool = False) -> dict[str, Any]:
        return {"id": self.id, "headline": self.headline, "summary": self.summary,
                "author": self.author, "created_at": rfc3339(self.created_at),
                "updated_at": rfc3339(self.created_at), "url": None,
                "symbols": list(self.symbols), "source": self.source, "images": [],
                "content": self.summary if include_content else ""}

    def stream(self) -> dict[str, Any]:
        return {"T": "n", "id": self.id, "headline": self.headline, "summary": self.summary,
                "author": self.author, "created_at": msgpack_time(self.created_at),
                "updated_at": msgpack_time(self.created_at), "url": None, "content": "",
                "symbols": list(self.symbols), "source": self.source}


@dataclass(slots=True)
class NewsDesk:
    """Articles by publication time; ``published`` holds those the clock has reached."""

    published: list[Article] = field(default_factory=list)

    def publish(self, article: Article) -> None:
        self.published.append(article)

    def query(self, symbols: set[str] | None, start: int, end: int) -> list[Article]:
        return [a for a in self.published if start <= a.created_at <= end
                and (symbols is None or symbols.intersection(a.symbols))]


# -- options ------------------------------------------------------------------------------------
def occ_symbol(root: str, expiry_ts: int, right: str, strike: float) -> str:
    day = datetime.fromtimestamp(expiry_ts // NANOS_PER_SECOND, tz=UTC).strftime("%y%m%d")
    return f"{root}{day}{right[0].upper()}{round(strike * 1000):08d}"


def greeks(contract: OptionContract, spot: float, now: int, risk_free: float
           ) -> dict[str, float] | None:
    """Black-Scholes greeks from the contract's implied volatility, in Alpaca's units (theta per
    day, vega and rho per 1 point); a file's gamma and delta are kept as given."""
    from blackscholes import BlackScholesCall, BlackScholesPut

    years = max((contract.expiry_ts - now) / NANOS_PER_YEAR, 60 * NANOS_PER_SECOND / NANOS_PER_YEAR)
    model_type = BlackScholesCall if contract.right == CALL else BlackScholesPut
    model = model_type(S=spot, K=contract.strike, T=years, r=risk_free,
                       sigma=contract.implied_vol, q=0.0)
    values = {"delta": float(model.delta()), "gamma": float(model.gamma()),
              "rho": float(model.rho()) / 100.0, "theta": float(model.theta()) / 365.0,
              "vega": float(model.vega()) / 100.0}
    if contract.gamma is not None:
        values["gamma"] = contract.gamma
    if contract.delta is not None:
        values["delta"] = contract.delta
    if not all(math.isfinite(v) for v in values.values()):
        return None
    return {k: round(v, 6) for k, v in values.items()}


def option_price(contract: OptionContract, spot: float, now: int, risk_free: float) -> float:
    from blackscholes import BlackScholesCall, BlackScholesPut

    years = max((contract.expiry_ts - now) / NANOS_PER_YEAR, 60 * NANOS_PER_SECOND / NANOS_PER_YEAR)
    model_type = BlackScholesCall if contract.right == CALL else BlackScholesPut
    price = float(model_type(S=spot, K=contract.strike, T=years, r=risk_free,
                             sigma=contract.implied_vol, q=0.0).price())
    return max(price, 0.01) if math.isfinite(price) else 0.01
