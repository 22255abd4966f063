"""The compiled Baum-Welch fit and the deferred, off-thread refit of the regime HMM."""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest
from scipy.special import logsumexp

from gnosis.core import background
from gnosis.data.synthetic import SyntheticMarket
from gnosis.regime.detector import RegimeDetector
from gnosis.regime.hmm import FilteredHMM
from gnosis.regime.hmm_em import baum_welch, log_likelihood


def sample_hmm(rows: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Rows drawn from a known sticky 3-state, 2-feature Gaussian HMM; (data, true means)."""
    rng = np.random.default_rng(seed)
    means = np.array([[-2.0, 0.0], [0.0, 1.5], [2.0, -1.0]])
    sd = np.array([[0.5, 0.4], [0.3, 0.6], [0.7, 0.5]])
    state, out = 0, np.empty((rows, 2))
    for t in range(rows):
        if rng.random() < 0.05:
            state = int(rng.integers(3))
        out[t] = means[state] + sd[state] * rng.standard_normal(2)
    return out, means


def reference_em_step(data, start, trans, means, variances):
    """One EM iteration written from the textbook in log space (numpy, readable, slow)."""
    log_b = (-0.5 * (np.log(2 * np.pi * variances)[None, :, :]
                     + (data[:, None, :] - means[None, :, :]) ** 2 / variances[None, :, :])
             ).sum(axis=2)
    rows, states = log_b.shape
    log_a = np.log(trans)
    alpha = np.empty((rows, states))
    beta = np.zeros((rows, states))
    alpha[0] = np.log(start) + log_b[0]
    for t in range(1, rows):
        alpha[t] = logsumexp(alpha[t - 1][:, None] + log_a, axis=0) + log_b[t]
    for t in range(rows - 2, -1, -1):
        beta[t] = logsumexp(log_a + log_b[t + 1][None, :] + beta[t + 1][None, :], axis=1)
    loglik = logsumexp(alpha[-1])
    gamma = np.exp(alpha + beta - loglik)
    xi = np.zeros((states, states))
    for t in range(1, rows):
        xi += np.exp(alpha[t - 1][:, None] + log_a + log_b[t][None, :] + beta[t][None, :]
                     - loglik)
    weight = gamma.sum(axis=0)
    new_means = gamma.T @ data / weight[:, None]
    new_vars = np.stack([(gamma[:, i, None] * (data - new_means[i]) ** 2).sum(axis=0) / weight[i]
                         for i in range(states)])
    return (loglik, gamma[0] / gamma[0].sum(), xi / xi.sum(axis=1, keepdims=True), new_means,
            np.maximum(new_vars, 1e-4))


def starting_model() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    start = np.full(3, 1 / 3)
    trans = np.full((3, 3), 0.05)
    np.fill_diagonal(trans, 0.9)
    means = np.array([[-1.0, 0.5], [0.5, 0.5], [1.0, 0.0]])
    return start, trans, means, np.ones((3, 2))


def test_one_em_iteration_equals_the_textbook_reference() -> None:
    data, _ = sample_hmm(400)
    start, trans, means, variances = starting_model()
    expected = reference_em_step(data, start, trans, means, variances)
    loglik, iterations = baum_welch(data, start, trans, means, variances, 1, -np.inf, 1e-4)
    assert iterations == 1
    for got, want in zip((start, trans, means, variances), expected[1:]):
        assert np.allclose(got, want, rtol=1e-9, atol=1e-12)
    # the returned figure is the likelihood of the updated model, which EM cannot worsen
    assert loglik >= expected[0]
    assert log_likelihood(data, start, trans, means, variances) == pytest.approx(loglik)


def test_log_likelihood_equals_hmmlearns_forward_score() -> None:
    from hmmlearn.hmm import GaussianHMM

    data, _ = sample_hmm(300, seed=5)
    start, trans, means, variances = starting_model()
    reference = GaussianHMM(n_components=3, covariance_type="diag", init_params="", params="")
    reference.startprob_, reference.transmat_ = start, trans
    reference.means_, reference.covars_ = means, variances
    assert log_likelihood(data, start, trans, means, variances) == pytest.approx(
        reference.score(data), rel=1e-10)


def test_em_climbs_and_recovers_the_generating_means() -> None:
    data, true_means = sample_hmm(3_000, seed=8)
    start, trans, means, variances = starting_model()
    scores = []
    for _ in range(8):
        score, _ = baum_welch(data, start, trans, means, variances, 1, -np.inf, 1e-4)
        scores.append(score)
    assert all(b >= a - 1e-6 for a, b in zip(scores, scores[1:]))
    order = np.argsort(means[:, 0])
    assert np.allclose(means[order], true_means, atol=0.1)
    assert np.all(np.diag(trans) > 0.85)


def detector_states(bars: list, refit_every: int = 500) -> list:
    detector = RegimeDetector(seed=2, hmm_refit_every=refit_every, hmm_stagger=0)
    return [detector.update(bar) for bar in bars]


def test_a_refit_decided_at_bar_t_filters_from_bar_t_plus_delay() -> None:
    bars = list(SyntheticMarket(seed=2, days=6).bars())[:2_000]
    detector = RegimeDetector(seed=2, hmm_refit_every=500, hmm_stagger=0)
    hmm = detector.hmm
    assert hmm is not None and hmm.delay == 390  # one session of one-minute bars
    versions, probabilities = [], []
    for bar in bars:
        state = detector.update(bar)
        versions.append(hmm.version)
        probabilities.append(state.hmm_probabilities is not None)
    first = hmm.first_fit  # decided on that bar (bar numbers from 1), from the bars before it
    assert versions[first + 389 - 1] == 0 and versions[first + 390 - 1] == 1
    assert probabilities.index(True) == first + 390 - 1
    # the refit is due 500 bars after the first was decided, while nothing is pending
    assert versions[first + 500 + 389 - 1] == 1 and versions[first + 500 + 390 - 1] == 2


def test_fits_on_a_worker_thread_give_the_same_states_as_inline_fits() -> None:
    bars = list(SyntheticMarket(seed=2, days=6).bars())[:2_000]
    inline = detector_states(bars)
    default_interval = sys.getswitchinterval()
    background.use_worker_thread()
    try:
        assert sys.getswitchinterval() <= 0.0001  # the worker's Python glue never waits long
        threaded = detector_states(bars)            # for the core thread to let go
    finally:
        background.use_inline()
    assert sys.getswitchinterval() == default_interval
    assert threaded == inline
    assert sum(s.hmm_probabilities is not None for s in inline) > 500


def test_a_snapshot_taken_while_a_fit_is_pending_resumes_identically() -> None:
    bars = list(SyntheticMarket(seed=2, days=6).bars())[:2_000]
    detector = RegimeDetector(seed=2, hmm_refit_every=500, hmm_stagger=0)
    hmm = detector.hmm
    assert hmm is not None
    cut = hmm.first_fit + 500 + 3  # a refit is decided and not yet in effect
    for bar in bars[:cut]:
        detector.update(bar)
    assert hmm.pending_effective == hmm.first_fit + 500 + 390
    copy = pickle.loads(pickle.dumps(detector))
    reloaded = FilteredHMM(seed=2, window=hmm.window)
    reloaded.from_state(hmm.to_state())
    assert reloaded.pending_effective == hmm.pending_effective
    assert [copy.update(b) for b in bars[cut:]] == [detector.update(b) for b in bars[cut:]]
