"""A 5-state Gaussian HMM over causal bar features, fitted walk-forward, filtered forward.

Fitting is Baum-Welch EM (``gnosis.regime.hmm_em``: diagonal covariances, compiled, a few
milliseconds) from a few starts, best log-likelihood kept, on a trailing window of features
that were known at their own bar. Live inference is the forward recursion alone: the filtered
vector of bar t is computed from the filtered vector of bar t-1, the transition matrix and the
emission density of bar t's features, in plain float arithmetic (five states, three features:
faster than numpy at this size). Smoothed or Viterbi paths over a window are never used,
because they look ahead.

A refit is decided at bar t from the features of bars < t and takes effect at bar t + ``delay``
(one session of trading time, at least one bar; see ``HmmSchedule``), in replay and live alike.
Live, the fit runs on a worker thread (``gnosis.core.background``) while the core thread goes
on filtering with the previous model; replay computes the same pure function inline. Either
way the model that filters bar t + delay is the same, so replay and live agree. The first fit
of the k-th symbol of a run is staggered by k bars modulo an hour of trading time
(``hmm_offset``), so 500 symbols that start together do not all fit in the same minute.

States are named from their fitted means. The first fit names them by rule: the state with the
highest mean return is trending_up, the lowest trending_down; of the other three, the highest
mean volume pressure (volume on bars that close near their high) is accumulation, the lowest
distribution, and the one left is ranging. A refit must not swap labels, and five Gaussian states
over three noisy features have many near-equal optima, so a refit (a) starts EM from the
previous model (a warm start) and from semantic prototypes (plus ``refit_inits`` seeded random
rows), ``REFIT_ITER`` EM iterations each, keeping the best log-likelihood, and (b) gives each
new state the label of the previous model's state nearest to it in mean (a minimum-cost
assignment in window-standardized units); the carried-forward model is kept unless a fresh
start gains more than ``KEEP_MARGIN`` nats per sample. tests/unit/test_regime_detector.py
measures how often the filtered label of the same recent bars agrees between consecutive models
(refits on disjoint 10-session windows).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from gnosis.core import background
from gnosis.model.intervals import HOUR_SECONDS, bars_in, bars_per_session
from gnosis.model.regime import (
    ACCUMULATION,
    DISTRIBUTION,
    HMM_LABELS,
    RANGING,
    TRENDING_DOWN,
    TRENDING_UP,
)

N_STATES = 5
N_FEATURES = 3  # smoothed return z, volume pressure, log short/long volatility ratio
_LOG_2PI = math.log(2.0 * math.pi)
_MIN_VAR = 1e-4
KEEP_MARGIN = 0.05  # nats per sample a fresh fit must gain over the carried-forward model
# Semantic starting means, in units of the window's feature standard deviation from its mean,
# in HMM_LABELS order: return z, volume pressure, log short/long volatility ratio.
_PROTOTYPES = np.array([
    [1.0, 0.3, 0.2],  # trending_up: rising, buying pressure, a little more active
    [-1.0, -0.3, 0.2],  # trending_down
    [0.0, 0.0, -0.4],  # ranging: flat and quiet
    [0.0, 0.8, 0.0],  # accumulation: flat, volume on up closes
    [0.0, -0.8, 0.0],  # distribution: flat, volume on down closes
])

FIT_ROWS = 1_300  # feature rows a fit uses at most (the window, thinned by the stride)
FIRST_FIT_ROWS = 200  # rows before the first fit: ~10 per parameter of the 5-state model
REFIT_SESSIONS = 20  # walk-forward refit cadence, in trading time
THIN_BELOW_S = HOUR_SECONDS  # bars shorter than this are plentiful: fit every third one
REFIT_DELAY_SESSIONS = 1  # trading time between the bar a refit is decided on and its effect
STAGGER_S = HOUR_SECONDS  # first fits of different symbols spread over this much trading time
EM_TOLERANCE = 1e-3  # nats: EM stops when an iteration gains less
# A refit starts from the previous model and the prototypes, 10 iterations each (the first fit
# runs up to 25): a refit costs ~3.5 ms instead of ~8.6 (2 starts x 25 iterations x ~175 us on
# 1,300 rows), so the fit decided at bar t is ready long before bar t + one session even when
# a backtest runs 50,000 bars/s, and consecutive models agree more (label agreement across
# refits 0.70 -> 0.82, tests/unit/test_regime_detector.py). Decided 2026-11-25 (issue 11).
REFIT_ITER = 10


@dataclass(frozen=True, slots=True)
class HmmSchedule:
    """When the HMM fits and on how much history, in bars of one interval.

    - ``stride`` (bars): a fit uses every stride-th feature row. Below 1H bars are plentiful and
      neighbouring rows near-duplicates, so 3 (cheaper, barely less exact); from 1H up a year
      is at most ~1,600 bars and every row counts, so 1.
    - ``window`` (bars, a sample size): ``FIT_ROWS`` rows: 3,900 bars at stride 3, 1,300 at 1.
    - ``first_fit`` (bars, a sample size): ``FIRST_FIT_ROWS`` rows: 600 bars at stride 3 (1.5
      sessions of 1-minute bars), 200 at stride 1 (ten months of daily bars).
    - ``refit_every`` (time): every ``REFIT_SESSIONS`` sessions (7,800 one-minute bars), but not
      before a tenth of the window is new data, which keeps daily and hourly refits from
      re-fitting an almost unchanged window every few bars (daily: every 130 bars).
    - ``delay`` (time): a fit decided at bar t takes effect at bar t + delay, one session of
      trading time later (390 one-minute bars, 78 five-minute bars, 6 hourly bars, the next
      daily bar): time for a worker thread to fit while the core thread goes on, live (where
      a session is hours) and in a replay as fast as the machine can go (where 390 bars are
      ~10 ms of core time, about one refit's CPU time on the other core).
    - ``stagger`` (time): first fits of different symbols are spread over ``STAGGER_S`` of
      trading time (60 one-minute bars; 1 from 1H up), by ``hmm_offset``.
    """

    window: int
    first_fit: int
    refit_every: int
    stride: int
    delay: int = 1
    stagger: int = 1


def hmm_schedule(interval_s: int) -> HmmSchedule:
    """The HMM's schedule for bars of ``interval_s`` seconds (see ``HmmSchedule``)."""
    stride = 3 if interval_s < THIN_BELOW_S else 1
    window = FIT_ROWS * stride
    refit_every = max(round(REFIT_SESSIONS * bars_per_session(interval_s)), window // 10)
    delay = max(1, round(REFIT_DELAY_SESSIONS * bars_per_session(interval_s)))
    stagger = max(1, round(bars_in(STAGGER_S, interval_s)))
    return HmmSchedule(window, FIRST_FIT_ROWS * stride, refit_every, stride, delay, stagger)


def hmm_offset(index: int, interval_s: int) -> int:
    """Bars by which the first fit of the ``index``-th symbol of a run (in the order their
    first bars came) follows the schedule's ``first_fit``: in [0, stagger), so symbols that
    start together spread their first fits evenly, and one symbol alone is never delayed
    (whatever its name)."""
    return index % hmm_schedule(interval_s).stagger


@dataclass(slots=True)
class _Pending:
    """A fit decided at bar ``decided_at`` that takes effect at bar ``effective``. Its inputs
    are kept so a restored snapshot can recompute it (the same pure function, the same
    result); ``handle`` is the running work, never pickled."""

    decided_at: int
    effective: int
    data: np.ndarray
    seed: int
    previous: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None
    handle: Any = None


class FilteredHMM:
    """Walk-forward fitted HMM with an O(1) forward filter.

    Per bar, ``tick(bar_count)`` first installs a fit whose effective bar has come and decides a
    new one when the schedule says so (from the stored features of earlier bars only); then
    ``observe(features)`` stores the bar's features (bounded window) and, once a model is
    installed, advances the filter.
    """

    def __init__(
        self,
        seed: int = 0,
        window: int = 3_900,
        first_fit: int = 600,
        refit_every: int = 7_800,
        inits: int = 3,
        n_iter: int = 25,
        stride: int = 3,
        delay: int = 0,
        refit_inits: int = 0,
        refit_iter: int = REFIT_ITER,
    ) -> None:
        self.seed = seed
        self.window = window
        self.first_fit = first_fit
        self.refit_every = refit_every
        self.inits = inits  # random starts of the first fit
        self.refit_inits = refit_inits  # random starts of a refit (besides the warm start)
        self.n_iter = n_iter  # EM iterations of the first fit (from scratch)
        self.refit_iter = refit_iter  # EM iterations of a refit, from each of its starts
        self.stride = stride  # fit on every stride-th feature row: cheaper, barely less exact
        self.delay = delay  # bars between deciding a fit and filtering with it
        self._buffer = np.zeros((window, N_FEATURES))
        self._stored = 0
        self.version = 0
        self.fitted_at = -1  # bar count at which the last fit was decided
        self.log_likelihood = float("nan")
        # model, in label order (index i is HMM_LABELS[i]); None until the first fit
        self._means: list[list[float]] | None = None
        self._vars: list[list[float]] = []
        self._log_norm: list[float] = []
        self._trans: list[list[float]] = []
        self._fit_trans: list[list[float]] = []  # label order, at the fit's stride
        self._start: list[float] = []
        self._alpha: list[float] | None = None
        self._pending: _Pending | None = None
        self.next_tick = first_fit  # the first bar count at which ``tick`` has work to do

    # -- per bar ----------------------------------------------------------------------------
    def tick(self, bar_count: int) -> None:
        """Before bar ``bar_count`` is observed: install the pending fit if it takes effect
        now, and decide a new fit if one is due (data: bars before this one)."""
        if bar_count < self.next_tick:
            return
        pending = self._pending
        if pending is not None and bar_count >= pending.effective:
            self._install(pending)
        if self._pending is None and self.due(bar_count):
            self.start_refit(bar_count)
        self._plan_next_tick()

    def _plan_next_tick(self) -> None:
        if self._pending is not None:
            self.next_tick = self._pending.effective
        elif self._means is None and self.fitted_at < 0:
            self.next_tick = self.first_fit
        else:
            self.next_tick = self.fitted_at + self.refit_every

    def observe(self, f0: float, f1: float, f2: float) -> tuple[float, ...] | None:
        row = self._stored % self.window
        buf = self._buffer
        buf[row, 0] = f0
        buf[row, 1] = f1
        buf[row, 2] = f2
        self._stored += 1
        if self._means is None:
            return None
        return self._filter(f0, f1, f2)

    def _filter(self, f0: float, f1: float, f2: float) -> tuple[float, ...]:
        """One forward step: alpha_t ∝ (alpha_{t-1} · A) ⊙ b(x_t), unrolled for five states."""
        means, variances, norms = self._means, self._vars, self._log_norm
        assert means is not None
        logs = [0.0] * N_STATES
        for i in range(N_STATES):
            m, v = means[i], variances[i]
            d0, d1, d2 = f0 - m[0], f1 - m[1], f2 - m[2]
            logs[i] = norms[i] - 0.5 * (d0 * d0 / v[0] + d1 * d1 / v[1] + d2 * d2 / v[2])
        top = max(logs)
        exp = math.exp
        alpha = self._alpha
        if alpha is None:
            prior = self._start
        else:
            a0, a1, a2, a3, a4 = alpha
            t0, t1, t2, t3, t4 = self._trans
            prior = [a0 * t0[j] + a1 * t1[j] + a2 * t2[j] + a3 * t3[j] + a4 * t4[j]
                     for j in range(N_STATES)]
        post = [prior[j] * exp(logs[j] - top) for j in range(N_STATES)]
        total = post[0] + post[1] + post[2] + post[3] + post[4]
        if not total > 0.0:  # an observation far outside every state: fall back on the prior
            post, total = list(prior), sum(prior)
        inv = 1.0 / total
        result = (post[0] * inv, post[1] * inv, post[2] * inv, post[3] * inv, post[4] * inv)
        self._alpha = list(result)
        return result

    # -- fitting ----------------------------------------------------------------------------
    def due(self, bar_count: int) -> bool:
        if self._means is None and self.fitted_at < 0:
            return bar_count >= self.first_fit
        return bar_count - self.fitted_at >= self.refit_every

    def window_data(self) -> np.ndarray:
        """The stored window in time order, thinned by the stride (a copy)."""
        n = min(self._stored, self.window)
        start = self._stored % self.window if self._stored > self.window else 0
        data = np.roll(self._buffer, -start, axis=0)[:n] if start else self._buffer[:n]
        return np.ascontiguousarray(data[:: self.stride])

    def start_refit(self, bar_count: int) -> None:
        """Decide a fit on the stored window (past features only), effective ``delay`` bars
        later; with no delay it is installed at once."""
        previous = None
        if self._means is not None:
            fit_trans = getattr(self, "_fit_trans", None)
            previous = (np.asarray(self._means), np.asarray(self._vars),
                        np.asarray(fit_trans) if fit_trans else None)
        pending = _Pending(bar_count, bar_count + self.delay, self.window_data(),
                           self.seed + self.version * 7919, previous)
        self.fitted_at = bar_count  # on failure too: try again on the next schedule tick
        self._pending = pending
        pending.handle = background.submit(self._fit_job, pending)
        if self.delay <= 0:
            self._install(pending)
        self._plan_next_tick()

    def refit(self, bar_count: int) -> bool:
        """Fit on the stored window now and install the result at once. False if no start
        converged."""
        version = self.version
        delay, self.delay = self.delay, 0
        try:
            self.start_refit(bar_count)
        finally:
            self.delay = delay
        return self.version > version

    def _fit_job(self, pending: _Pending) -> tuple[Any, float, list[int]] | None:
        """The pure part of a refit (safe on a worker thread): EM from every start, then the
        labels of the fitted states."""
        data = pending.data
        if pending.previous is None:
            inits, n_iter = self.inits, self.n_iter
        else:
            inits, n_iter = self.refit_inits, self.refit_iter
        fitted = _best_fit(data, pending.seed, inits, n_iter, previous=pending.previous)
        if fitted is None:
            return None
        model, score = fitted
        if pending.previous is None:
            order = label_order(model.means_)
        else:
            order = match_labels(model.means_, pending.previous[0],
                                 data.std(axis=0) + _MIN_VAR)
        return model, score, order

    def _install(self, pending: _Pending) -> None:
        self._pending = None
        handle = pending.handle
        result = handle.result() if handle is not None else self._fit_job(pending)
        if result is None:
            return
        model, score, order = result
        means = model.means_[order]
        variances = np.maximum(_diag(model.covars_)[order], _MIN_VAR)
        trans = model.transmat_[np.ix_(order, order)]
        self._fit_trans = trans.tolist()
        # bars are stride-sampled for the fit: the per-bar chain is the stride-th root, which
        # for a sticky matrix is well approximated by shrinking the off-diagonal mass
        trans = _per_bar(trans, self.stride)
        self._means = means.tolist()
        self._vars = variances.tolist()
        self._log_norm = [-0.5 * (N_FEATURES * _LOG_2PI + float(np.log(v).sum()))
                          for v in variances]
        self._trans = trans.tolist()
        # the filter starts from a uniform prior; after a refit it carries on from the last
        # filtered vector, which is meaningful because labels, not indices, are kept
        self._start = [1.0 / N_STATES] * N_STATES
        self.version += 1
        self.log_likelihood = score

    @property
    def fitted(self) -> bool:
        return self._means is not None

    @property
    def means(self) -> list[list[float]] | None:
        return self._means

    @property
    def pending_effective(self) -> int | None:
        """The bar count at which a decided fit takes effect, or None."""
        return None if self._pending is None else self._pending.effective

    # -- persistence ------------------------------------------------------------------------
    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("refit_iter", REFIT_ITER)  # a snapshot from before it was a setting
        self.__dict__.update(state)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        pending = state.get("_pending")
        if pending is not None:  # the running work is not state: its inputs are
            state["_pending"] = _Pending(pending.decided_at, pending.effective, pending.data,
                                         pending.seed, pending.previous)
        return state

    def to_state(self) -> dict[str, Any]:
        pending = self._pending
        return {
            "version": self.version, "fitted_at": self.fitted_at,
            "log_likelihood": self.log_likelihood, "means": self._means, "vars": self._vars,
            "trans": self._trans, "fit_trans": self._fit_trans, "start": self._start,
            "alpha": self._alpha,
            "buffer": self._buffer.tolist(), "stored": self._stored,
            "pending": None if pending is None else {
                "decided_at": pending.decided_at, "effective": pending.effective,
                "data": pending.data.tolist(), "seed": pending.seed,
                "previous": None if pending.previous is None else [
                    None if part is None else part.tolist() for part in pending.previous]},
        }

    def from_state(self, state: dict[str, Any]) -> None:
        self.version = state["version"]
        self.fitted_at = state["fitted_at"]
        self.log_likelihood = state["log_likelihood"]
        self._means = state["means"]
        self._vars = state["vars"]
        self._trans = state["trans"]
        self._fit_trans = state.get("fit_trans", [])
        self._start = state["start"]
        self._alpha = state["alpha"]
        self._buffer = np.asarray(state["buffer"], dtype=float).reshape(self.window, N_FEATURES)
        self._stored = state["stored"]
        self._log_norm = [-0.5 * (N_FEATURES * _LOG_2PI + sum(math.log(x) for x in v))
                          for v in self._vars]
        saved = state.get("pending")
        self._pending = None
        if saved is not None:
            previous = saved["previous"]
            self._pending = _Pending(
                saved["decided_at"], saved["effective"], np.asarray(saved["data"], dtype=float),
                saved["seed"], None if previous is None else tuple(
                    None if part is None else np.asarray(part, dtype=float)
                    for part in previous))  # type: ignore[arg-type]
        self._plan_next_tick()


def label_order(means: np.ndarray) -> list[int]:
    """Fitted state indices in HMM_LABELS order, decided by the states' mean features."""
    by_return = list(np.argsort(means[:, 0], kind="stable"))
    up, down = int(by_return[-1]), int(by_return[0])
    rest = [int(i) for i in by_return[1:-1]]
    rest.sort(key=lambda i: (means[i, 1], i))
    distribution, ranging, accumulation = rest[0], rest[1], rest[2]
    slots = {TRENDING_UP: up, TRENDING_DOWN: down, RANGING: ranging,
             ACCUMULATION: accumulation, DISTRIBUTION: distribution}
    return [slots[label] for label in HMM_LABELS]


def match_labels(means: np.ndarray, previous_means: np.ndarray, scale: np.ndarray) -> list[int]:
    """Fitted state indices in HMM_LABELS order: each label goes to the new state nearest the
    previous model's state of that label (minimum total squared distance in ``scale`` units).

    Five states have 120 assignments: all are tried (exact, a fraction of a millisecond), and
    the first of equal totals in lexicographic order wins. scipy's ``linear_sum_assignment``
    gives the same answer (tests/unit/test_hmm_labels.py), but loading ``scipy.optimize`` for
    a 5x5 matrix held 20-40 MB of resident memory.
    """
    cost = (((means[:, None, :] - previous_means[None, :, :]) / scale) ** 2).sum(axis=-1)
    rows = cost.tolist()  # rows: fitted states, columns: labels
    best_total = math.inf
    best: tuple[int, ...] = tuple(range(N_STATES))
    for states in _ASSIGNMENTS:  # states[label] = the fitted state that gets the label
        total = 0.0
        for label, state in enumerate(states):
            total += rows[state][label]
        if total < best_total:
            best_total, best = total, states
    return list(best)


_ASSIGNMENTS = tuple(itertools.permutations(range(N_STATES)))


def _diag(covars: np.ndarray) -> np.ndarray:
    return np.asarray([np.diag(c) if c.ndim == 2 else c for c in covars])


def _per_bar(trans: np.ndarray, stride: int) -> np.ndarray:
    if stride <= 1:
        return trans
    stay = np.clip(np.diag(trans), 1e-6, 1.0 - 1e-9) ** (1.0 / stride)
    out = trans.copy()
    for i in range(len(trans)):
        off = trans[i].copy()
        off[i] = 0.0
        mass = off.sum()
        out[i] = off / mass * (1.0 - stay[i]) if mass > 0 else off
        out[i, i] = stay[i] if mass > 0 else 1.0
    return out


def _sticky() -> np.ndarray:
    trans = np.full((N_STATES, N_STATES), 0.02 / (N_STATES - 1))
    np.fill_diagonal(trans, 0.98)
    return trans


def _starts(
    data: np.ndarray, seed: int, inits: int,
    previous: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Starting (means, variances, transitions): ``inits`` seeded random rows of the data
    (cheaper than k-means, as good for sticky states), the semantic prototypes, and the
    previous model when there is one."""
    spread = data.var(axis=0) + _MIN_VAR
    starts = []
    for attempt in range(inits):
        rng = np.random.default_rng(seed + attempt)
        rows = data[rng.choice(len(data), N_STATES, replace=False)]
        starts.append((rows, np.tile(spread, (N_STATES, 1)), _sticky()))
    scale = np.sqrt(spread)
    starts.append((data.mean(axis=0) + _PROTOTYPES * scale,
                   np.tile(spread * 0.36, (N_STATES, 1)), _sticky()))
    if previous is not None:
        means, variances, trans = previous
        starts.append((means, np.maximum(variances, _MIN_VAR),
                       trans if trans is not None and trans.shape == (N_STATES, N_STATES)
                       else _sticky()))
    return starts


@dataclass(frozen=True, slots=True)
class GaussianFit:
    """A fitted model in the fitted state order (names as hmmlearn's estimators use)."""

    startprob_: np.ndarray
    transmat_: np.ndarray
    means_: np.ndarray
    covars_: np.ndarray  # diagonal variances, states x features


def _best_fit(
    data: np.ndarray, seed: int, inits: int, n_iter: int,
    previous: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None,
    keep_margin: float = KEEP_MARGIN,
) -> tuple[GaussianFit, float] | None:
    """Run EM from every start of ``_starts`` and keep the best log-likelihood."""
    from gnosis.regime.hmm_em import baum_welch

    data = np.ascontiguousarray(data, dtype=np.float64)
    best: tuple[GaussianFit, float] | None = None
    starts = _starts(data, seed, inits, previous)
    carried: tuple[GaussianFit, float] | None = None
    for attempt, (means, variances, trans) in enumerate(starts):
        start = np.full(N_STATES, 1.0 / N_STATES)
        trans = np.array(trans / trans.sum(axis=1, keepdims=True), dtype=np.float64)
        means = np.array(means, dtype=np.float64)
        variances = np.array(variances, dtype=np.float64)
        score, _ = baum_welch(data, start, trans, means, variances, n_iter, EM_TOLERANCE,
                              _MIN_VAR)
        if not math.isfinite(score) or not np.all(np.isfinite(trans)):
            continue
        model = GaussianFit(start, trans, means, variances)
        if best is None or score > best[1]:
            best = (model, score)
        if previous is not None and attempt == len(starts) - 1:
            carried = (model, score)
    # the previous model carried forward wins unless a fresh start fits clearly better: a
    # small likelihood gain is not worth re-partitioning the states under the agent's feet
    if carried is not None and best is not None and carried[1] >= best[1] - keep_margin * len(data):
        return carried
    return best
