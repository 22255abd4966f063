"""A simulated options chain consistent with the price path, for the Hedge agent offline.

Around the current spot it lists strikes on the exchange's usual grid, two expiries (the next
day's and the one four sessions out), an implied-volatility smile with put skew, and an
open-interest profile that peaks at round strikes near spot. Dealer positioning drifts slowly
(over days) between net long and net short gamma, so the Hedge agent meets both regimes.
Greeks are deliberately left out, as some real feeds do; the agent computes them.

Everything is a pure function of (seed, symbol, bar, spot): the same call gives the same
chain, which keeps backtests and restarts deterministic. It exists only on the synthetic market
(whose bars are one minute long): the chain asked for at a bar's close is drawn for that bar.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from gnosis.core.hashing import unit_draw
from gnosis.model.market import CALL, PUT, OptionContract, OptionsChain

NANOS_PER_DAY = 86_400 * 10**9
NANOS_PER_HOUR = 3_600 * 10**9
NANOS_PER_MINUTE = 60 * 10**9


def strike_step(spot: float) -> float:
    if spot < 25:
        return 0.5
    if spot < 500:
        return 1.0
    return 5.0


class _Layout(NamedTuple):
    """What a chain read at one bar rests on, shared by ``chain`` and ``exposure``."""

    ts_event: int
    step: float
    wall_step: float
    wall: float
    tilt: float
    center: float
    day: int
    expiries: tuple[int, int]
    noise: np.ndarray  # each strike's open-interest draw, strikes from the lowest


class SimulatedOptionsChain:
    """``chain(symbol, spot, as_of_ns)`` for the simulated market."""

    def __init__(self, seed: int = 0, strikes_each_side: int = 10, base_iv: float = 0.16,
                 positioning_days: float = 6.0) -> None:
        self.seed = seed
        self.strikes_each_side = strikes_each_side
        self.base_iv = base_iv
        self.positioning_days = positioning_days
        self._phases: dict[str, float] = {}  # symbol -> its positioning phase draw
        self._noise: dict[tuple[str, int, float, float], np.ndarray] = {}  # the day's OI draws
        self._strike_draws: dict[tuple[str, int, float], float] = {}  # (symbol, day, strike)

    def _phase(self, symbol: str) -> float:
        phase = self._phases.get(symbol)
        if phase is None:
            phase = self._phases[symbol] = 2 * math.pi * unit_draw(self.seed, symbol, "phase")
        return phase

    def positioning(self, symbol: str, ts_event: int) -> float:
        """Dealer gamma tilt in [-1, 1]: +1 dealers long calls / short few puts (long gamma)."""
        days = ts_event / NANOS_PER_DAY
        phase = self._phase(symbol)
        slow = math.sin(2 * math.pi * days / self.positioning_days + phase)
        wobble = 0.35 * math.sin(2 * math.pi * days / 1.7 + 2 * phase)
        return max(-1.0, min(1.0, slow + wobble))

    def _layout(self, symbol: str, spot: float, as_of_ns: int) -> _Layout:
        ts_event = as_of_ns - NANOS_PER_MINUTE  # the start of the 1-minute bar closing now
        step = strike_step(spot)
        wall_step = 5 * step
        hour = ts_event // NANOS_PER_HOUR
        # the open-interest wall sits on a round strike near spot, shifting a little by the hour
        shift = int(unit_draw(self.seed, symbol, hour) * 3) - 1
        center = round(spot / step) * step
        day = ts_event // NANOS_PER_DAY
        return _Layout(ts_event, step, wall_step, (round(spot / wall_step) + shift) * wall_step,
                       self.positioning(symbol, ts_event), center, day,
                       ((day + 1) * NANOS_PER_DAY + 20 * NANOS_PER_HOUR,
                        (day + 4) * NANOS_PER_DAY + 20 * NANOS_PER_HOUR),
                       self._day_noise(symbol, day, center, step))

    def chain(self, symbol: str, spot: float, as_of_ns: int) -> OptionsChain | None:
        if not spot > 0:
            return None
        ts_event, step, wall_step, wall, tilt, center, day, expiries, noise = self._layout(
            symbol, spot, as_of_ns)
        draws = noise.tolist()
        contracts = []
        for j, i in enumerate(range(-self.strikes_each_side, self.strikes_each_side + 1)):
            strike = round(center + i * step, 2)
            if strike <= 0:
                continue
            moneyness = math.log(strike / spot)
            iv = self.base_iv * (1.0 - 1.8 * moneyness + 12.0 * moneyness * moneyness)
            iv = max(iv, 0.05)
            distance = abs(strike - spot) / (spot * 0.01)
            base = 2_000.0 * math.exp(-0.5 * distance * distance)
            round_bonus = 2.5 if abs(strike / wall_step - round(strike / wall_step)) < 1e-9 else 1.0
            wall_bonus = 4.0 if abs(strike - wall) < step / 2 else 1.0
            oi = base * round_bonus * wall_bonus * (0.7 + 0.6 * draws[j])
            call_oi = oi * (1.0 + 0.7 * tilt) * (1.3 if strike >= spot else 0.7)
            put_oi = oi * (1.0 - 0.7 * tilt) * (1.3 if strike <= spot else 0.7)
            for expiry in expiries:
                weight = 1.0 if expiry == expiries[0] else 0.6
                for right, open_interest in ((CALL, call_oi), (PUT, put_oi)):
                    contracts.append(OptionContract(
                        symbol=f"{symbol}{expiry // NANOS_PER_DAY}{right[0].upper()}{strike:g}",
                        underlying=symbol, expiry_ts=expiry, strike=strike, right=right,
                        open_interest=round(open_interest * weight), implied_vol=iv,
                    ))
        return OptionsChain(symbol, ts_event, spot, tuple(contracts))

    def exposure(self, symbol: str, spot: float,
                 as_of_ns: int) -> tuple[float, float, float] | None:
        """``gamma_exposure(self.chain(symbol, spot, as_of_ns))`` without building the chain
        (None where ``chain`` gives no contracts): the fast path's read, equal bit for bit
        (see ``gnosis.agents.options_kernel``)."""
        from gnosis.agents.options_kernel import sim_exposure

        if not spot > 0:
            return None
        ts_event, step, wall_step, wall, tilt, center, _, expiries, noise = self._layout(
            symbol, spot, as_of_ns)
        side = self.strikes_each_side
        if not round(center + side * step, 2) > 0:
            return None  # every strike would be <= 0: no contracts
        return sim_exposure(spot, step, wall, wall_step, tilt, center, side, self.base_iv,
                            noise, ts_event, expiries[0], expiries[1], 2.0)

    def _day_noise(self, symbol: str, day: int, center: float, step: float) -> np.ndarray:
        """The open-interest draws of the strikes around ``center`` (as ``chain`` draws them),
        kept for the day: the center moves a strike or two between hourly reads, so each
        strike's draw is hashed once a day and the arrays are assembled from those."""
        key = (symbol, day, center, step)
        noise = self._noise.get(key)
        if noise is None:
            if len(self._noise) >= 4096 or len(self._strike_draws) >= 16384:
                self._noise.clear()
                self._strike_draws.clear()
            side = self.strikes_each_side
            draws = self._strike_draws
            row = []
            for i in range(-side, side + 1):
                strike = round(center + i * step, 2)
                if strike > 0:
                    draw = draws.get((symbol, day, strike))
                    if draw is None:
                        draw = draws[(symbol, day, strike)] = unit_draw(self.seed, symbol,
                                                                        strike, day)
                    row.append(draw)
                else:
                    row.append(0.0)
            noise = self._noise[key] = np.array(row)
        return noise

    def __getstate__(self) -> dict[str, object]:
        """The parameters only: the caches are pure functions of them, rebuilt on use (a live
        commit pickles the chain with each symbol's state)."""
        return {**self.__dict__, "_phases": {}, "_noise": {}, "_strike_draws": {}}

    def __setstate__(self, state: dict[str, object]) -> None:
        state.setdefault("_strike_draws", {})  # pickled before the per-strike draws were kept
        self.__dict__.update(state)
