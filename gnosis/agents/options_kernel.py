"""The simulated options chain's gamma exposure in one compiled call.

``SimulatedOptionsChain.chain`` (the readable specification) builds 84 contracts and
``gamma_exposure`` walks them; on the fast path that read cost ~400 µs once an hour of bars,
the slowest bar of the pipeline. ``sim_exposure`` does the same floating-point operations in
the same order on the chain's numbers without building it, so its (net, gross, wall) equals
``gamma_exposure(chain(...))`` bit for bit (tests/unit/test_options_kernel.py checks many
chains; the parity tests check whole runs):

- sums run left to right in contract order (strike, then expiry, then call before put);
- the wall is the first strike with the largest (gross, -distance to spot), as ``max`` keeps;
- ``x ** 2`` is CPython's ``pow(x, 2.0)`` from the C library, which is not always ``x * x``:
  the exponent is passed in (``two``) so the compiler cannot turn the call into a multiply;
- the per-day draws (``noise``) and the hour's wall come from Python, which hashes them.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from gnosis.agents.hedge import NANOS_PER_YEAR, RISK_FREE


@njit(cache=True)
def sim_exposure(spot: float, step: float, wall: float, wall_step: float, tilt: float,
                 center: float, strikes_each_side: int, base_iv: float, noise: np.ndarray,
                 ts_event: int, expiry_near: int, expiry_far: int,
                 two: float) -> tuple[float, float, float]:
    """(net GEX, gross GEX, wall strike) of the simulated chain described by the arguments
    (see ``SimulatedOptionsChain.chain``); ``noise[j]`` is the draw of the j-th strike."""
    scale = 100.0 * spot * spot * 0.01
    years_near = (expiry_near - ts_event) / NANOS_PER_YEAR
    years_far = (expiry_far - ts_event) / NANOS_PER_YEAR
    sqrt_pi2 = math.sqrt(2.0 * math.pi)
    net = 0.0
    gross = 0.0
    best_strike = spot
    best_total = -1.0
    best_distance = 0.0
    found = False
    count = 2 * strikes_each_side + 1
    for j in range(count):
        strike = center + (j - strikes_each_side) * step
        if strike <= 0:
            continue
        moneyness = math.log(strike / spot)
        iv = base_iv * (1.0 - 1.8 * moneyness + 12.0 * moneyness * moneyness)
        if iv < 0.05:  # max(iv, 0.05) keeps iv unless 0.05 is strictly larger
            iv = 0.05
        distance = abs(strike - spot) / (spot * 0.01)
        base = 2_000.0 * math.exp(-0.5 * distance * distance)
        ratio = strike / wall_step
        round_bonus = 2.5 if abs(ratio - np.round(ratio)) < 1e-9 else 1.0
        wall_bonus = 4.0 if abs(strike - wall) < step / 2 else 1.0
        oi = base * round_bonus * wall_bonus * (0.7 + 0.6 * noise[j])
        call_oi = oi * (1.0 + 0.7 * tilt) * (1.3 if strike >= spot else 0.7)
        put_oi = oi * (1.0 - 0.7 * tilt) * (1.3 if strike <= spot else 0.7)
        total = 0.0
        seen = False
        for e in range(2):
            years = years_near if e == 0 else years_far
            weight = 1.0 if e == 0 else 0.6
            if years <= 0:
                continue
            # Black-Scholes gamma, as gnosis.agents.hedge.contract_gamma writes it
            sqrt_t = math.sqrt(years)
            d1 = (1.0 / (iv * sqrt_t)) * (math.log(spot / strike)
                                          + (RISK_FREE + 0.5 * math.pow(iv, two)) * years)
            gamma = math.exp(-math.pow(d1, two) / 2.0) / sqrt_pi2 / (spot * iv * sqrt_t)
            for side in range(2):
                open_interest = np.round((call_oi if side == 0 else put_oi) * weight)
                if open_interest <= 0:
                    continue
                exposure = gamma * open_interest * scale
                net = net + exposure if side == 0 else net - exposure
                total = total + exposure
                seen = True
        if seen:
            gross = gross + total
            away = -abs(strike - spot)
            if not found or total > best_total or (total == best_total
                                                   and away > best_distance):
                best_strike, best_total, best_distance, found = strike, total, away, True
    if not found:
        return 0.0, 0.0, spot
    return net, gross, best_strike
