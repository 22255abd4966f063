"""One compiled step per bar: the regime detector and the five agents' arithmetic, fused.

The reference path (``RegimeDetector`` and the agents in ``gnosis.agents``) is the readable
specification; this module does the same floating-point operations in the same order on one
symbol's state, kept in two flat arrays (``f``: floats, ``i``: integers) so the per-bar call
costs one compiled function instead of a few hundred Python method calls. Nothing here is
approximated: a parity test holds every decision, vote, confidence and regime of the two paths
equal bit for bit (tests/unit/test_fast_parity.py), and ``benchmarks/fast_parity.py`` checks a
million bars.

How the operations are kept identical:
- ``fastmath`` is off (no reassociation, no fused multiply-add); every sum is written in the
  reference's order, left to right; ``math.log``/``exp``/``tanh``/``sqrt`` call the same C
  library as CPython's ``math`` module.
- Python's ``min(a, b)``/``max(a, b)`` keep the first argument unless the second is strictly
  smaller/larger (``_pmin``/``_pmax``), which matters for signed zeros.
- Ring buffers, rolling sums, Wilder's ATR, the anchored rolling mean/std and slope, the
  Wyckoff monotonic deques and the Liquidity volume profile are the reference's algorithms on
  array slices (the profile is a small open-addressing table keyed by price bin).
- What is not arithmetic stays in Python (``gnosis.strategies.fast``): side inputs (options
  chains, headlines), the HMM fit and its schedule, and every string.

Offsets into the state arrays are module constants (compile-time constants to numba). Every
helper is inlined into ``step`` (``inline="always"``, numba's own inlining of the same
operations): called as separate compiled functions, the small ones (a profile lookup returns a
tuple) cost more than their work, 1.3 -> 0.6 µs a bar; the first compile takes ~20 s longer.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_NAN = math.nan


class _Layout:
    """Hands out consecutive offsets of one state array."""

    def __init__(self) -> None:
        self.size = 0

    def take(self, count: int = 1) -> int:
        at = self.size
        self.size += count
        return at


_F = _Layout()  # floats
_I = _Layout()  # integers

# -- sizes (the reference's parameters; the fast brain checks the agents it mirrors) ---------
TREND_WINDOW = 45
RANGE_WINDOW = 60
ATR_PERIOD = 14
BANDS_PERIOD = 20
BANDS_K = 2.0
HEDGE_MOMENTUM = 15
HEDGE_MIN_TILT = 0.1
LIQ_WINDOW = 60
LIQ_PROFILE_BARS = 390
LIQ_SCAN_BINS = 30
LIQ_ZONE_ATR = 1.0
PROFILE_SLOTS = 1024  # a power of two above the at most 390 live bins (one per bar kept)
SENT_MOMENTUM = 10
SENT_BALANCE = 20
SENT_THRESHOLD = 0.3
WY_WINDOW = 60
WY_MEMORY = 15
WY_HEAVY = 1.3
WY_SLOPE = 20
DEQUE_CAP = 64  # >= WY_WINDOW: a monotonic deque holds at most a window of entries
MARKOV_MIN_PROB = 0.55
MARKOV_ACC_WEIGHT = 0.5
N_STATES = 5

# -- detector ------------------------------------------------------------------------------
P_CALM, P_VOLATILE, P_TREND, P_ANNUALIZE = (_F.take() for _ in range(4))
A_FAST, A_SLOW, A_FEAT, A_LONG = (_F.take() for _ in range(4))
VAR_FAST, VAR_SLOW, VAR_LONG, AVG_VOLUME = (_F.take() for _ in range(4))
RET_FEATURE, PRESSURE_FEATURE, PREV_CLOSE = (_F.take() for _ in range(3))
I_BARS, I_PREV_TS, I_WARMUP, I_CONTIGUOUS_NS = (_I.take() for _ in range(4))
LOG_CLOSES = _F.take(TREND_WINDOW + 1)
I_LOG_CLOSES = _I.take(2)  # ring: start, size
SLOPE_F = _F.take(4 + TREND_WINDOW)  # sum_y, sum_xy, anchor, value, ring
SLOPE_I = _I.take(3)  # ring start, size, count
ATR_F = _F.take(3)  # previous close, seed sum, value
ATR_I = _I.take(1)  # count
BANDS_F = _F.take(6 + BANDS_PERIOD)  # anchor, sum, sumsq, upper, lower, percent_b, ring
BANDS_I = _I.take(4)  # ring start, size, count, since anchor
UPVOL_F = _F.take(1 + RANGE_WINDOW)  # rolling sums: value, ring
UPVOL_I = _I.take(3)  # ring start, size, count
VOL_F = _F.take(1 + RANGE_WINDOW)
VOL_I = _I.take(3)
CLV_F = _F.take(1 + RANGE_WINDOW)
CLV_I = _I.take(3)
# HMM model (label order) and filter: means, variances, log norms, per-bar transitions,
# starting prior, filtered vector
HMM_MEANS = _F.take(15)
HMM_VARS = _F.take(15)
HMM_NORMS = _F.take(5)
HMM_TRANS = _F.take(25)
HMM_START = _F.take(5)
HMM_ALPHA = _F.take(5)
I_HMM_ON, I_HMM_FITTED, I_HMM_ALPHA, I_HMM_STORED, I_HMM_WINDOW = (_I.take() for _ in range(5))

# -- hedge -----------------------------------------------------------------------------------
H_ATR_F = _F.take(3)
H_ATR_I = _I.take(1)
H_CLOSES = _F.take(HEDGE_MOMENTUM + 1)
H_CLOSES_I = _I.take(2)
H_VAR, H_PREV, H_NET, H_GROSS, H_WALL = (_F.take() for _ in range(5))
I_H_HAVE_CHAIN = _I.take()

# -- liquidity -------------------------------------------------------------------------------
L_ATR_F = _F.take(3)
L_ATR_I = _I.take(1)
L_AMIHUD_F = _F.take(1 + LIQ_WINDOW)
L_AMIHUD_I = _I.take(3)
L_SX_F = _F.take(1 + LIQ_WINDOW)
L_SX_I = _I.take(3)
L_SY_F = _F.take(1 + LIQ_WINDOW)
L_SY_I = _I.take(3)
L_SXX_F = _F.take(1 + LIQ_WINDOW)
L_SXX_I = _I.take(3)
L_SXY_F = _F.take(1 + LIQ_WINDOW)
L_SXY_I = _I.take(3)
(L_AMIHUD_MEAN, L_AMIHUD_VAR, L_LAMBDA_MEAN, L_LAMBDA, L_AVG_VOLUME, L_BIN_WIDTH,
 L_BIN_FRACTION, L_PROFILE_TOTAL, L_PREV, L_STRESS, L_REL_VOLUME) = (_F.take() for _ in range(11))
L_HISTORY_KEYS = _F.take(LIQ_PROFILE_BARS + 1)  # bin keys are small integers: exact as floats
L_HISTORY_VOLUMES = _F.take(LIQ_PROFILE_BARS + 1)
L_HISTORY_I = _I.take(2)  # both rings move together: start, size
L_PROFILE_VALUES = _F.take(PROFILE_SLOTS)
L_PROFILE_KEYS = _I.take(PROFILE_SLOTS)
I_L_BARS = _I.take()
_EMPTY = -(2**62)  # an unused profile slot

# -- sentiment -------------------------------------------------------------------------------
S_CLOSES = _F.take(SENT_MOMENTUM + 1)
S_CLOSES_I = _I.take(2)
S_UP_F = _F.take(1 + SENT_BALANCE)
S_UP_I = _I.take(3)
S_DOWN_F = _F.take(1 + SENT_BALANCE)
S_DOWN_I = _I.take(3)
S_VAR_FAST, S_VAR_SLOW, S_PREV, S_NEWS = (_F.take() for _ in range(4))
I_S_BARS = _I.take()

# -- wyckoff ---------------------------------------------------------------------------------
W_HIGHS = _F.take(2 * DEQUE_CAP)  # (index, high) pairs
W_LOWS = _F.take(2 * DEQUE_CAP)
W_HIGHS_I = _I.take(2)  # head, count
W_LOWS_I = _I.take(2)
W_UP_F = _F.take(1 + WY_WINDOW)
W_UP_I = _I.take(3)
W_VOL_F = _F.take(1 + WY_WINDOW)
W_VOL_I = _I.take(3)
W_CLV_F = _F.take(1 + WY_WINDOW)
W_CLV_I = _I.take(3)
W_SLOPE_F = _F.take(4 + WY_SLOPE)
W_SLOPE_I = _I.take(3)
W_AVG_VOLUME, W_RANGE_LOW, W_RANGE_HIGH, W_STRENGTH = (_F.take() for _ in range(4))
I_W_INDEX, I_W_EVENT, I_W_EVENT_SIGNAL, I_W_EVENT_AGE, I_W_PHASE, I_W_SIGNAL = (
    _I.take() for _ in range(6))

# -- outputs of the step ----------------------------------------------------------------------
OUT = _F.take(0)
(O_PRIMARY, O_CONFIDENCE, O_TREND, O_VOLATILITY, O_VOL_CLASS, O_POSITION, O_HMM_STATE,
 O_HAS_PROBS) = (_F.take() for _ in range(8))
O_PROBS = _F.take(5)
O_BALANCE, O_CLV_MEAN, O_WIDTH_ATR = (_F.take() for _ in range(3))
VOTE_FIELDS = 8  # code, signal, confidence, then up to five numbers for the reasoning
O_VOTES = _F.take(5 * VOTE_FIELDS)
O_WYCKOFF_ON, O_MARKOV_ON = (_F.take() for _ in range(2))
(O_SIGNAL, O_DECISION_CONFIDENCE, O_CONSENSUS, O_TOP_COUNT, O_CAST, O_NEEDED,
 O_TOP_SIGNAL) = (_F.take() for _ in range(7))
O_LIQUIDITY_ERROR, O_LIQUIDITY_KEY = (_F.take() for _ in range(2))
O_MARKS = _F.take()  # each agent's vote mark, base 5 (see ``MARK_*`` and ``_marks``)
# the bar counts an abstaining liquidity or wyckoff vote names
O_LIQUIDITY_BARS, O_WYCKOFF_INDEX = (_F.take() for _ in range(2))
OUT_END = _F.take(0)
# a vote's mark: its signal + 1, abstained, or off (the regime switched the agent off)
MARK_ABSTAIN, MARK_OFF = 3, 4

FLOATS = _F.size
INTS = _I.size

# regime codes (the fast brain maps them to the vocabulary's names)
WARMING, VOLATILE, TRENDING_UP, TRENDING_DOWN, ACCUMULATION, DISTRIBUTION, CALM, RANGING = range(8)
# vote codes, per agent: which branch of the reference's vote produced it
ABSTAIN = 0
H_BALANCED, H_ATR_NOT_READY, H_PINNED, H_REVERT, H_MOMENTUM_NOT_READY, H_NO_MOMENTUM, H_CHASE = (
    range(1, 8))
L_SUPPORT, L_RESISTANCE, L_BETWEEN = range(1, 4)
S_NEUTRAL, S_DIRECTIONAL = range(1, 3)
W_VOTE = 1
M_RANGING, M_BULLISH, M_BEARISH, M_UNDECIDED = range(1, 5)
# Wyckoff events and phases
EV_NONE, EV_SPRING, EV_UPTHRUST, EV_STRENGTH, EV_WEAKNESS = range(5)
(PH_NO_RANGE, PH_MARKUP_AFTER, PH_ACCUMULATION_AFTER, PH_MARKDOWN_AFTER,
 PH_DISTRIBUTION_AFTER, PH_ACCUMULATION, PH_DISTRIBUTION, PH_MARKUP_INSIDE, PH_MARKDOWN_INSIDE,
 PH_RANGE) = range(10)
# consensus outcomes
C_NONE, C_TIE, C_SHORT, C_AGREED = range(4)


def new_state(interval_ns: int, contiguous_ns: int, warmup: int, calm_vol: float,
              volatile_vol: float, trend_threshold: float, annualize: float,
              alphas: tuple[float, float, float, float], hmm_on: bool, hmm_window: int,
              bin_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Fresh (floats, integers) for one symbol, with the detector's parameters."""
    f = np.zeros(FLOATS)
    i = np.zeros(INTS, dtype=np.int64)
    f[P_CALM], f[P_VOLATILE], f[P_TREND], f[P_ANNUALIZE] = (
        calm_vol, volatile_vol, trend_threshold, annualize)
    f[A_FAST], f[A_SLOW], f[A_FEAT], f[A_LONG] = alphas
    i[I_PREV_TS] = -1
    i[I_WARMUP] = warmup
    i[I_CONTIGUOUS_NS] = contiguous_ns
    f[SLOPE_F + 2] = f[SLOPE_F + 3] = _NAN
    f[W_SLOPE_F + 2] = f[W_SLOPE_F + 3] = _NAN
    for atr in (ATR_F, H_ATR_F, L_ATR_F):
        f[atr] = f[atr + 2] = _NAN
    f[BANDS_F] = _NAN
    f[BANDS_F + 3] = f[BANDS_F + 4] = f[BANDS_F + 5] = _NAN
    i[I_HMM_ON] = int(hmm_on)
    i[I_HMM_WINDOW] = hmm_window
    f[L_BIN_FRACTION] = bin_fraction
    i[L_PROFILE_KEYS:L_PROFILE_KEYS + PROFILE_SLOTS] = _EMPTY
    i[I_W_EVENT_AGE] = 10**9
    i[I_W_INDEX] = -1
    return f, i


