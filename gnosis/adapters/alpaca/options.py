"""Alpaca's option chain for the Hedge agent: snapshot greeks × contract open interest.

A background thread refreshes each symbol every ``options_refresh_s`` seconds: the contracts
with their open interest from the trading API (``TradingClient.get_option_contracts``, the
previous day's open interest) and the snapshots with implied volatility and greeks from the
data API (``OptionHistoricalDataClient.get_option_chain``), joined by OCC symbol. The free
``indicative`` feed is delayed about 15 minutes, so a snapshot taken at venue time T describes
T − 15 min: that is the chain's ``ts_event``, and the agent is told so (``OptionsChain.source``
and its age in the vote's reasoning). ``chain()`` only reads the cache: the newest snapshot
taken at or before the bar's time (a snapshot from after a warm-up bar is never shown to it).
Contracts without an implied volatility are skipped and counted; when the source fails the
agent abstains with the reason (``missing_reason``).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, deque
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from gnosis.adapters.alpaca import rest
from gnosis.adapters.alpaca.calendar import NEW_YORK, VenueClock, new_york
from gnosis.adapters.alpaca.convert import number
from gnosis.adapters.alpaca.settings import AlpacaSettings
from gnosis.model.market import CALL, PUT, OptionContract, OptionsChain
from gnosis.model.types import NANOS_PER_SECOND, InvalidValue, datetime_to_ns, ns_to_datetime

if TYPE_CHECKING:
    from gnosis.trading.live_bot import LiveBot

log = logging.getLogger(__name__)
INDICATIVE_DELAY_NS = 15 * 60 * NANOS_PER_SECOND
_KEPT = 4  # snapshots kept per symbol
_STRIKE_BAND = 0.15  # strikes within ±15% of the last spot once one is known


class AlpacaOptionsChain:
    """``OptionsChainProvider`` over a cache that a background thread refreshes.

    Slotted: the ensemble's snapshot pickles a provider's ``__dict__`` when it has one."""

    __slots__ = ("settings", "symbols", "clock", "trading", "data", "feed", "refresh_s",
                 "days_ahead", "stats", "_lock", "_chains", "_spot", "_error", "_stop",
                 "_thread", "_bot")

    def __init__(self, settings: AlpacaSettings, symbols: tuple[str, ...], *, clock: VenueClock,
                 trading_client: Any = None, data_client: Any = None,
                 feed: str = "indicative") -> None:
        self.settings = settings
        self.symbols = tuple(symbols)
        self.clock = clock
        self.trading = trading_client or settings.trading_client(raw=True)
        self.data = data_client or settings.option_data_client(raw=True)
        self.feed = feed
        self.refresh_s = settings.tuning.options_refresh_s
        self.days_ahead = settings.tuning.options_days
        self.stats: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._chains: dict[str, deque[OptionsChain]] = {}
        self._spot: dict[str, float] = {}
        self._error: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bot: LiveBot | None = None

    # -- OptionsChainProvider --------------------------------------------------------------------
    def chain(self, symbol: str, spot: float, ts: int) -> OptionsChain | None:
        """The newest snapshot of ``symbol`` describing a time at or before ``ts``, priced at
        ``spot`` (a dict lookup: never a network call)."""
        with self._lock:
            if spot > 0:
                self._spot[symbol] = spot
            for snapshot in reversed(self._chains.get(symbol, ())):
                if snapshot.ts_event <= ts:
                    self.stats["served"] += 1
                    return OptionsChain(symbol, snapshot.ts_event, spot, snapshot.contracts,
                                        source=snapshot.source)
        self.stats["missing"] += 1
        return None

    def missing_reason(self, symbol: str) -> str:
        with self._lock:
            error = self._error.get(symbol)
            have = bool(self._chains.get(symbol))
        if error:
            return f"no options data: Alpaca option chain of {symbol} unavailable ({error})"
        if have:
            return f"no options data: no Alpaca option snapshot of {symbol} that old yet"
        return f"no options data: Alpaca option chain of {symbol} not loaded yet"

    # -- refreshing ------------------------------------------------------------------------------
    def refresh(self, symbol: str) -> OptionsChain | None:
        """Download one snapshot of ``symbol``'s chain (REST; the refresher thread)."""
        from alpaca.data.enums import OptionsFeed
        from alpaca.data.requests import OptionChainRequest
        from alpaca.trading.requests import GetOptionContractsRequest

        now = self.clock.read().now_ns
        today = ns_to_datetime(now).astimezone(NEW_YORK).date()
        until = today + timedelta(days=self.days_ahead)
        with self._lock:
            spot = self._spot.get(symbol)
        band: dict[str, Any] = {}
        if spot:
            band = {"strike_price_gte": f"{spot * (1 - _STRIKE_BAND):.2f}",
                    "strike_price_lte": f"{spot * (1 + _STRIKE_BAND):.2f}"}
        open_interest: dict[str, tuple[dict[str, Any], float]] = {}
        token = None
        while True:
            page = rest.call("download option contracts", self.trading.get_option_contracts,
                             GetOptionContractsRequest(underlying_symbols=[symbol],
                                                       expiration_date_gte=today,
                                                       expiration_date_lte=until, limit=1000,
                                                       page_token=token, **band)) or {}
            for record in page.get("option_contracts") or []:
                try:
                    oi = number(record.get("open_interest"))
                except InvalidValue:
                    oi = None
                if oi is None:
                    self.stats["no_open_interest"] += 1
                    continue
                open_interest[str(record["symbol"])] = (record, oi)
            token = page.get("next_page_token")
            if not token:
                break
        feed = OptionsFeed(self.feed)
        snapshots = rest.call("download the option chain", self.data.get_option_chain,
                              OptionChainRequest(underlying_symbol=symbol, feed=feed,
                                                 expiration_date_lte=until)) or {}
        contracts = []
        for occ, (record, oi) in open_interest.items():
            snapshot = snapshots.get(occ)
            if not isinstance(snapshot, dict):
                self.stats["no_snapshot"] += 1
                continue
            contract = self._contract(symbol, occ, record, oi, snapshot)
            if contract is not None:
                contracts.append(contract)
        delay = INDICATIVE_DELAY_NS if self.feed == "indicative" else 0
        as_of = now - delay
        source = (f"Alpaca {self.feed} option snapshots"
                  + (" (~15 min delayed)" if delay else "")
                  + f", {len(contracts)} contracts, open interest of the previous session")
        if not contracts:
            with self._lock:
                self._error[symbol] = "the chain came back empty"
            return None
        chain = OptionsChain(symbol, as_of, spot or 1.0, tuple(contracts), source=source)
        with self._lock:
            self._chains.setdefault(symbol, deque(maxlen=_KEPT)).append(chain)
            self._error.pop(symbol, None)
        self.stats["refreshes"] += 1
        return chain

    def _contract(self, symbol: str, occ: str, record: dict[str, Any], oi: float,
                  snapshot: dict[str, Any]) -> OptionContract | None:
        try:
            iv = number(snapshot.get("impliedVolatility"))
            greeks = snapshot.get("greeks") or {}
            right = str(record.get("type", "")).lower()
            if iv is None or iv <= 0 or right not in (CALL, PUT):
                self.stats["no_implied_volatility"] += 1
                return None
            expiry = datetime_to_ns(_expiry(str(record["expiration_date"])))
            return OptionContract(symbol=occ, underlying=symbol, expiry_ts=expiry,
                                  strike=float(record["strike_price"]), right=right,
                                  open_interest=oi, implied_vol=iv,
                                  gamma=number(greeks.get("gamma")),
                                  delta=number(greeks.get("delta")))
        except (KeyError, TypeError, ValueError, InvalidValue):
            self.stats["quarantined"] += 1
            return None

    # -- the refresher thread (a Service) -------------------------------------------------------
    def start(self, bot: LiveBot) -> None:
        self._bot = bot
        self._thread = threading.Thread(target=self._run, name="gnosis-alpaca-options",
                                        daemon=True)
        self._thread.start()

    def prepare(self) -> None:
        """A first snapshot of every symbol before the bot runs (errors are remembered)."""
        for symbol in self.symbols:
            self._refresh_quietly(symbol)

    def _refresh_quietly(self, symbol: str) -> None:
        try:
            self.refresh(symbol)
        except Exception as exc:  # noqa: BLE001 - the agent abstains with this reason
            self.stats["errors"] += 1
            message = rest.message_of(exc)
            with self._lock:
                first = symbol not in self._error
                self._error[symbol] = message
            if first and self._bot is not None:
                self._bot.notify(f"options chain of {symbol}: {message}; Hedge abstains "
                                 "until it is back")

    def _run(self) -> None:
        while not self._stop.wait(self.refresh_s):
            for symbol in self.symbols:
                if self._stop.is_set():
                    return
                self._refresh_quietly(symbol)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def status(self) -> dict[str, Any]:
        with self._lock:
            latest = {s: new_york(c[-1].ts_event) for s, c in self._chains.items() if c}
            return {"stats": dict(self.stats), "as_of": latest, "errors": dict(self._error)}


def _expiry(text: str) -> Any:
    """An expiration date at 16:00 New York (the close of its last trading day)."""
    from datetime import date, datetime, time

    day = date.fromisoformat(text[:10])
    return datetime.combine(day, time(16, 0), tzinfo=NEW_YORK)
