"""HMM label matching: the exhaustive assignment is the minimum one."""

from __future__ import annotations

import numpy as np


def test_match_labels_is_the_minimum_assignment_as_scipy_finds_it() -> None:
    """The exhaustive 5x5 assignment agrees with scipy's linear_sum_assignment."""
    from scipy.optimize import linear_sum_assignment

    from gnosis.regime.hmm import match_labels

    rng = np.random.default_rng(5)
    for _ in range(2_000):
        means = rng.standard_normal((5, 3))
        previous = means[rng.permutation(5)] + 0.8 * rng.standard_normal((5, 3))
        scale = rng.uniform(0.5, 2.0, 3)
        order = match_labels(means, previous, scale)
        cost = (((means[:, None, :] - previous[None, :, :]) / scale) ** 2).sum(axis=-1)
        states, labels = linear_sum_assignment(cost)
        expected = [0] * 5
        for state, label in zip(states, labels, strict=True):
            expected[int(label)] = int(state)
        assert order == expected
        assert sorted(order) == list(range(5))