# -- Python's min/max on two floats -----------------------------------------------------------
@njit(cache=True, inline="always")
def _pmin(a: float, b: float) -> float:
    return b if b < a else a


@njit(cache=True, inline="always")
def _pmax(a: float, b: float) -> float:
    return b if b > a else a


# -- ring buffers (RingBuffer) --------------------------------------------------------------------
@njit(cache=True, inline="always")
def _push(f, i, data, cap, at, value):
    """Append; return (evicted?, evicted value). ``at``: the ring's (start, size) in ``i``."""
    start = i[at]
    size = i[at + 1]
    if size < cap:
        f[data + (start + size) % cap] = value
        i[at + 1] = size + 1
        return False, 0.0
    evicted = f[data + start]
    f[data + start] = value
    i[at] = (start + 1) % cap
    return True, evicted


@njit(cache=True, inline="always")
def _at(f, i, data, cap, at, index):
    """Index 0 is the oldest value, -1 the newest."""
    if index < 0:
        index += i[at + 1]
    return f[data + (i[at] + index) % cap]


# -- indicators ----------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _rolling_sum(f, i, base, ibase, period, x):
    has, evicted = _push(f, i, base + 1, period, ibase, x)
    f[base] += x - (evicted if has else 0.0)
    i[ibase + 2] += 1
    return f[base]


