"""The regime detector: volatility, trend, range and a 5-state HMM, one bar at a time.

Per bar (O(1), plain floats):
1. Volatility: exponentially weighted realized volatility of log returns, annualized for the
   bar interval (x sqrt(``bars_per_year(interval_s)``): sqrt(252 * 390) for 1-minute bars,
   sqrt(252) for daily ones), and classed calm / normal / volatile against configurable
   thresholds. Intraday, a return across a session gap is the bar's own body (the overnight
   move is not this bar's); from one session up, every return is close to close, nights,
   weekends and DST shifts included, as a daily return is.
2. Trend: momentum over a window and the regression slope of log price over the same window,
   each divided by the volatility expected over that window, so the strength means the same
   thing at any interval; squashed into [-1, 1].
3. Range: ATR and Bollinger band position/width, plus where volume goes inside the range
   (up-bar volume share and close location), which separates accumulation from distribution.
4. HMM: ``FilteredHMM`` over smoothed return, volume pressure and a volatility ratio, fitted
   walk-forward on past features only and read through its forward (filtered) probabilities;
   when it first fits, how often it refits, on how much history and how many bars after the
   decision a fit takes effect follow ``hmm_schedule`` of the bar interval (``hmm_stagger``,
   the symbol's place in the run, staggers the first fit, see ``hmm_offset``).

Units of the parameters: the warm-up (50), the volatility spans (30, 120 and 780 bars), the
trend and range windows and the indicator periods are counts of bars, as indicator periods are
everywhere (their meaning in time scales with the interval); the volatility thresholds are
annual figures and mean the same at any interval; the HMM's schedule is documented on
``HmmSchedule``.

The primary regime is decided in that order of precedence (volatile, then trend, then the
Wyckoff ranges, then calm, else ranging); its confidence blends how far the deciding measure
is past its threshold with the HMM's agreement.

``python gnosis/regime/detector.py`` runs it over the synthetic market and scores it against the
generator's true phases.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from typing import Any

from gnosis.data.indicators import ATR, Bollinger, RingBuffer, RollingSlope, RollingSum
from gnosis.model.intervals import bars_per_year, is_intraday
from gnosis.model.regime import (
    ACCUMULATION,
    CALM,
    DISTRIBUTION,
    HMM_LABELS,
    RANGING,
    REGIMES,
    TRENDING_DOWN,
    TRENDING_UP,
    VOLATILE,
    WARMING_UP,
    RegimeState,
)
from gnosis.model.types import Bar
from gnosis.regime.hmm import FilteredHMM, hmm_offset, hmm_schedule

WARMUP_BARS = 50  # bars before the detector names a regime (DESIGN §3)

# Which coarse family each state belongs to when scoring against ground truth.
FAMILY = {
    TRENDING_UP: "up",
    TRENDING_DOWN: "down",
    VOLATILE: "volatile",
    RANGING: "range",
    CALM: "range",
    ACCUMULATION: "range",
    DISTRIBUTION: "range",
}


def formed_after(interval_s: int) -> int:
    """Bars after which a detector of ``interval_s`` bars has left its warm-up and filters with
    its first HMM fit, whatever the symbol's stagger: what a replay folds in before trading by
    default."""
    schedule = hmm_schedule(interval_s)
    return max(WARMUP_BARS, schedule.first_fit + schedule.stagger - 1 + schedule.delay)


def _ewm_alpha(span: int) -> float:
    return 2.0 / (span + 1.0)


class RegimeDetector:
    """Classify one symbol's regime after each bar; deterministic for a given seed."""

    def __init__(
        self,
        interval_s: int = 60,
        warmup: int = WARMUP_BARS,
        seed: int = 0,
        calm_vol: float = 0.08,
        volatile_vol: float = 0.30,
        trend_threshold: float = 0.5,
        trend_window: int = 45,
        range_window: int = 60,
        hmm_window: int | None = None,
        hmm_first_fit: int | None = None,
        hmm_refit_every: int | None = None,
        hmm: bool = True,
        hmm_stagger: int = 0,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        if not 0 < calm_vol < volatile_vol:
            raise ValueError("need 0 < calm_vol < volatile_vol")
        self.interval_s = interval_s
        self.interval_ns = interval_s * 1_000_000_000
        self.warmup = warmup
        self.calm_vol = calm_vol
        self.volatile_vol = volatile_vol
        self.trend_threshold = trend_threshold
        self.annualize = math.sqrt(bars_per_year(interval_s))
        # intraday, only a bar that follows the previous one directly continues its close
        self._contiguous_ns = self.interval_ns if is_intraday(interval_s) else None
        self.trend_window = trend_window
        # volatility: a fast estimate for the class, a slower one to normalize trends
        self._a_fast = _ewm_alpha(30)
        self._a_slow = _ewm_alpha(120)
        self._a_feat = _ewm_alpha(10)
        self._var_fast = 0.0
        self._var_slow = 0.0
        self._var_long = 0.0
        self._a_long = _ewm_alpha(780)
        self._log_closes = RingBuffer(trend_window + 1)
        self._slope = RollingSlope(trend_window)
        self._atr = ATR(14)
        self._bands = Bollinger(20, 2.0)
        self._up_volume = RollingSum(range_window)
        self._volume = RollingSum(range_window)
        self._clv = RollingSum(range_window)
        self._range_window = range_window
        self._ret_feature = 0.0
        self._pressure_feature = 0.0
        self._avg_volume = 0.0
        self._prev_close = 0.0
        self._prev_ts = -1
        self.bars_seen = 0
        schedule = hmm_schedule(interval_s)
        first_fit = hmm_first_fit or schedule.first_fit + hmm_offset(hmm_stagger, interval_s)
        self.hmm: FilteredHMM | None = (
            FilteredHMM(seed=seed, window=hmm_window or schedule.window, first_fit=first_fit,
                        refit_every=hmm_refit_every or schedule.refit_every,
                        stride=schedule.stride, delay=schedule.delay) if hmm else None
        )
        self.last: RegimeState | None = None

    def update(self, bar: Bar) -> RegimeState:
        """Fold bar t in and classify the regime after it (O(1))."""
        self.bars_seen += 1
        n = self.bars_seen
        r = self._bar_return(bar)
        sigma_slow, volatility = self._update_volatility(r, bar.volume, n)
        trend = self._trend(bar.close, sigma_slow)
        clv, balance, clv_mean, position, width_atr = self._range(bar, n)
        probs = self._hmm_step(r, clv, bar.volume, sigma_slow, n)
        hmm_state = None if probs is None else HMM_LABELS[max(range(len(probs)),
                                                               key=probs.__getitem__)]
        if n <= self.warmup:
            state = RegimeState(WARMING_UP, 0.0, trend, volatility, self._vol_class(volatility),
                                position, hmm_state, probs, f"warming up {n}/{self.warmup}", n)
        else:
            primary, strength, why = self._classify(volatility, trend, balance, clv_mean,
                                                    width_atr)
            confidence = strength
            if probs is not None:
                confidence = 0.65 * strength + 0.35 * _hmm_support(primary, probs)
            state = RegimeState(primary, min(max(confidence, 0.0), 1.0), trend, volatility,
                                self._vol_class(volatility), position, hmm_state, probs, why, n)
        self.last = state
        return state

    def _bar_return(self, bar: Bar) -> float:
        """This bar's log return: from the previous close when the bars are contiguous (always,
        from one session up), else the bar's own body (intraday, a return across a session gap
        is an overnight move, not this bar's)."""
        close = bar.close
        contiguous = self._contiguous_ns
        if self._prev_ts >= 0 and (contiguous is None
                                   or bar.ts_event - self._prev_ts == contiguous):
            r = math.log(close / self._prev_close)
        else:
            r = math.log(close / bar.open)
        self._prev_close = close
        self._prev_ts = bar.ts_event
        return r

    def _update_volatility(self, r: float, volume: float, n: int) -> tuple[float, float]:
        """Fold the return into the fast, slow and long variances; (slow sigma per bar,
        annualized fast volatility)."""
        r2 = r * r
        if n == 1:
            self._var_fast = self._var_slow = self._var_long = max(r2, 1e-10)
            self._avg_volume = volume
        else:
            self._var_fast += self._a_fast * (r2 - self._var_fast)
            self._var_slow += self._a_slow * (r2 - self._var_slow)
            self._var_long += self._a_long * (r2 - self._var_long)
            self._avg_volume += self._a_slow * (volume - self._avg_volume)
        return math.sqrt(self._var_slow), math.sqrt(self._var_fast) * self.annualize

    def _trend(self, close: float, sigma_slow: float) -> float:
        """Momentum and slope of log price, in units of the window's expected move, squashed
        into [-1, 1]."""
        log_close = math.log(close)
        self._log_closes.push(log_close)
        slope = self._slope.update(log_close)
        window = self.trend_window
        scale = sigma_slow * math.sqrt(window) or 1e-12
        if self._log_closes.full:
            momentum = (log_close - self._log_closes[0]) / scale
            slope_z = slope * (window - 1) / scale
            raw = 0.5 * (momentum + slope_z)
        else:
            raw = 0.0
        return math.tanh(raw / 2.0)

    def _range(self, bar: Bar, n: int) -> tuple[float, float, float, float, float]:
        """ATR, bands and where the volume sits: (close location, up-volume share, mean close
        location, band position, band width in ATRs)."""
        close, high, low = bar.close, bar.high, bar.low
        atr = self._atr.update(high, low, close)
        bands = self._bands
        bands.update(close)
        span = high - low
        clv = ((close - low) - (high - close)) / span if span > 0 else 0.0
        up = bar.volume if close > bar.open else (0.5 * bar.volume if close == bar.open else 0.0)
        up_volume = self._up_volume.update(up)
        volume = self._volume.update(bar.volume)
        clv_mean = self._clv.update(clv) / min(n, self._range_window)
        balance = up_volume / volume if volume > 0 else 0.5
        position = min(max(bands.percent_b, 0.0), 1.0) if bands.ready else 0.5
        # band width in ATRs: a contained range keeps the bands within a few ATRs
        width_atr = (bands.upper - bands.lower) / atr if bands.ready and atr > 0 else 8.0
        return clv, balance, clv_mean, position, width_atr

    def _hmm_step(self, r: float, clv: float, volume: float, sigma_slow: float,
                  n: int) -> tuple[float, ...] | None:
        """The HMM's features known at this bar, a refit when one is due, and the filtered
        probabilities (None before the first fit or without an HMM)."""
        hmm = self.hmm
        if hmm is None:
            return None
        z = r / (sigma_slow or 1e-12)
        self._ret_feature += self._a_feat * (max(-6.0, min(6.0, z)) - self._ret_feature)
        rel_volume = volume / self._avg_volume if self._avg_volume > 0 else 1.0
        self._pressure_feature += self._a_feat * (clv * min(rel_volume, 5.0)
                                                  - self._pressure_feature)
        vol_ratio = 0.5 * math.log(max(self._var_fast, 1e-14) / max(self._var_long, 1e-14))
        if n >= hmm.next_tick:
            hmm.tick(n)
        return hmm.observe(self._ret_feature, self._pressure_feature, vol_ratio)

    def _vol_class(self, volatility: float) -> str:
        if volatility > self.volatile_vol:
            return "volatile"
        if volatility < self.calm_vol:
            return "calm"
        return "normal"

    def _classify(self, vol: float, trend: float, balance: float, clv: float,
                  width_atr: float) -> tuple[str, float, str]:
        """(primary, strength in [0, 1], reason) by precedence."""
        if vol > self.volatile_vol:
            return VOLATILE, min(1.0, 0.5 + (vol / self.volatile_vol - 1.0)), \
                f"vol {vol:.0%} > {self.volatile_vol:.0%}"
        threshold = self.trend_threshold
        if abs(trend) > threshold:
            strength = 0.5 + 0.5 * (abs(trend) - threshold) / (1.0 - threshold)
            label = TRENDING_UP if trend > 0 else TRENDING_DOWN
            return label, strength, f"|trend| {abs(trend):.2f} > {threshold}"
        pressure = (balance - 0.5) * 2.0  # -1 all volume on down bars .. +1 all on up bars
        if pressure > 0.2 and clv > 0.1:
            return ACCUMULATION, min(1.0, 0.4 + pressure + clv), \
                f"volume on up bars {balance:.0%}, closes high ({clv:+.2f})"
        if pressure < -0.2 and clv < -0.1:
            return DISTRIBUTION, min(1.0, 0.4 - pressure - clv), \
                f"volume on down bars {1 - balance:.0%}, closes low ({clv:+.2f})"
        if vol < self.calm_vol:
            return CALM, min(1.0, 0.5 + (1.0 - vol / self.calm_vol)), \
                f"vol {vol:.0%} < {self.calm_vol:.0%}"
        contained = min(max((8.0 - width_atr) / 6.0, 0.0), 1.0)
        return RANGING, 0.5 + 0.25 * (1.0 - abs(trend) / threshold) + 0.25 * contained, \
            f"|trend| {abs(trend):.2f} <= {threshold}, bands {width_atr:.1f} ATR wide"

    # -- persistence ------------------------------------------------------------------------
    def hmm_state_dict(self) -> dict[str, Any] | None:
        return None if self.hmm is None else self.hmm.to_state()


def _hmm_support(primary: str, probs: tuple[float, ...]) -> float:
    """How much the HMM's filtered probabilities back the rule-based primary."""
    p = dict(zip(HMM_LABELS, probs))
    if primary in p:
        return p[primary]
    if primary == CALM:
        return p[RANGING] + 0.5 * (p[ACCUMULATION] + p[DISTRIBUTION])
    # volatile: the HMM has no volatile state; neutral support
    return 0.5


def score_against_truth(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Score (detected primary, true phase) pairs, warming-up bars skipped.

    ``accuracy`` compares coarse families: trending_up ("up"), trending_down ("down"),
    volatile ("volatile"), and ranging, calm, accumulation and distribution together ("range":
    the market goes sideways in all four; they differ in volatility and in where volume goes).
    ``exact_accuracy`` compares the seven labels. ``confusion`` is ``{true: {detected: n}}``.
    """
    confusion: dict[str, Counter[str]] = {}
    total = coarse = exact = 0
    for detected, truth in pairs:
        if detected == WARMING_UP:
            continue
        total += 1
        exact += detected == truth
        coarse += FAMILY.get(detected) == FAMILY.get(truth)
        confusion.setdefault(truth, Counter())[detected] += 1
    return {
        "accuracy": round(coarse / total, 4) if total else 0.0,
        "exact_accuracy": round(exact / total, 4) if total else 0.0,
        "bars": total,
        "confusion": {t: dict(sorted(c.items())) for t, c in sorted(confusion.items())},
    }


def format_confusion(confusion: dict[str, dict[str, int]]) -> str:
    """The confusion matrix as a text table, rows = true phase, columns = detected."""
    short = {s: s.replace("trending_", "tr_")[:8] for s in REGIMES}
    lines = ["true \\ detected " + " ".join(f"{short[s]:>8}" for s in REGIMES)]
    for truth in REGIMES:
        row = confusion.get(truth, {})
        lines.append(f"{truth:<16} " + " ".join(f"{row.get(s, 0):>8}" for s in REGIMES))
    return "\n".join(lines)


def _demo() -> None:
    from tqdm import tqdm

    from gnosis.data.synthetic import SyntheticMarket

    market = SyntheticMarket(symbols=("SPY",), seed=7, days=20)
    detector = RegimeDetector(seed=7)
    counts: Counter[str] = Counter()
    pairs = []
    last = None
    for bar, phase in tqdm(market.iter_with_phase(), total=market.total_bars,
                           desc="regime", unit="bar"):
        state = detector.update(bar)
        counts[state.primary] += 1
        pairs.append((state.primary, phase))
        last = state
    score = score_against_truth(pairs)
    print(f"\nSPY, 20 synthetic sessions ({market.total_bars:,} bars), seed 7")
    for regime, count in counts.most_common():
        print(f"  {regime:<14} {count:>6,} bars  {count / market.total_bars:6.1%}")
    print(f"\nagreement with the generator's phases after warm-up ({score['bars']:,} bars):")
    print(f"  trend / range / volatility family: {score['accuracy']:.1%}")
    print(f"  exact state:                       {score['exact_accuracy']:.1%}\n")
    print(format_confusion(score["confusion"]))
    if last is not None:
        print(f"\nlast bar: {last.primary} ({last.confidence:.2f}): {last.explanation}")


if __name__ == "__main__":
    _demo()
