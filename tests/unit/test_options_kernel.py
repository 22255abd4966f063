"""The simulated chain's compiled exposure equals gamma_exposure of the chain, bit for bit;
our Black-Scholes gamma equals the blackscholes library's, bit for bit."""

from __future__ import annotations

import math

import numpy as np
import pytest
from blackscholes import BlackScholesCall, BlackScholesPut

from gnosis.agents.hedge import contract_gamma, gamma_exposure
from gnosis.agents.options_sim import SimulatedOptionsChain

T0 = 1_704_205_800 * 10**9  # 2024-01-02 14:30 UTC, a bar's close
MINUTE = 60 * 10**9


def test_gamma_equals_the_library_bit_for_bit() -> None:
    rng = np.random.default_rng(11)
    for _ in range(20_000):
        spot = float(rng.uniform(1.0, 2_000.0))
        strike = spot * float(rng.uniform(0.5, 1.5))
        years = float(rng.uniform(1e-4, 2.0))
        iv = float(rng.uniform(0.02, 1.5))
        ours = contract_gamma(spot, strike, years, iv)
        for model in (BlackScholesCall, BlackScholesPut):
            theirs = model(S=spot, K=strike, T=years, r=0.04, sigma=iv, q=0.0).gamma()
            assert ours == theirs, (spot, strike, years, iv)


@pytest.mark.parametrize("bad", [(0.0, 100.0, 0.1, 0.2), (100.0, -1.0, 0.1, 0.2),
                                 (100.0, 100.0, 0.0, 0.2), (100.0, 100.0, 0.1, 0.0),
                                 (math.nan, 100.0, 0.1, 0.2)])
def test_gamma_refuses_what_the_formula_cannot_take(bad: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="gamma needs positive"):
        contract_gamma(*bad)


@pytest.mark.parametrize("seed", [0, 7])
def test_exposure_equals_gamma_exposure_of_the_chain(seed: int) -> None:
    sim = SimulatedOptionsChain(seed=seed)
    rng = np.random.default_rng(seed)
    checked = 0
    # every strike grid (0.5 under 25, 1 under 500, 5 above), spots on and between strikes,
    # hours and days apart (the wall's shift and the dealers' tilt move)
    spots = [*rng.uniform(3.0, 30.0, 300), *rng.uniform(30.0, 600.0, 600),
             *rng.uniform(480.0, 3_000.0, 300), 24.75, 25.0, 450.0, 450.5, 500.0, 499.99]
    for n, spot in enumerate(spots):
        spot = float(spot) if n % 3 else round(float(spot))
        as_of = (T0 + int(rng.integers(0, 30 * 390)) * MINUTE
                 + int(rng.integers(0, 9)) * 86_400 * 10**9)
        for symbol in ("SPY", "QQQ"):
            chain = sim.chain(symbol, spot, as_of)
            assert chain is not None and chain.contracts
            assert sim.exposure(symbol, spot, as_of) == gamma_exposure(chain), (symbol, spot)
            checked += 1
    assert checked == 2 * len(spots)


def test_no_chain_no_exposure() -> None:
    sim = SimulatedOptionsChain(seed=1)
    for spot in (0.0, -3.0, math.nan):
        assert sim.chain("SPY", spot, T0) is None
        assert sim.exposure("SPY", spot, T0) is None


def test_hourly_reads_from_the_day_caches_equal_fresh_chains_and_survive_pickling() -> None:
    """Reads an hour apart, the way the hedge reads (the center moves between them, so each
    strike's day draw is reused from ``_strike_draws``), equal the chain built from scratch;
    a pickled reader carries only its parameters and goes on the same; one pickled before the
    per-strike cache existed loads."""
    import pickle

    reader, rng = SimulatedOptionsChain(seed=3), np.random.default_rng(3)
    spot, reads = 450.0, 0
    for hour in range(24 * 12):
        spot *= math.exp(float(rng.normal(0.0, 0.004)))
        as_of = T0 + hour * 60 * MINUTE
        if hour == 100:
            blob = pickle.dumps(reader)
            assert len(blob) < 1_000 and reader._strike_draws
            reader = pickle.loads(blob)
            assert not reader._strike_draws and not reader._noise
        if hour == 200:
            state = pickle.loads(pickle.dumps(reader)).__dict__
            del state["_strike_draws"]
            reader = SimulatedOptionsChain.__new__(SimulatedOptionsChain)
            reader.__setstate__(state)
        fresh = SimulatedOptionsChain(seed=3).chain("SPY", spot, as_of)
        assert reader.exposure("SPY", spot, as_of) == gamma_exposure(fresh), hour
        reads += 1
    assert reads == 288