@njit(cache=True, inline="always")
def _atr(f, i, base, ibase, high, low, close):
    pc = f[base]
    if pc == pc:
        tr = high - low
        second = abs(high - pc)
        if second > tr:
            tr = second
        third = abs(low - pc)
        if third > tr:
            tr = third
    else:
        tr = high - low
    f[base] = close
    count = i[ibase] + 1
    i[ibase] = count
    if count < ATR_PERIOD:
        f[base + 1] += tr
    elif count == ATR_PERIOD:
        f[base + 2] = (f[base + 1] + tr) / ATR_PERIOD
    else:
        f[base + 2] = (f[base + 2] * (ATR_PERIOD - 1) + tr) / ATR_PERIOD
    return f[base + 2]


@njit(cache=True, inline="always")
def _slope(f, i, base, ibase, period, y):
    """RollingSlope: sum_y, sum_xy, anchor, value, then the ring."""
    if i[ibase + 2] == 0:
        f[base + 2] = y
    y -= f[base + 2]
    n = i[ibase + 1]
    has, evicted = _push(f, i, base + 4, period, ibase, y)
    if not has:
        f[base + 1] += n * y
        f[base] += y
    else:
        f[base + 1] += -(f[base] - evicted) + (period - 1) * y
        f[base] += y - evicted
    i[ibase + 2] += 1
    m = i[ibase + 1]
    if m >= 2:
        sum_x = m * (m - 1) / 2.0
        sum_xx = (m - 1) * m * (2 * m - 1) / 6.0
        denominator = m * sum_xx - sum_x * sum_x
        f[base + 3] = (m * f[base + 1] - sum_x * f[base]) / denominator
    return f[base + 3]


@njit(cache=True, inline="always")
def _bands(f, i, base, ibase, close):
    """Bollinger(20, 2) over RollingMeanStd: anchor, sum, sumsq, upper, lower, %b, ring."""
    ring = base + 6
    if i[ibase + 2] == 0:
        f[base] = close
    has, evicted = _push(f, i, ring, BANDS_PERIOD, ibase, close)
    d = close - f[base]
    f[base + 1] += d
    f[base + 2] += d * d
    if has:
        e = evicted - f[base]
        f[base + 1] -= e
        f[base + 2] -= e * e
    i[ibase + 2] += 1
    i[ibase + 3] += 1
    size = i[ibase + 1]
    if i[ibase + 3] >= 50 * BANDS_PERIOD:  # re-anchor: exact sums around the current mean
        total = 0.0
        for k in range(size):
            total += _at(f, i, ring, BANDS_PERIOD, ibase, k)
        anchor = total / size
        f[base] = anchor
        total = 0.0
        for k in range(size):
            total += _at(f, i, ring, BANDS_PERIOD, ibase, k) - anchor
        f[base + 1] = total
        total = 0.0
        for k in range(size):
            v = _at(f, i, ring, BANDS_PERIOD, ibase, k)
            total += (v - anchor) * (v - anchor)
        f[base + 2] = total
        i[ibase + 3] = 0
    mid = f[base] + f[base + 1] / size
    m = f[base + 1] / size
    variance = f[base + 2] / size - m * m
    if variance < 0.0:
        variance = 0.0
    band = BANDS_K * math.sqrt(variance)
    upper = mid + band
    lower = mid - band
    f[base + 3] = upper
    f[base + 4] = lower
    span = upper - lower
    f[base + 5] = (close - lower) / span if span > 0 else 0.5


# -- the regime detector -------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _bar_return(f, i, open_, close, ts):
    """From the previous close when the bars are contiguous, else the bar's own body."""
    contiguous = i[I_CONTIGUOUS_NS]
    if i[I_PREV_TS] >= 0 and (contiguous < 0 or ts - i[I_PREV_TS] == contiguous):
        r = math.log(close / f[PREV_CLOSE])
    else:
        r = math.log(close / open_)
    f[PREV_CLOSE] = close
    i[I_PREV_TS] = ts
    return r


@njit(cache=True, inline="always")
def _volatility(f, r, volume, n):
    """Fold the return into the fast, slow and long variances; (slow sigma per bar,
    annualized fast volatility)."""
    r2 = r * r
    if n == 1:
        first = 1e-10 if r2 < 1e-10 else r2
        f[VAR_FAST] = f[VAR_SLOW] = f[VAR_LONG] = first
        f[AVG_VOLUME] = volume
    else:
        f[VAR_FAST] += f[A_FAST] * (r2 - f[VAR_FAST])
        f[VAR_SLOW] += f[A_SLOW] * (r2 - f[VAR_SLOW])
        f[VAR_LONG] += f[A_LONG] * (r2 - f[VAR_LONG])
        f[AVG_VOLUME] += f[A_SLOW] * (volume - f[AVG_VOLUME])
    return math.sqrt(f[VAR_SLOW]), math.sqrt(f[VAR_FAST]) * f[P_ANNUALIZE]


@njit(cache=True, inline="always")
def _trend(f, i, close, sigma_slow):
    log_close = math.log(close)
    _push(f, i, LOG_CLOSES, TREND_WINDOW + 1, I_LOG_CLOSES, log_close)
    slope = _slope(f, i, SLOPE_F, SLOPE_I, TREND_WINDOW, log_close)
    scale = sigma_slow * math.sqrt(TREND_WINDOW)
    if scale == 0.0:
        scale = 1e-12
    if i[I_LOG_CLOSES + 1] == TREND_WINDOW + 1:
        momentum = (log_close - _at(f, i, LOG_CLOSES, TREND_WINDOW + 1, I_LOG_CLOSES, 0)) / scale
        slope_z = slope * (TREND_WINDOW - 1) / scale
        raw = 0.5 * (momentum + slope_z)
    else:
        raw = 0.0
    return math.tanh(raw / 2.0)


