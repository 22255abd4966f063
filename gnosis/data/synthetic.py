"""The embedded default market: seeded, regime-switching 1-minute bars with known phases.

Each symbol walks through a planned sequence of phases (trending up/down, ranging, volatile,
calm, accumulation, distribution), each lasting 60-240 bars and carrying its own drift,
volatility, mean reversion, close location inside the bar and volume behaviour. The plan is
drawn once at construction (a few thousand segments, not one label per bar), so
``phase_at(symbol, ts)`` answers the ground truth for any bar in O(log n) and memory stays flat
however long the market runs. Bars are generated a session at a time with numpy and yielded in
time-then-symbol order; sessions come from the XNYS calendar (``exchange_calendars``), so early
closes, weekends and holidays are what the exchange says they are.

Run ``python -m gnosis.data.synthetic`` for a short description of a market.
"""

from __future__ import annotations

import bisect
import warnings
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from gnosis.model.intervals import bars_per_year
from gnosis.model.regime import (
    ACCUMULATION,
    CALM,
    DISTRIBUTION,
    RANGING,
    REGIMES,
    TRENDING_DOWN,
    TRENDING_UP,
    VOLATILE,
)
from gnosis.model.types import Bar, InvalidValue

NANOS_PER_MINUTE = 60 * 10**9
MINUTES_PER_YEAR = bars_per_year(60)  # the market is made of 1-minute bars
PHASES: tuple[str, ...] = REGIMES


@dataclass(frozen=True, slots=True)
class PhaseProfile:
    """How a phase moves: per-bar drift in units of its sigma, annualized volatility, mean
    reversion toward the segment's anchor, where closes sit in the bar (+1 at the high), and
    volume relative to normal (overall, and extra on bars moving with/against the phase)."""

    drift_sigmas: float
    annual_vol: float
    reversion: float
    close_location: float
    volume: float
    up_volume: float = 1.0
    down_volume: float = 1.0
    shakeout_prob: float = 0.0  # springs (accumulation) or upthrusts (distribution) per segment


PROFILES: dict[str, PhaseProfile] = {
    TRENDING_UP: PhaseProfile(0.30, 0.15, 0.0, 0.15, 1.3, up_volume=1.3),
    TRENDING_DOWN: PhaseProfile(-0.30, 0.20, 0.0, -0.15, 1.4, down_volume=1.3),
    RANGING: PhaseProfile(0.0, 0.13, 0.08, 0.0, 0.9),
    VOLATILE: PhaseProfile(0.0, 0.48, 0.02, 0.0, 2.2),
    CALM: PhaseProfile(0.0, 0.045, 0.05, 0.0, 0.5),
    ACCUMULATION: PhaseProfile(0.05, 0.10, 0.06, 0.35, 1.0, up_volume=1.6, down_volume=0.7,
                               shakeout_prob=0.6),
    DISTRIBUTION: PhaseProfile(-0.05, 0.11, 0.06, -0.35, 1.0, up_volume=0.7, down_volume=1.6,
                               shakeout_prob=0.6),
}

# Which phase tends to follow which (Wyckoff's cycle plus noise): weights, not probabilities.
TRANSITIONS: dict[str, dict[str, float]] = {
    ACCUMULATION: {TRENDING_UP: 5, RANGING: 1, CALM: 1, VOLATILE: 0.5},
    TRENDING_UP: {DISTRIBUTION: 3, RANGING: 2, VOLATILE: 1, CALM: 1},
    DISTRIBUTION: {TRENDING_DOWN: 5, RANGING: 1, VOLATILE: 1},
    TRENDING_DOWN: {ACCUMULATION: 3, VOLATILE: 2, RANGING: 1, CALM: 0.5},
    RANGING: {TRENDING_UP: 2, TRENDING_DOWN: 2, ACCUMULATION: 1, DISTRIBUTION: 1, CALM: 1,
              VOLATILE: 1},
    VOLATILE: {CALM: 2, RANGING: 2, TRENDING_DOWN: 1, TRENDING_UP: 1},
    CALM: {TRENDING_UP: 1.5, TRENDING_DOWN: 1, RANGING: 1.5, ACCUMULATION: 1, DISTRIBUTION: 1,
           VOLATILE: 1},
}

