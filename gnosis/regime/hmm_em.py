"""Baum-Welch (EM) for a small Gaussian HMM with diagonal covariances, compiled with numba.

The walk-forward refit used to run ``hmmlearn``'s EM from five starts (1.1-1.8 s on the core
thread); this is the same textbook algorithm in one compiled function that releases the GIL,
so a refit costs milliseconds and can run on a worker thread:

- E-step: emission densities per row (shifted by the row's largest log-density, so nothing
  underflows), the scaled forward pass (each alpha_t normalized, its scale c_t kept), the
  backward pass with the same scales, state posteriors gamma_t = alpha_t * beta_t and the
  expected transition counts sum_t alpha_{t-1}(i) A_ij b_t(j) beta_t(j) / c_t.
- M-step: start = gamma_0; each transition row normalized; means and variances weighted by
  gamma; variances floored at ``min_var``.
- log-likelihood = sum_t log c_t + sum_t (row shift); EM stops when an iteration gains less
  than ``tol`` or after ``n_iter`` iterations.

``gnosis.regime.hmm._best_fit`` runs it from a few starts and keeps the best; tests hold it
against a direct numpy reference and against ``hmmlearn``'s forward log-likelihood.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_LOG_2PI = math.log(2.0 * math.pi)


@njit(cache=True, nogil=True)
def _log_emissions(data: np.ndarray, means: np.ndarray, variances: np.ndarray,
                   out: np.ndarray) -> None:
    rows, features = data.shape
    states = means.shape[0]
    for i in range(states):
        norm = 0.0
        for f in range(features):
            norm += math.log(variances[i, f])
        norm = -0.5 * (features * _LOG_2PI + norm)
        for t in range(rows):
            quad = 0.0
            for f in range(features):
                d = data[t, f] - means[i, f]
                quad += d * d / variances[i, f]
            out[t, i] = norm - 0.5 * quad


@njit(cache=True, nogil=True)
def _densities(data: np.ndarray, means: np.ndarray, variances: np.ndarray) -> tuple[
        np.ndarray, float]:
    """Emission densities relative to each row's best state (nothing underflows), and the sum
    of the rows' shifts (log)."""
    rows = data.shape[0]
    states = means.shape[0]
    dens = np.empty((rows, states))
    _log_emissions(data, means, variances, dens)
    shift = 0.0
    for t in range(rows):
        top = dens[t, 0]
        for i in range(1, states):
            if dens[t, i] > top:
                top = dens[t, i]
        shift += top
        for i in range(states):
            dens[t, i] = math.exp(dens[t, i] - top)
    return dens, shift


@njit(cache=True, nogil=True)
def _forward(dens: np.ndarray, start: np.ndarray, trans: np.ndarray, alpha: np.ndarray,
             scale: np.ndarray) -> bool:
    """Scaled forward pass; False when a row is impossible under every state."""
    rows, states = dens.shape
    for t in range(rows):
        total = 0.0
        for j in range(states):
            if t == 0:
                acc = start[j]
            else:
                acc = 0.0
                for i in range(states):
                    acc += alpha[t - 1, i] * trans[i, j]
            alpha[t, j] = acc * dens[t, j]
            total += alpha[t, j]
        if not total > 0.0:
            return False
        scale[t] = total
        for j in range(states):
            alpha[t, j] /= total
    return True


@njit(cache=True, nogil=True)
def _backward(dens: np.ndarray, trans: np.ndarray, alpha: np.ndarray, scale: np.ndarray,
              gamma: np.ndarray, xi: np.ndarray) -> None:
    """Backward pass with the forward scales; posteriors and expected transitions."""
    rows, states = dens.shape
    beta = np.empty((rows, states))
    for i in range(states):
        beta[rows - 1, i] = 1.0
    xi[:, :] = 0.0
    for t in range(rows - 1, 0, -1):
        for i in range(states):
            acc = 0.0
            for j in range(states):
                weight = trans[i, j] * dens[t, j] * beta[t, j]
                acc += weight
                xi[i, j] += alpha[t - 1, i] * weight / scale[t]
            beta[t - 1, i] = acc / scale[t]
    for t in range(rows):
        for i in range(states):
            gamma[t, i] = alpha[t, i] * beta[t, i]


@njit(cache=True, nogil=True)
def _e_step(data: np.ndarray, start: np.ndarray, trans: np.ndarray, means: np.ndarray,
            variances: np.ndarray, gamma: np.ndarray, xi: np.ndarray) -> float:
    """Fill ``gamma`` (T x N posteriors) and ``xi`` (N x N expected transitions); return the
    log-likelihood of ``data`` under the model (-inf when it is impossible)."""
    dens, loglik = _densities(data, means, variances)
    rows, states = dens.shape
    alpha = np.empty((rows, states))
    scale = np.empty(rows)
    if not _forward(dens, start, trans, alpha, scale):
        return -np.inf
    for t in range(rows):
        loglik += math.log(scale[t])
    _backward(dens, trans, alpha, scale, gamma, xi)
    return loglik


@njit(cache=True, nogil=True)
def _m_step(data: np.ndarray, gamma: np.ndarray, xi: np.ndarray, start: np.ndarray,
            trans: np.ndarray, means: np.ndarray, variances: np.ndarray,
            min_var: float) -> None:
    rows, features = data.shape
    states = means.shape[0]
    total = 0.0
    for i in range(states):
        total += gamma[0, i]
    for i in range(states):
        start[i] = gamma[0, i] / total
        row = 0.0
        for j in range(states):
            row += xi[i, j]
        if row > 0.0:
            for j in range(states):
                trans[i, j] = xi[i, j] / row
        weight = 0.0
        for t in range(rows):
            weight += gamma[t, i]
        if not weight > 1e-12:  # an empty state keeps its parameters
            continue
        for f in range(features):
            acc = 0.0
            for t in range(rows):
                acc += gamma[t, i] * data[t, f]
            mean = acc / weight
            acc = 0.0
            for t in range(rows):
                d = data[t, f] - mean
                acc += gamma[t, i] * d * d
            means[i, f] = mean
            variances[i, f] = max(acc / weight, min_var)


@njit(cache=True, nogil=True)
def baum_welch(data: np.ndarray, start: np.ndarray, trans: np.ndarray, means: np.ndarray,
               variances: np.ndarray, n_iter: int, tol: float,
               min_var: float) -> tuple[float, int]:
    """Run EM in place on (start, trans, means, variances); return (log-likelihood of the
    final parameters, iterations run). -inf when the data is impossible under a start."""
    rows = data.shape[0]
    states = means.shape[0]
    gamma = np.empty((rows, states))
    xi = np.empty((states, states))
    previous = -np.inf
    iterations = 0
    for _ in range(n_iter):
        loglik = _e_step(data, start, trans, means, variances, gamma, xi)
        if not np.isfinite(loglik):
            return -np.inf, iterations
        if loglik - previous < tol:
            return loglik, iterations
        previous = loglik
        _m_step(data, gamma, xi, start, trans, means, variances, min_var)
        iterations += 1
    return _e_step(data, start, trans, means, variances, gamma, xi), iterations


def log_likelihood(data: np.ndarray, start: np.ndarray, trans: np.ndarray, means: np.ndarray,
                   variances: np.ndarray) -> float:
    """Forward log-likelihood of ``data`` under the model (no fitting)."""
    states = means.shape[0]
    gamma = np.empty((len(data), states))
    xi = np.empty((states, states))
    return float(_e_step(np.ascontiguousarray(data, dtype=np.float64), start, trans, means,
                         variances, gamma, xi))