@njit(cache=True, inline="always")
def _range(f, i, open_, high, low, close, volume, n):
    """(close location, up-volume share, mean close location, band position, band width in
    ATRs)."""
    atr = _atr(f, i, ATR_F, ATR_I, high, low, close)
    _bands(f, i, BANDS_F, BANDS_I, close)
    span = high - low
    clv = ((close - low) - (high - close)) / span if span > 0 else 0.0
    if close > open_:
        up = volume
    elif close == open_:
        up = 0.5 * volume
    else:
        up = 0.0
    up_volume = _rolling_sum(f, i, UPVOL_F, UPVOL_I, RANGE_WINDOW, up)
    total_volume = _rolling_sum(f, i, VOL_F, VOL_I, RANGE_WINDOW, volume)
    clv_mean = _rolling_sum(f, i, CLV_F, CLV_I, RANGE_WINDOW, clv) / min(n, RANGE_WINDOW)
    balance = up_volume / total_volume if total_volume > 0 else 0.5
    bands_ready = i[BANDS_I + 2] >= BANDS_PERIOD
    position = _pmin(_pmax(f[BANDS_F + 5], 0.0), 1.0) if bands_ready else 0.5
    width_atr = ((f[BANDS_F + 3] - f[BANDS_F + 4]) / atr if bands_ready and atr > 0 else 8.0)
    return clv, balance, clv_mean, position, width_atr


@njit(cache=True, inline="always")
def _detector(f, i, buf, open_, high, low, close, volume, ts, out):
    n = i[I_BARS] + 1
    i[I_BARS] = n
    r = _bar_return(f, i, open_, close, ts)
    sigma_slow, volatility = _volatility(f, r, volume, n)
    trend = _trend(f, i, close, sigma_slow)
    clv, balance, clv_mean, position, width_atr = _range(f, i, open_, high, low, close, volume,
                                                         n)
    has_probs = False
    if i[I_HMM_ON]:
        has_probs = _hmm_step(f, i, buf, r, clv, volume, sigma_slow, out)
    out[O_HAS_PROBS] = 1.0 if has_probs else 0.0
    hmm_state = -1
    if has_probs:
        hmm_state = 0
        for k in range(1, N_STATES):
            if out[O_PROBS + k] > out[O_PROBS + hmm_state]:
                hmm_state = k
    out[O_HMM_STATE] = hmm_state
    if n <= i[I_WARMUP]:
        primary, confidence = WARMING, 0.0
    else:
        primary, strength = _classify(f, volatility, trend, balance, clv_mean, width_atr)
        confidence = strength
        if has_probs:
            confidence = 0.65 * strength + 0.35 * _hmm_support(primary, out)
        confidence = _pmin(_pmax(confidence, 0.0), 1.0)
    out[O_PRIMARY] = primary
    out[O_CONFIDENCE] = confidence
    out[O_TREND] = trend
    out[O_VOLATILITY] = volatility
    vol_class = 1
    if volatility > f[P_VOLATILE]:
        vol_class = 2
    elif volatility < f[P_CALM]:
        vol_class = 0
    out[O_VOL_CLASS] = vol_class
    out[O_POSITION] = position
    out[O_BALANCE] = balance
    out[O_CLV_MEAN] = clv_mean
    out[O_WIDTH_ATR] = width_atr


@njit(cache=True, inline="always")
def _hmm_step(f, i, buf, r, clv, volume, sigma_slow, out):
    """The HMM's features known at this bar into the fit window, then one filter step."""
    sigma = sigma_slow if sigma_slow != 0.0 else 1e-12
    z = r / sigma
    f[RET_FEATURE] += f[A_FEAT] * (_pmax(-6.0, _pmin(6.0, z)) - f[RET_FEATURE])
    rel_volume = volume / f[AVG_VOLUME] if f[AVG_VOLUME] > 0 else 1.0
    f[PRESSURE_FEATURE] += f[A_FEAT] * (clv * _pmin(rel_volume, 5.0) - f[PRESSURE_FEATURE])
    vol_ratio = 0.5 * math.log(_pmax(f[VAR_FAST], 1e-14) / _pmax(f[VAR_LONG], 1e-14))
    f0, f1, f2 = f[RET_FEATURE], f[PRESSURE_FEATURE], vol_ratio
    row = i[I_HMM_STORED] % i[I_HMM_WINDOW]
    buf[row, 0] = f0
    buf[row, 1] = f1
    buf[row, 2] = f2
    i[I_HMM_STORED] += 1
    if not i[I_HMM_FITTED]:
        return False
    _hmm_filter(f, i, f0, f1, f2, out)
    return True


@njit(cache=True, inline="always")
def _hmm_filter(f, i, f0, f1, f2, out):
    """alpha_t ∝ (alpha_{t-1} · A) ⊙ b(x_t), as FilteredHMM._filter."""
    logs = np.empty(N_STATES)
    for k in range(N_STATES):
        d0 = f0 - f[HMM_MEANS + 3 * k]
        d1 = f1 - f[HMM_MEANS + 3 * k + 1]
        d2 = f2 - f[HMM_MEANS + 3 * k + 2]
        logs[k] = f[HMM_NORMS + k] - 0.5 * (d0 * d0 / f[HMM_VARS + 3 * k]
                                            + d1 * d1 / f[HMM_VARS + 3 * k + 1]
                                            + d2 * d2 / f[HMM_VARS + 3 * k + 2])
    top = logs[0]
    for k in range(1, N_STATES):
        if logs[k] > top:
            top = logs[k]
    prior = np.empty(N_STATES)
    for j in range(N_STATES):
        if i[I_HMM_ALPHA]:
            acc = f[HMM_ALPHA] * f[HMM_TRANS + j]
            for k in range(1, N_STATES):
                acc = acc + f[HMM_ALPHA + k] * f[HMM_TRANS + 5 * k + j]
            prior[j] = acc
        else:
            prior[j] = f[HMM_START + j]
    post = np.empty(N_STATES)
    for j in range(N_STATES):
        post[j] = prior[j] * math.exp(logs[j] - top)
    total = post[0] + post[1] + post[2] + post[3] + post[4]
    if not total > 0.0:  # far outside every state: fall back on the prior
        total = 0.0
        for j in range(N_STATES):
            post[j] = prior[j]
            total += prior[j]
    inv = 1.0 / total
    for j in range(N_STATES):
        value = post[j] * inv
        f[HMM_ALPHA + j] = value
        out[O_PROBS + j] = value
    i[I_HMM_ALPHA] = 1


@njit(cache=True, inline="always")
def _classify(f, vol, trend, balance, clv, width_atr):
    volatile = f[P_VOLATILE]
    if vol > volatile:
        return VOLATILE, _pmin(1.0, 0.5 + (vol / volatile - 1.0))
    threshold = f[P_TREND]
    if abs(trend) > threshold:
        strength = 0.5 + 0.5 * (abs(trend) - threshold) / (1.0 - threshold)
        return (TRENDING_UP if trend > 0 else TRENDING_DOWN), strength
    pressure = (balance - 0.5) * 2.0
    if pressure > 0.2 and clv > 0.1:
        return ACCUMULATION, _pmin(1.0, 0.4 + pressure + clv)
    if pressure < -0.2 and clv < -0.1:
        return DISTRIBUTION, _pmin(1.0, 0.4 - pressure - clv)
    calm = f[P_CALM]
    if vol < calm:
        return CALM, _pmin(1.0, 0.5 + (1.0 - vol / calm))
    contained = _pmin(_pmax((8.0 - width_atr) / 6.0, 0.0), 1.0)
    return RANGING, 0.5 + 0.25 * (1.0 - abs(trend) / threshold) + 0.25 * contained