MIN_SEGMENT_BARS = 60
MAX_SEGMENT_BARS = 240
BASE_PRICES = {"SPY": 470.0, "QQQ": 400.0, "IWM": 195.0, "DIA": 375.0, "AAPL": 185.0}
BASE_VOLUME = {"SPY": 180_000.0, "QQQ": 120_000.0, "IWM": 70_000.0}


def _symbol_seed(seed: int, symbol: str) -> int:
    return (seed * 1_000_003 + zlib.crc32(symbol.encode())) & 0x7FFF_FFFF


@lru_cache(maxsize=8)
def _sessions(start: str, days: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(open_ns, minutes) of the first ``days`` XNYS sessions on or after ``start``."""
    import exchange_calendars as xcals
    import pandas as pd

    if days < 1:
        raise InvalidValue(f"days must be >= 1, got {days}")
    try:
        first_day = pd.Timestamp(start)
    except ValueError as exc:
        raise InvalidValue(f"cannot start the synthetic market on {start!r}: {exc}") from exc
    # A calendar spanning the request (the library's default covers only about a year ahead);
    # 252 sessions a year, so days * 1.5 calendar days plus slack always holds enough of them.
    end_day = first_day + pd.Timedelta(days=int(days * 1.5) + 30)
    with warnings.catch_warnings():  # exchange_calendars trips pandas deprecations on import
        warnings.simplefilter("ignore")
        try:
            calendar = xcals.get_calendar(
                "XNYS", start=first_day.normalize() - pd.Timedelta(days=7), end=end_day.normalize()
            )
            first = calendar.date_to_session(first_day.normalize(), direction="next")
        except Exception as exc:  # a date outside what the library knows, or not a date at all
            raise InvalidValue(f"cannot start the synthetic market on {start!r}: {exc}") from exc
    first_index = calendar.sessions.get_loc(first)
    sessions = calendar.sessions[first_index:first_index + days]
    if len(sessions) < days:
        raise InvalidValue(
            f"the XNYS calendar has only {len(sessions)} sessions from {start}; ask for fewer days"
        )
    opens = calendar.opens.loc[sessions]
    closes = calendar.closes.loc[sessions]
    open_ns = tuple(int(t.value) for t in opens)
    minutes = tuple(int((c.value - o.value) // NANOS_PER_MINUTE) for o, c in zip(opens, closes))
    return open_ns, minutes


class _PhasePlan:
    """One symbol's phases as segments over its bar index: [start, next start) → phase."""

    __slots__ = ("starts", "phases")

    def __init__(self, rng: np.random.Generator, total_bars: int) -> None:
        starts: list[int] = []
        phases: list[str] = []
        phase = PHASES[int(rng.integers(len(PHASES)))]
        at = 0
        while at < total_bars:
            starts.append(at)
            phases.append(phase)
            at += int(rng.integers(MIN_SEGMENT_BARS, MAX_SEGMENT_BARS + 1))
            weights = TRANSITIONS[phase]
            names = list(weights)
            p = np.array([weights[n] for n in names], dtype=float)
            phase = names[int(rng.choice(len(names), p=p / p.sum()))]
        self.starts = starts
        self.phases = phases

    def at(self, index: int) -> str:
        return self.phases[bisect.bisect_right(self.starts, index) - 1]

    def segments(self, lo: int, hi: int) -> Iterator[tuple[int, int, int]]:
        """(segment number, start, end) of the segments overlapping bar indices [lo, hi)."""
        k = bisect.bisect_right(self.starts, lo) - 1
        while k < len(self.starts) and self.starts[k] < hi:
            end = self.starts[k + 1] if k + 1 < len(self.starts) else hi
            yield k, max(lo, self.starts[k]), min(hi, end)
            k += 1


class _SymbolPath:
    """A symbol's generator state carried from one session to the next."""

    def __init__(self, symbol: str, seed: int, total_bars: int) -> None:
        self.symbol = symbol
        self.rng = np.random.default_rng(_symbol_seed(seed, symbol))
        self.plan = _PhasePlan(self.rng, total_bars)
        base = BASE_PRICES.get(symbol, 50.0 + zlib.crc32(symbol.encode()) % 400)
        self.log_price = float(np.log(base))
        self.base_volume = BASE_VOLUME.get(symbol, 40_000.0 + zlib.crc32(symbol.encode()) % 60_000)
        self.anchor_segment = -1
        self.anchor = self.log_price
        self.deviation = 0.0  # log distance from the anchor, for mean-reverting phases


def _ar1(shocks: np.ndarray, phi: float, start: float) -> np.ndarray:
    """x_t = phi * x_{t-1} + shock_t from x_{-1} = start (a session is a few hundred steps)."""
    out = shocks.tolist()
    x = start
    for i, e in enumerate(out):
        x = phi * x + e
        out[i] = x
    return np.asarray(out)


def _intraday_shape(minutes: int) -> tuple[np.ndarray, np.ndarray]:
    """U-shaped volume and a milder U in volatility across the session."""
    x = np.linspace(0.0, 1.0, minutes)
    volume = 0.65 + 1.6 * np.exp(-x / 0.06) + 0.9 * np.exp(-(1.0 - x) / 0.05)
    vol = 0.9 + 0.35 * np.exp(-x / 0.05) + 0.15 * np.exp(-(1.0 - x) / 0.05)
    return volume, vol


@dataclass(slots=True)
class _SessionWalk:
    """Per-minute log closes of one session and the phase parameters that shaped them."""

    log_close: np.ndarray
    sigma: np.ndarray
    close_location: np.ndarray
    volume: np.ndarray
    up_volume: np.ndarray
    down_volume: np.ndarray
    phases: list[str]

    @classmethod
    def empty(cls, minutes: int) -> _SessionWalk:
        return cls(np.empty(minutes), np.empty(minutes), np.empty(minutes), np.empty(minutes),
                   np.empty(minutes), np.empty(minutes), [])


def _overnight_gap(path: _SymbolPath) -> float:
    """Move the price (and the segment's anchor) by the night's gap; the level it opens from."""
    gap = float(path.rng.normal(0.0, 0.004))
    path.log_price += gap
    path.anchor += gap
    return path.log_price


def _walk_session(path: _SymbolPath, offset: int, minutes: int, vol_shape: np.ndarray,
                  start_level: float) -> _SessionWalk:
    """The session's segments, one vectorized block each, in plan order."""
    walk = _SessionWalk.empty(minutes)
    level = start_level
    for k, lo, hi in path.plan.segments(offset, offset + minutes):
        phase = path.plan.phases[k]
        prof = PROFILES[phase]
        a, b = lo - offset, hi - offset
        s = prof.annual_vol / np.sqrt(MINUTES_PER_YEAR) * vol_shape[a:b]
        shocks = path.rng.standard_normal(b - a) * s
        if k != path.anchor_segment:  # a new segment anchors where the price stands
            path.anchor_segment = k
            path.anchor = level
            path.deviation = 0.0
        if prof.reversion > 0.0:
            _reverting_segment(path, prof, lo == path.plan.starts[k], s, shocks, walk, a, b)
        else:
            _trending_segment(path, prof, level, s, shocks, walk, a, b)
        level = float(walk.log_close[b - 1])
        walk.sigma[a:b] = s
        walk.close_location[a:b] = prof.close_location
        walk.up_volume[a:b] = prof.up_volume
        walk.down_volume[a:b] = prof.down_volume
        walk.phases.extend([phase] * (b - a))
    path.log_price = level
    return walk


def _reverting_segment(path: _SymbolPath, prof: PhaseProfile, starts_here: bool,
                       s: np.ndarray, shocks: np.ndarray, walk: _SessionWalk, a: int,
                       b: int) -> None:
    """x_t = (1 - kappa) x_{t-1} + drift + shock around a slowly drifting anchor, with the
    occasional spring (below the range) or upthrust (above) recovered within bars."""
    n = b - a
    drift = prof.drift_sigmas * s
    anchor_path = path.anchor + np.cumsum(drift)
    dev = _ar1(shocks, 1.0 - prof.reversion, path.deviation)
    rng = path.rng
    if starts_here and n > 40 and rng.random() < prof.shakeout_prob:
        at = int(rng.integers(n // 3, n - 10))
        depth = 4.0 * float(s.mean()) * (1.0 if prof.drift_sigmas < 0 else -1.0)
        dev[at:at + 3] += depth * np.array([0.6, 1.0, 0.4])
        sigma_boost = np.ones(n)
        sigma_boost[at:at + 3] = 2.5
        walk.volume[a:b] = prof.volume * sigma_boost
    else:
        walk.volume[a:b] = prof.volume
    walk.log_close[a:b] = anchor_path + dev
    path.anchor = float(anchor_path[-1])
    path.deviation = float(dev[-1])


def _trending_segment(path: _SymbolPath, prof: PhaseProfile, level: float, s: np.ndarray,
                      shocks: np.ndarray, walk: _SessionWalk, a: int, b: int) -> None:
    """A drifting random walk from the current level."""
    walk.log_close[a:b] = level + np.cumsum(prof.drift_sigmas * s + shocks)
    walk.volume[a:b] = prof.volume
    path.anchor = float(walk.log_close[b - 1])
    path.deviation = 0.0


def _candles(rng: np.random.Generator, walk: _SessionWalk,
             start_level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(open, high, low, close) in cents: each bar opens a tick or so from the last close, and
    its wicks follow the phase's close location (a close near the high: short upper wick)."""
    minutes = len(walk.log_close)
    sigma, close_loc = walk.sigma, walk.close_location
    close = np.round(np.exp(walk.log_close), 2)
    prev = np.empty(minutes)
    prev[0] = np.round(np.exp(start_level), 2)
    prev[1:] = close[:-1]
    open_ = np.round(prev * (1.0 + rng.normal(0.0, 0.15, minutes) * sigma), 2)
    body_hi = np.maximum(open_, close)
    body_lo = np.minimum(open_, close)
    wick = np.abs(rng.normal(0.0, 0.6, (2, minutes))) * sigma * close
    upper = wick[0] * (1.0 - 0.8 * np.clip(close_loc, 0.0, 1.0))
    lower = wick[1] * (1.0 + 0.8 * np.clip(close_loc, -1.0, 0.0))
    high = np.round(body_hi + upper + 0.005, 2)
    low = np.round(np.maximum(body_lo - lower - 0.005, 0.01), 2)
    return open_, np.maximum(high, body_hi), np.minimum(low, body_lo), close


def _volumes(path: _SymbolPath, walk: _SessionWalk, start_level: float,
             volume_shape: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(volume, trade count): the intraday U, the phase's level, more on bars that move with
    the phase and on large moves, lognormal noise."""
    rng = path.rng
    minutes = len(walk.log_close)
    ret = np.diff(walk.log_close, prepend=start_level)
    direction = np.where(ret > 0, walk.up_volume, walk.down_volume)
    shock = 1.0 + 0.8 * np.abs(ret) / np.maximum(walk.sigma, 1e-12)
    noise = rng.lognormal(0.0, 0.35, minutes)
    volume = np.round(path.base_volume * volume_shape * walk.volume * direction * shock * noise)
    volume = np.maximum(volume, 100.0)
    trades = np.maximum((volume / rng.uniform(90.0, 160.0, minutes)).astype(np.int64), 1)
    return volume, trades


class SyntheticMarket:
    """Deterministic regime-switching minute bars for ``symbols`` over ``days`` XNYS sessions."""

    def __init__(
        self,
        symbols: Sequence[str] = ("SPY",),
        seed: int = 7,
        start: str = "2024-01-02",
        days: int = 20,
    ) -> None:
        if not symbols:
            raise InvalidValue("the synthetic market needs at least one symbol")
        if len(set(symbols)) != len(symbols):
            raise InvalidValue(f"duplicate symbols in {list(symbols)}")
        self.symbols: tuple[str, ...] = tuple(symbols)
        self.seed = seed
        self.start = start
        self.days = days
        self._opens, self._minutes = _sessions(start, days)
        self._offsets = tuple(np.concatenate([[0], np.cumsum(self._minutes)[:-1]]).tolist())
        self.bars_per_symbol = int(sum(self._minutes))
        self.total_bars = self.bars_per_symbol * len(self.symbols)
        # The plans only: cheap, and the ground truth for phase_at without any bar generated.
        self._plans = {s: _SymbolPath(s, seed, self.bars_per_symbol).plan for s in self.symbols}

    def bars_in_sessions(self, sessions: int) -> int:
        """Bars (all symbols) in the first ``sessions`` sessions: the warm-up history."""
        return int(sum(self._minutes[:sessions])) * len(self.symbols)

    # -- ground truth -------------------------------------------------------------------------
    def bar_index(self, ts_event: int) -> int:
        """Index of the session minute starting at ``ts_event`` (per symbol, from 0)."""
        day = bisect.bisect_right(self._opens, ts_event) - 1
        if day < 0:
            raise KeyError(f"{ts_event} is before the first session")
        minute = (ts_event - self._opens[day]) // NANOS_PER_MINUTE
        if minute >= self._minutes[day]:
            raise KeyError(f"{ts_event} is outside the regular session")
        return int(self._offsets[day] + minute)

    def phase_at(self, symbol: str, ts_event: int) -> str:
        """The phase the generator was in when it produced ``symbol``'s bar at ``ts_event``."""
        return self._plans[symbol].at(self.bar_index(ts_event))

    def phase_segments(self, symbol: str) -> list[tuple[int, str]]:
        """(first bar index, phase) of every planned segment of ``symbol``."""
        plan = self._plans[symbol]
        return list(zip(plan.starts, plan.phases))

    # -- bars ---------------------------------------------------------------------------------
    def bars(self) -> Iterator[Bar]:
        for bar, _phase in self.iter_with_phase():
            yield bar

    def iter_with_phase(self) -> Iterator[tuple[Bar, str]]:
        paths = [_SymbolPath(s, self.seed, self.bars_per_symbol) for s in self.symbols]
        new_bar = Bar.__new__
        for day, (open_ns, minutes) in enumerate(zip(self._opens, self._minutes)):
            offset = self._offsets[day]
            columns = [self._session(path, offset, minutes) for path in paths]
            ts = [open_ns + i * NANOS_PER_MINUTE for i in range(minutes)]
            ts_close = [t + NANOS_PER_MINUTE for t in ts]
            for i in range(minutes):
                for symbol, (o, h, lo, c, v, n, vw, phase) in zip(self.symbols, columns):
                    yield (
                        new_bar(Bar, symbol, ts[i], o[i], h[i], lo[i], c[i], v[i], n[i], vw[i],
                                ts_close[i], 60),
                        phase[i],
                    )

    def _session(self, path: _SymbolPath, offset: int, minutes: int) -> tuple[list, ...]:
        """One session of one symbol as Python lists (o, h, l, c, v, n, vwap, phase): an
        overnight gap, the phases' walk, candles around it, then volume."""
        volume_shape, vol_shape = _intraday_shape(minutes)
        start_level = _overnight_gap(path)
        walk = _walk_session(path, offset, minutes, vol_shape, start_level)
        open_, high, low, close = _candles(path.rng, walk, start_level)
        volume, trades = _volumes(path, walk, start_level, volume_shape)
        vwap = np.round(np.clip((high + low + 2.0 * close) / 4.0, low, high), 4)
        return (open_.tolist(), high.tolist(), low.tolist(), close.tolist(), volume.tolist(),
                trades.tolist(), vwap.tolist(), walk.phases)

    def describe(self) -> str:
        counts: dict[str, int] = dict.fromkeys(PHASES, 0)
        for plan in self._plans.values():
            bounds = [*plan.starts[1:], self.bars_per_symbol]
            for start, end, phase in zip(plan.starts, bounds, plan.phases):
                counts[phase] += min(end, self.bars_per_symbol) - start
        total = sum(counts.values())
        lines = [f"{len(self.symbols)} symbol(s) x {self.days} sessions from {self.start}, "
                 f"{self.total_bars:,} bars, seed {self.seed}"]
        lines += [f"  {p:<14} {n:>8,} bars {n / total:6.1%}" for p, n in counts.items()]
        return "\n".join(lines)


if __name__ == "__main__":
    print(SyntheticMarket(symbols=("SPY", "QQQ"), days=20).describe())
