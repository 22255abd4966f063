"""The dashboard's published state: one bounded store that every message is folded into.

The publisher's pump (off the core thread) folds each message in as it makes it; the web layer
reads copies (REST, the WebSocket ``init``, the ``dashboard.json`` file). A lock guards the few
microseconds of each fold or copy. Items
stored here are never mutated once stored: a copy of the containers is a consistent view.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

# Message types, as the WebSocket sends them.
POSITIONS = "positions"
TRADE = "trade"
AGENT_VOTES = "agent_votes"
REGIME = "regime"
BAR = "bar"
PORTFOLIO_STATS = "portfolio_stats"
MEMORY_RECALL = "memory_recall"
TRADING_STATE = "trading_state"
NOTICE = "notice"
MESSAGE_TYPES = (POSITIONS, TRADE, AGENT_VOTES, REGIME, BAR, PORTFOLIO_STATS, MEMORY_RECALL,
                 TRADING_STATE, NOTICE)

# Bounds: what one browser needs, whatever the length of the run.
BARS_PER_SYMBOL = 1_000
TRADES_KEPT = 1_000
NOTICES_KEPT = 200
RECALLS_KEPT = 50
EQUITY_POINTS = 2_000


class EquityCurve:
    """Bounded equity curve: when full, every other point goes and the stride doubles, so the
    curve always spans the whole run at a resolution that halves as it grows."""

    def __init__(self, capacity: int = EQUITY_POINTS) -> None:
        self.capacity = max(4, capacity)
        self.points: list[tuple[int, float]] = []  # (epoch seconds, equity), times increasing
        self.stride = 1
        self._since_kept = 0

    def add(self, time_s: int, equity: float) -> None:
        points = self.points
        if points and time_s <= points[-1][0]:
            if time_s == points[-1][0]:
                points[-1] = (time_s, equity)  # several symbols share one minute
            return
        self._since_kept += 1
        if points and self._since_kept < self.stride:
            points[-1] = (time_s, equity)  # the newest point always shows the current equity
            return
        self._since_kept = 0
        points.append((time_s, equity))
        if len(points) >= self.capacity:
            self.points = points[1::2] if len(points) % 2 == 0 else points[0::2]
            self.stride *= 2

    def as_list(self) -> list[dict[str, float]]:
        return [{"time": t, "value": v} for t, v in self.points]

    def load(self, points: list[dict[str, Any]]) -> None:
        self.points = [(int(p["time"]), float(p["value"])) for p in points][-self.capacity:]


class _SymbolView:
    __slots__ = ("bars", "regime", "votes")

    def __init__(self) -> None:
        self.bars: deque[dict[str, Any]] = deque(maxlen=BARS_PER_SYMBOL)
        self.regime: dict[str, Any] | None = None
        self.votes: dict[str, Any] | None = None


class DashboardState:
    """Thread-safe store of everything the dashboard shows; ``seq`` counts folded messages."""

    def __init__(self, info: dict[str, Any] | None = None) -> None:
        self._lock = threading.Lock()
        self.seq = 0
        self.info: dict[str, Any] = dict(info or {})
        self._symbols: dict[str, _SymbolView] = {}
        self._positions: list[dict[str, Any]] = []
        self._portfolio: dict[str, Any] | None = None
        self._trading_state: dict[str, Any] | None = None
        self._trades: deque[dict[str, Any]] = deque(maxlen=TRADES_KEPT)
        self._trades_total = 0
        self._notices: deque[dict[str, Any]] = deque(maxlen=NOTICES_KEPT)
        self._recalls: deque[dict[str, Any]] = deque(maxlen=RECALLS_KEPT)
        self._memory: dict[str, Any] = {"available": False,
                                        "status": "episodic memory is not enabled in this run"}
        self._equity = EquityCurve()
        for symbol in self.info.get("symbols", ()):
            self._symbols[symbol] = _SymbolView()

    # -- writing (the publisher) -------------------------------------------------------------
    def fold(self, kind: str, data: dict[str, Any]) -> int:
        """Fold one message in; return its sequence number."""
        with self._lock:
            self.seq += 1
            if kind == BAR:
                self._symbol(data["symbol"]).bars.append(data)
            elif kind == AGENT_VOTES:
                self._symbol(data["symbol"]).votes = data
            elif kind == REGIME:
                self._symbol(data["symbol"]).regime = data
            elif kind == POSITIONS:
                self._positions = data["positions"]
            elif kind == PORTFOLIO_STATS:
                self._portfolio = data
                if data.get("time") is not None:
                    self._equity.add(int(data["time"]), float(data["equity"]))
            elif kind == TRADE:
                self._trades.append(data)
                self._trades_total += 1
            elif kind == TRADING_STATE:
                self._trading_state = data
            elif kind == NOTICE:
                data["id"] = self.seq  # lets a standalone server tell new items from old
                self._notices.append(data)
            elif kind == MEMORY_RECALL:
                data["id"] = self.seq
                self._recalls.append(data)
                self._memory = {"available": True, "status": "recalling"}
            else:
                raise ValueError(f"unknown dashboard message type {kind!r}")
            return self.seq

    def seed_journal(self, trades_total: int, points: list[tuple[int, float]]) -> None:
        """After the journal's latest trades were folded in: the run's true trade count, and
        the equity curve from the journal's (ts_event ns, equity) points."""
        with self._lock:
            self._trades_total = max(self._trades_total, trades_total)
            for ts_ns, equity in points:
                self._equity.add(ts_ns // 1_000_000_000, equity)

    def set_memory_status(self, available: bool, status: str) -> None:
        with self._lock:
            self._memory = {"available": available, "status": status}

    def set_info(self, **info: Any) -> None:
        with self._lock:
            self.info.update(info)

    def _symbol(self, symbol: str) -> _SymbolView:
        view = self._symbols.get(symbol)
        if view is None:
            view = self._symbols[symbol] = _SymbolView()
        return view

    # -- reading (the web layer) -------------------------------------------------------------
    def snapshot(self, *, bars: int = 0) -> dict[str, Any]:
        """A consistent copy of the whole state; ``bars`` > 0 includes that many bars per
        symbol (the file for a standalone server includes them all; the WebSocket's ``init``
        leaves them to ``/api/bars``)."""
        with self._lock:
            symbols = {
                name: {
                    "regime": view.regime,
                    "votes": view.votes,
                    "last_bar": view.bars[-1] if view.bars else None,
                    "bars": list(view.bars)[-bars:] if bars > 0 else [],
                }
                for name, view in self._symbols.items()
            }
            return {
                "seq": self.seq,
                "info": dict(self.info),
                "symbols": symbols,
                "positions": list(self._positions),
                "portfolio": self._portfolio,
                "trading_state": self._trading_state,
                "trades": list(self._trades)[-20:][::-1],
                "trades_total": self._trades_total,
                "notices": list(self._notices)[-50:][::-1],
                "memory": {**self._memory, "recalls": list(self._recalls)[::-1]},
                "equity_curve": self._equity.as_list(),
            }

    def full_snapshot(self) -> dict[str, Any]:
        """Everything, bars and all retained trades included (the state file)."""
        snapshot = self.snapshot(bars=BARS_PER_SYMBOL)
        with self._lock:
            snapshot["all_trades"] = list(self._trades)
        return snapshot

    def bars(self, symbol: str, limit: int) -> list[dict[str, Any]] | None:
        with self._lock:
            view = self._symbols.get(symbol)
            return None if view is None else list(view.bars)[-limit:]

    def trades(self, symbol: str | None, offset: int, limit: int) -> tuple[int, list[dict]]:
        """Retained trades, newest first, optionally of one symbol: (matching count, page)."""
        with self._lock:
            trades = list(self._trades)
        matching = [t for t in reversed(trades) if symbol is None or t["symbol"] == symbol]
        return len(matching), matching[offset:offset + limit]

    def symbols(self) -> list[str]:
        with self._lock:
            return list(self._symbols)

    # -- replacing (the standalone server, from a state file) ----------------------------------
    def load(self, snapshot: dict[str, Any]) -> None:
        """Replace everything with a full snapshot read from a state file."""
        with self._lock:
            self.seq = int(snapshot.get("seq", 0))
            self.info = dict(snapshot.get("info") or {})
            self._symbols = {}
            for name, view_data in (snapshot.get("symbols") or {}).items():
                view = self._symbols[name] = _SymbolView()
                view.bars.extend(view_data.get("bars") or [])
                view.regime = view_data.get("regime")
                view.votes = view_data.get("votes")
            self._positions = list(snapshot.get("positions") or [])
            self._portfolio = snapshot.get("portfolio")
            self._trading_state = snapshot.get("trading_state")
            self._trades.clear()
            self._trades.extend(snapshot.get("all_trades") or
                                list(reversed(snapshot.get("trades") or [])))
            self._trades_total = int(snapshot.get("trades_total", len(self._trades)))
            self._notices.clear()
            self._notices.extend(reversed(snapshot.get("notices") or []))
            memory = snapshot.get("memory") or {}
            self._recalls.clear()
            self._recalls.extend(reversed(memory.get("recalls") or []))
            self._memory = {"available": bool(memory.get("available")),
                            "status": str(memory.get("status", ""))}
            self._equity.load(snapshot.get("equity_curve") or [])


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The messages that turn full snapshot ``before`` into ``after`` (a standalone server
    pushes these when the state file changes)."""
    out: list[tuple[str, dict[str, Any]]] = []
    old_symbols = before.get("symbols") or {}
    for name, view in (after.get("symbols") or {}).items():
        old = old_symbols.get(name) or {}
        last_old = (old.get("last_bar") or {}).get("time", -1)
        for bar in view.get("bars") or []:
            if bar["time"] > last_old:
                out.append((BAR, bar))
        if view.get("regime") and view.get("regime") != old.get("regime"):
            out.append((REGIME, view["regime"]))
        if view.get("votes") and view.get("votes") != old.get("votes"):
            out.append((AGENT_VOTES, view["votes"]))
    if after.get("positions") != before.get("positions"):
        out.append((POSITIONS, {"positions": after.get("positions") or []}))
    if after.get("portfolio") and after.get("portfolio") != before.get("portfolio"):
        out.append((PORTFOLIO_STATS, after["portfolio"]))
    if after.get("trading_state") and after.get("trading_state") != before.get("trading_state"):
        out.append((TRADING_STATE, after["trading_state"]))
    new_trades = int(after.get("trades_total", 0)) - int(before.get("trades_total", 0))
    if new_trades > 0:
        retained = after.get("all_trades") or list(reversed(after.get("trades") or []))
        out.extend((TRADE, trade) for trade in retained[-new_trades:])
    out.extend((NOTICE, n) for n in _newer(before.get("notices"), after.get("notices")))
    out.extend((MEMORY_RECALL, r) for r in _newer((before.get("memory") or {}).get("recalls"),
                                                  (after.get("memory") or {}).get("recalls")))
    return out


def _newer(before: list[dict] | None, after: list[dict] | None) -> list[dict]:
    """Items of ``after`` (newest first) not in ``before``, oldest first."""
    seen = {_key(item) for item in before or []}
    return [item for item in reversed(after or []) if _key(item) not in seen]


def _key(item: dict[str, Any]) -> tuple[Any, ...]:
    return (item.get("id"), item.get("ts"))