@njit(cache=True, inline="always")
def _hmm_support(primary, out):
    """How much the filtered probabilities (HMM_LABELS order) back the primary."""
    if primary == TRENDING_UP:
        return out[O_PROBS]
    if primary == TRENDING_DOWN:
        return out[O_PROBS + 1]
    if primary == RANGING:
        return out[O_PROBS + 2]
    if primary == ACCUMULATION:
        return out[O_PROBS + 3]
    if primary == DISTRIBUTION:
        return out[O_PROBS + 4]
    if primary == CALM:
        return out[O_PROBS + 2] + 0.5 * (out[O_PROBS + 3] + out[O_PROBS + 4])
    return 0.5


# -- the agents ------------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _hedge(f, i, high, low, close, out):
    atr_value = _atr(f, i, H_ATR_F, H_ATR_I, high, low, close)
    if f[H_PREV] > 0:
        r = math.log(close / f[H_PREV])
        if f[H_VAR] != 0.0:
            f[H_VAR] += 0.05 * (r * r - f[H_VAR])
        else:
            f[H_VAR] += r * r
    f[H_PREV] = close
    _push(f, i, H_CLOSES, HEDGE_MOMENTUM + 1, H_CLOSES_I, close)
    v = O_VOTES
    if not i[I_H_HAVE_CHAIN]:
        out[v], out[v + 1], out[v + 2] = ABSTAIN, 0.0, 0.0
        return
    tilt = f[H_NET] / f[H_GROSS]
    atr = atr_value if i[H_ATR_I] >= ATR_PERIOD else 0.0
    out[v + 3] = tilt
    if abs(tilt) < HEDGE_MIN_TILT:
        out[v], out[v + 1], out[v + 2] = H_BALANCED, 0.0, 0.3
        return
    if tilt > 0:
        if atr <= 0:
            out[v], out[v + 1], out[v + 2] = H_ATR_NOT_READY, 0.0, 0.2
            return
        distance = (close - f[H_WALL]) / atr
        out[v + 4] = distance
        if abs(distance) < 0.75:
            out[v], out[v + 1], out[v + 2] = H_PINNED, 0.0, 0.4
            return
        out[v], out[v + 1] = H_REVERT, (-1.0 if distance > 0 else 1.0)
        out[v + 2] = _pmin(1.0, (0.3 + 0.1 * abs(distance)) * (0.5 + tilt))
        return
    if i[H_CLOSES_I + 1] < HEDGE_MOMENTUM + 1 or f[H_VAR] <= 0:
        out[v], out[v + 1], out[v + 2] = H_MOMENTUM_NOT_READY, 0.0, 0.2
        return
    first = _at(f, i, H_CLOSES, HEDGE_MOMENTUM + 1, H_CLOSES_I, 0)
    move = math.log(close / first) / (math.sqrt(f[H_VAR] * HEDGE_MOMENTUM))
    out[v + 4] = move
    if abs(move) < 0.75:
        out[v], out[v + 1], out[v + 2] = H_NO_MOMENTUM, 0.0, 0.3
        return
    out[v], out[v + 1] = H_CHASE, (1.0 if move > 0 else -1.0)
    out[v + 2] = _pmin(1.0, (0.25 + 0.15 * abs(move)) * (0.5 - tilt))


@njit(cache=True, inline="always")
def _profile_slot(i, key):
    """The slot of ``key`` in the profile table, or of the empty slot where it goes (-1 when
    the table is full, which cannot happen: at most LIQ_PROFILE_BARS + 1 bins are live)."""
    mask = PROFILE_SLOTS - 1
    slot = key & mask
    for _ in range(PROFILE_SLOTS):
        held = i[L_PROFILE_KEYS + slot]
        if held in (key, _EMPTY):
            return slot
        slot = (slot + 1) & mask
    return -1


@njit(cache=True, inline="always")
def _profile_get(f, i, key):
    """(present?, volume) of one price bin."""
    slot = _profile_slot(i, key)
    if slot < 0 or i[L_PROFILE_KEYS + slot] != key:
        return False, 0.0
    return True, f[L_PROFILE_VALUES + slot]


@njit(cache=True, inline="always")
def _profile_delete(f, i, slot):
    """Empty a slot and re-seat the entries that probed past it (linear probing)."""
    mask = PROFILE_SLOTS - 1
    i[L_PROFILE_KEYS + slot] = _EMPTY
    f[L_PROFILE_VALUES + slot] = 0.0
    nxt = (slot + 1) & mask
    while i[L_PROFILE_KEYS + nxt] != _EMPTY:
        key = i[L_PROFILE_KEYS + nxt]
        value = f[L_PROFILE_VALUES + nxt]
        i[L_PROFILE_KEYS + nxt] = _EMPTY
        f[L_PROFILE_VALUES + nxt] = 0.0
        seat = _profile_slot(i, key)
        i[L_PROFILE_KEYS + seat] = key
        f[L_PROFILE_VALUES + seat] = value
        nxt = (nxt + 1) & mask


@njit(cache=True, inline="always")
def _liquidity_update(f, i, open_, high, low, close, volume, vwap, out):
    bars = i[I_L_BARS] + 1
    i[I_L_BARS] = bars
    _atr(f, i, L_ATR_F, L_ATR_I, high, low, close)
    r = math.log(close / f[L_PREV]) if f[L_PREV] > 0 else 0.0
    f[L_PREV] = close
    if bars == 1:
        f[L_AVG_VOLUME] = volume
    else:
        f[L_AVG_VOLUME] = f[L_AVG_VOLUME] + 0.02 * (volume - f[L_AVG_VOLUME])
    avg = f[L_AVG_VOLUME]
    f[L_REL_VOLUME] = volume / avg if avg > 0 else 1.0
    dollar = close * volume
    amihud = _rolling_sum(f, i, L_AMIHUD_F, L_AMIHUD_I, LIQ_WINDOW,
                          abs(r) / dollar * 1e9 if dollar > 0 else 0.0) / LIQ_WINDOW
    delta = amihud - f[L_AMIHUD_MEAN]
    f[L_AMIHUD_MEAN] += 0.01 * delta
    f[L_AMIHUD_VAR] += 0.01 * (delta * delta - f[L_AMIHUD_VAR])
    sd = math.sqrt(f[L_AMIHUD_VAR])
    f[L_STRESS] = _pmax(0.0, delta / sd) if sd > 0 and bars > LIQ_WINDOW else 0.0
    _kyle(f, i, open_, close, r, bars)
    _profile_fold(f, i, close, volume, vwap, out)


@njit(cache=True, inline="always")
def _kyle(f, i, open_, close, r, bars):
    """Kyle's lambda on signed volume in units of average volume (causal, same bar)."""
    direction = (1.0 if close > open_ else 0.0) - (1.0 if close < open_ else 0.0)
    x = direction * f[L_REL_VOLUME]
    sx = _rolling_sum(f, i, L_SX_F, L_SX_I, LIQ_WINDOW, x)
    sy = _rolling_sum(f, i, L_SY_F, L_SY_I, LIQ_WINDOW, r)
    sxx = _rolling_sum(f, i, L_SXX_F, L_SXX_I, LIQ_WINDOW, x * x)
    sxy = _rolling_sum(f, i, L_SXY_F, L_SXY_I, LIQ_WINDOW, x * r)
    n = min(bars, LIQ_WINDOW)
    mean_x = sx / n
    var_x = sxx / n - mean_x * mean_x
    if var_x > 1e-12:
        f[L_LAMBDA] = (sxy / n - sx / n * sy / n) / var_x
        f[L_LAMBDA_MEAN] += 0.01 * (f[L_LAMBDA] - f[L_LAMBDA_MEAN])


@njit(cache=True, inline="always")
def _profile_fold(f, i, close, volume, vwap, out):
    """Volume by price bin over the last LIQ_PROFILE_BARS bars (bin width fixed at the first
    bar)."""
    if f[L_BIN_WIDTH] == 0.0:
        f[L_BIN_WIDTH] = close * f[L_BIN_FRACTION]
    width = f[L_BIN_WIDTH]
    key = int(vwap / width) if (vwap == vwap and vwap != 0.0) else int(close / width)
    slot = _profile_slot(i, key)
    if slot < 0:
        raise RuntimeError("volume profile table full")
    if i[L_PROFILE_KEYS + slot] != key:
        i[L_PROFILE_KEYS + slot] = key
        f[L_PROFILE_VALUES + slot] = 0.0 + volume
    else:
        f[L_PROFILE_VALUES + slot] = f[L_PROFILE_VALUES + slot] + volume
    f[L_PROFILE_TOTAL] += volume
    cap = LIQ_PROFILE_BARS + 1
    _push(f, i, L_HISTORY_KEYS, cap, L_HISTORY_I, float(key))
    i[L_HISTORY_I + 1] -= 1  # the second ring shares start and size: push it at the same slot
    _push(f, i, L_HISTORY_VOLUMES, cap, L_HISTORY_I, volume)
    if i[L_HISTORY_I + 1] <= LIQ_PROFILE_BARS:
        return
    start = i[L_HISTORY_I]  # pop the oldest entry
    old_key = int(f[L_HISTORY_KEYS + start])
    old_volume = f[L_HISTORY_VOLUMES + start]
    i[L_HISTORY_I] = (start + 1) % cap
    i[L_HISTORY_I + 1] -= 1
    f[L_PROFILE_TOTAL] -= old_volume
    old_slot = _profile_slot(i, old_key)
    if old_slot < 0 or i[L_PROFILE_KEYS + old_slot] != old_key:
        out[O_LIQUIDITY_ERROR] = 1.0  # the reference's KeyError: an agent error
        out[O_LIQUIDITY_KEY] = old_key
        return
    left = f[L_PROFILE_VALUES + old_slot] - old_volume
    if left <= 1e-9:
        _profile_delete(f, i, old_slot)
    else:
        f[L_PROFILE_VALUES + old_slot] = left


@njit(cache=True, inline="always")
def _liquidity_vote(f, i, open_, close, out):
    v = O_VOTES + VOTE_FIELDS
    if i[I_L_BARS] < 30 or i[L_ATR_I] < ATR_PERIOD:
        out[v], out[v + 1], out[v + 2] = ABSTAIN, 0.0, 0.0
        return
    atr = f[L_ATR_F + 2]
    width = f[L_BIN_WIDTH]
    here = int(close / width)
    best_below = best_above = 0.0
    below = above = 0
    found_below = found_above = False
    mask = PROFILE_SLOTS - 1
    for offset in range(1, LIQ_SCAN_BINS + 1):
        # a bin sits in its home slot unless another bin took it (then probe the table).
        # Written out for both sides on purpose: as a helper (even inlined) the scan cost
        # 0.2-0.5 µs a bar more, measured three ways
        key = here - offset
        held = i[L_PROFILE_KEYS + (key & mask)]
        if held == key:
            present, value = True, f[L_PROFILE_VALUES + (key & mask)]
        elif held == _EMPTY:
            present, value = False, 0.0
        else:
            present, value = _profile_get(f, i, key)
        if present and value > best_below:
            best_below, below, found_below = value, key, True
        key = here + offset
        held = i[L_PROFILE_KEYS + (key & mask)]
        if held == key:
            present, value = True, f[L_PROFILE_VALUES + (key & mask)]
        elif held == _EMPTY:
            present, value = False, 0.0
        else:
            present, value = _profile_get(f, i, key)
        if present and value > best_above:
            best_above, above, found_above = value, key, True
    total = f[L_PROFILE_TOTAL] if f[L_PROFILE_TOTAL] > 0 else 1.0
    s_share = best_below / total
    r_share = best_above / total
    support = (below + 0.5) * width
    resistance = (above + 0.5) * width
    impact = f[L_LAMBDA] / f[L_LAMBDA_MEAN] if f[L_LAMBDA_MEAN] > 0 else 1.0
    stress = f[L_STRESS]
    stress_penalty = 1.0 / (1.0 + 0.5 * stress + 0.2 * _pmax(0.0, impact - 2.0))
    out[v + 3], out[v + 4] = stress, impact
    zone = LIQ_ZONE_ATR * atr
    rel = _pmin(f[L_REL_VOLUME], 2.0)
    if found_below and close > open_ and close - support <= zone:
        out[v], out[v + 1] = L_SUPPORT, 1.0
        out[v + 2] = _pmin(1.0, (0.35 + 2.0 * s_share + 0.1 * rel) * stress_penalty * 1.0)
        out[v + 5], out[v + 6] = support, s_share
        return
    if found_above and close < open_ and resistance - close <= zone:
        out[v], out[v + 1] = L_RESISTANCE, -1.0
        out[v + 2] = _pmin(1.0, (0.35 + 2.0 * r_share + 0.1 * rel) * stress_penalty * 1.0)
        out[v + 5], out[v + 6] = resistance, r_share
        return
    out[v], out[v + 1], out[v + 2] = L_BETWEEN, 0.0, 0.3 * stress_penalty


@njit(cache=True, inline="always")
def _sentiment(f, i, open_, close, volume, out):
    i[I_S_BARS] += 1
    if f[S_PREV] > 0:
        r = math.log(close / f[S_PREV])
        r2 = r * r
        if f[S_VAR_SLOW] == 0.0:
            f[S_VAR_FAST] = r2
            f[S_VAR_SLOW] = r2
        else:
            f[S_VAR_FAST] += 0.2 * (r2 - f[S_VAR_FAST])
            f[S_VAR_SLOW] += 0.01 * (r2 - f[S_VAR_SLOW])
    f[S_PREV] = close
    _push(f, i, S_CLOSES, SENT_MOMENTUM + 1, S_CLOSES_I, close)
    _rolling_sum(f, i, S_UP_F, S_UP_I, SENT_BALANCE, volume if close > open_ else 0.0)
    _rolling_sum(f, i, S_DOWN_F, S_DOWN_I, SENT_BALANCE, volume if close < open_ else 0.0)
    v = O_VOTES + 2 * VOTE_FIELDS
    if i[S_CLOSES_I + 1] < SENT_MOMENTUM + 1:
        out[v], out[v + 1], out[v + 2] = ABSTAIN, 0.0, 0.0
        return
    sigma = math.sqrt(f[S_VAR_SLOW] * SENT_MOMENTUM)
    move = math.log(_at(f, i, S_CLOSES, SENT_MOMENTUM + 1, S_CLOSES_I, -1)
                    / _at(f, i, S_CLOSES, SENT_MOMENTUM + 1, S_CLOSES_I, 0))
    momentum = math.tanh(move / sigma / 1.5) if sigma > 0 else 0.0
    up, down = f[S_UP_F], f[S_DOWN_F]
    total = up + down
    balance = (up - down) / total if total > 0 else 0.0
    news = math.tanh(f[S_NEWS])
    shock = math.sqrt(f[S_VAR_FAST] / f[S_VAR_SLOW]) if f[S_VAR_SLOW] > 0 else 1.0
    damp = 1.0 if shock < 1.8 else 1.8 / shock
    score = (0.45 * momentum + 0.35 * balance + 0.4 * news) * damp
    out[v + 3], out[v + 4], out[v + 5], out[v + 6], out[v + 7] = (
        momentum, balance, news, shock, score)
    if abs(score) < SENT_THRESHOLD:
        out[v], out[v + 1] = S_NEUTRAL, 0.0
        out[v + 2] = _pmin(1.0, 1.0 - abs(score)) * 0.5
        return
    out[v], out[v + 1] = S_DIRECTIONAL, (1.0 if score > 0 else -1.0)
    out[v + 2] = _pmin(1.0, abs(score))


@njit(cache=True, inline="always")
def _deque_push(f, i, data, at, index, value, keep_larger):
    """Wyckoff's monotonic deque of (index, value): drop dominated tail entries, append."""
    head, count = i[at], i[at + 1]
    while count > 0:
        tail = (head + count - 1) % DEQUE_CAP
        held = f[data + 2 * tail + 1]
        if (held <= value) if keep_larger else (held >= value):
            count -= 1
        else:
            break
    slot = (head + count) % DEQUE_CAP
    f[data + 2 * slot] = index
    f[data + 2 * slot + 1] = value
    count += 1
    if f[data + 2 * head] < index - WY_WINDOW + 1:
        head = (head + 1) % DEQUE_CAP
        count -= 1
    i[at], i[at + 1] = head, count


@njit(cache=True, inline="always")
def _wyckoff(f, i, open_, high, low, close, volume, out):
    """Test the bar against the range of the bars before it, fold it in, then read the phase
    from the event memory and the volume structure."""
    index = i[I_W_INDEX] + 1
    i[I_W_INDEX] = index
    ready = index >= WY_WINDOW
    range_high = f[W_HIGHS + 2 * i[W_HIGHS_I] + 1] if i[W_HIGHS_I + 1] > 0 else high
    range_low = f[W_LOWS + 2 * i[W_LOWS_I] + 1] if i[W_LOWS_I + 1] > 0 else low
    span = high - low
    clv = ((close - low) - (high - close)) / span if span > 0 else 0.0
    i[I_W_EVENT_AGE] += 1
    if ready:
        _wyckoff_event(f, i, low, high, close, volume, range_low, range_high)
    balance, clv_mean, rising = _wyckoff_fold(f, i, index, open_, high, low, close, volume, clv)
    f[W_RANGE_LOW], f[W_RANGE_HIGH] = range_low, range_high
    v = O_VOTES + 3 * VOTE_FIELDS
    if not ready:
        i[I_W_PHASE], i[I_W_SIGNAL], f[W_STRENGTH] = PH_NO_RANGE, 0, 0.0
        out[v], out[v + 1], out[v + 2] = ABSTAIN, 0.0, 0.0
        return
    phase, signal, strength = _wyckoff_phase(i, close, range_low, range_high, balance,
                                             clv_mean, rising)
    i[I_W_PHASE], i[I_W_SIGNAL], f[W_STRENGTH] = phase, signal, strength
    out[v], out[v + 1], out[v + 2] = W_VOTE, signal, strength
    out[v + 3], out[v + 4], out[v + 5], out[v + 6] = phase, i[I_W_EVENT], range_low, range_high


@njit(cache=True, inline="always")
def _wyckoff_event(f, i, low, high, close, volume, range_low, range_high):
    """Springs, upthrusts and breakouts: heavy volume through the range's edge."""
    avg = f[W_AVG_VOLUME]
    rel_volume = volume / avg if avg > 0 else 1.0
    if rel_volume < WY_HEAVY:
        return
    event, signal = EV_NONE, 0
    if low < range_low and close > range_low:
        event, signal = EV_SPRING, 1
    elif high > range_high and close < range_high:
        event, signal = EV_UPTHRUST, -1
    elif close > range_high:
        event, signal = EV_STRENGTH, 1
    elif close < range_low:
        event, signal = EV_WEAKNESS, -1
    if event != EV_NONE:
        i[I_W_EVENT], i[I_W_EVENT_SIGNAL], i[I_W_EVENT_AGE] = event, signal, 0


@njit(cache=True, inline="always")
def _wyckoff_fold(f, i, index, open_, high, low, close, volume, clv):
    """Fold the bar into the range and the rolling sums; (up-volume balance, mean close
    location, rising slope)."""
    _deque_push(f, i, W_HIGHS, W_HIGHS_I, float(index), high, True)
    _deque_push(f, i, W_LOWS, W_LOWS_I, float(index), low, False)
    if index == 0:
        f[W_AVG_VOLUME] = volume
    else:
        f[W_AVG_VOLUME] = f[W_AVG_VOLUME] + 0.03 * (volume - f[W_AVG_VOLUME])
    up_volume = _rolling_sum(f, i, W_UP_F, W_UP_I, WY_WINDOW, volume if close > open_ else 0.0)
    total = _rolling_sum(f, i, W_VOL_F, W_VOL_I, WY_WINDOW, volume)
    clv_mean = _rolling_sum(f, i, W_CLV_F, W_CLV_I, WY_WINDOW, clv) / min(index + 1, WY_WINDOW)
    slope = _slope(f, i, W_SLOPE_F, W_SLOPE_I, WY_SLOPE, close)
    balance = up_volume / total - 0.5 if total > 0 else 0.0
    return balance, clv_mean, slope > 0 and i[W_SLOPE_I + 2] >= WY_SLOPE


@njit(cache=True, inline="always")
def _wyckoff_phase(i, close, range_low, range_high, balance, clv_mean, rising):
    width = range_high - range_low
    position = (close - range_low) / width if width > 0 else 0.5
    age = i[I_W_EVENT_AGE]
    if age <= WY_MEMORY:
        signal = i[I_W_EVENT_SIGNAL]
        if signal > 0:
            phase = PH_MARKUP_AFTER if close > range_high else PH_ACCUMULATION_AFTER
        else:
            phase = PH_MARKDOWN_AFTER if close < range_low else PH_DISTRIBUTION_AFTER
        return phase, signal, 0.55 + 0.3 * (1.0 - age / WY_MEMORY)
    if balance > 0.1 and clv_mean > 0.08:
        return PH_ACCUMULATION, 1, _pmin(1.0, 0.35 + balance + clv_mean)
    if balance < -0.1 and clv_mean < -0.08:
        return PH_DISTRIBUTION, -1, _pmin(1.0, 0.35 - balance - clv_mean)
    if position > 0.6 and rising and balance > 0.02:
        return PH_MARKUP_INSIDE, 1, 0.4
    if position < 0.4 and not rising and balance < -0.02:
        return PH_MARKDOWN_INSIDE, -1, 0.4
    return PH_RANGE, 0, 0.3


@njit(cache=True, inline="always")
def _markov(out):
    v = O_VOTES + 4 * VOTE_FIELDS
    if out[O_HAS_PROBS] == 0.0:
        out[v], out[v + 1], out[v + 2] = ABSTAIN, 0.0, 0.0
        return
    p = O_PROBS
    bull = out[p] + MARKOV_ACC_WEIGHT * out[p + 3]
    bear = out[p + 1] + MARKOV_ACC_WEIGHT * out[p + 4]
    ranging = out[p + 2]
    out[v + 3], out[v + 4], out[v + 5] = bull, bear, ranging
    if ranging >= _pmax(bull, bear):
        out[v], out[v + 1], out[v + 2] = M_RANGING, 0.0, _pmin(1.0, ranging)
    elif bull >= MARKOV_MIN_PROB and bull > bear:
        out[v], out[v + 1], out[v + 2] = M_BULLISH, 1.0, _pmin(1.0, bull)
    elif bear >= MARKOV_MIN_PROB and bear > bull:
        out[v], out[v + 1], out[v + 2] = M_BEARISH, -1.0, _pmin(1.0, bear)
    else:
        out[v], out[v + 1], out[v + 2] = M_UNDECIDED, 0.0, _pmax(bull, bear)


@njit(cache=True, inline="always")
def _activation(out):
    """Wyckoff and Markov switched on by the regime (gnosis.regime.activation)."""
    primary = out[O_PRIMARY]
    trend = abs(out[O_TREND])
    wyckoff = markov = False
    if primary != WARMING:
        trending = primary in (TRENDING_UP, TRENDING_DOWN)
        wyckoff = trending or primary in (ACCUMULATION, DISTRIBUTION) or trend > 0.4
        if primary != RANGING and not out[O_VOLATILITY] > 0.30:
            markov = out[O_CONFIDENCE] > 0.7 or (trending and trend > 0.6)
    out[O_WYCKOFF_ON] = 1.0 if wyckoff else 0.0
    out[O_MARKOV_ON] = 1.0 if markov else 0.0


@njit(cache=True, inline="always")
def _voting(out, agent):
    """Whether the agent voted (active and not abstaining)."""
    if (agent == 3 and out[O_WYCKOFF_ON] == 0.0) or (agent == 4 and out[O_MARKOV_ON] == 0.0):
        return False
    return out[O_VOTES + agent * VOTE_FIELDS] != ABSTAIN


@njit(cache=True, inline="always")
def _consensus(out):
    """DESIGN §4 over the active agents' votes, in agent order."""
    active = 3 + int(out[O_WYCKOFF_ON]) + int(out[O_MARKOV_ON])
    needed = max(2, active // 2)
    counts = np.zeros(3, dtype=np.int64)  # -1, 0, +1
    cast = 0
    for agent in range(5):
        if _voting(out, agent):
            counts[int(out[O_VOTES + agent * VOTE_FIELDS + 1]) + 1] += 1
            cast += 1
    out[O_CAST], out[O_NEEDED] = cast, needed
    out[O_SIGNAL], out[O_DECISION_CONFIDENCE] = 0.0, 0.0
    if cast == 0:
        out[O_CONSENSUS] = C_NONE
        return
    top = 0  # the signal with the most votes; a tie with any other is no decision
    for k in range(1, 3):
        if counts[k] > counts[top]:
            top = k
    for k in range(3):
        if k != top and counts[k] == counts[top]:
            out[O_CONSENSUS] = C_TIE
            return
    out[O_TOP_COUNT], out[O_TOP_SIGNAL] = counts[top], top - 1
    if counts[top] < needed:
        out[O_CONSENSUS] = C_SHORT
        return
    total = 0.0  # the agreeing confidences, summed in agent order as the reference does
    for agent in range(5):
        v = O_VOTES + agent * VOTE_FIELDS
        if _voting(out, agent) and int(out[v + 1]) == top - 1:
            total += out[v + 2]
    out[O_CONSENSUS] = C_AGREED
    if out[O_PRIMARY] != WARMING:  # nothing trades on a half-formed view
        out[O_SIGNAL] = top - 1
        out[O_DECISION_CONFIDENCE] = total / counts[top]


@njit(cache=True, inline="always")
def _marks(out):
    """sum over agents of mark(agent) * 5 ** agent, mark as ``Decision.vote_marks`` says."""
    code = 0
    scale = 1
    for agent in range(5):
        v = O_VOTES + agent * VOTE_FIELDS
        if (agent == 3 and out[O_WYCKOFF_ON] == 0.0) or (agent == 4 and out[O_MARKOV_ON] == 0.0):
            mark = MARK_OFF
        elif out[v] == ABSTAIN:
            mark = MARK_ABSTAIN
        else:
            mark = int(out[v + 1]) + 1
        code += mark * scale
        scale *= 5
    out[O_MARKS] = code


@njit(cache=True)
def step(f, i, buf, open_, high, low, close, volume, vwap, ts):
    """Fold one bar into the detector and the five agents; write the outputs into ``f``'s
    output block and return (signal, decision confidence, regime code, regime confidence,
    vote marks, liquidity failed). ``vwap`` is NaN when the bar has none."""
    out = f  # outputs live at the tail of the float state
    out[O_LIQUIDITY_ERROR] = 0.0
    _detector(f, i, buf, open_, high, low, close, volume, ts, out)
    _hedge(f, i, high, low, close, out)
    _liquidity_update(f, i, open_, high, low, close, volume, vwap, out)
    _liquidity_vote(f, i, open_, close, out)
    _sentiment(f, i, open_, close, volume, out)
    _wyckoff(f, i, open_, high, low, close, volume, out)
    _markov(out)
    _activation(out)
    _consensus(out)
    _marks(out)
    out[O_LIQUIDITY_BARS] = i[I_L_BARS]
    out[O_WYCKOFF_INDEX] = i[I_W_INDEX]
    # what every bar's decision needs (the rest of the outputs is read only to explain it)
    return (int(out[O_SIGNAL]), out[O_DECISION_CONFIDENCE], int(out[O_PRIMARY]),
            out[O_CONFIDENCE], int(out[O_MARKS]), out[O_LIQUIDITY_ERROR] != 0.0)
