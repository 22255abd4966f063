"""Simulated headlines for the default market, their tone correlated with the market's phase.

Deterministic by (seed, symbol, bar): a headline appears on about ``rate`` of the synthetic
market's 1-minute bars and is published at the bar's close; in bullish
phases (trending up, accumulation) most headlines are bullish, in bearish phases (trending down,
distribution) most are bearish, otherwise they are mixed; a quarter of them go against the
phase, as real news does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gnosis.core import blake_kernel
from gnosis.core.hashing import unit_draw
from gnosis.model.market import Headline

BULLISH = (
    "{s} rallies as buyers step in after upbeat earnings guidance",
    "Analysts raise price targets on {s}, citing strong demand",
    "{s} climbs on record inflows into equity funds",
    "Upgrade lifts {s}; strategists see further gains ahead",
    "{s} gains as inflation cools more than expected",
    "Strong jobs report boosts confidence, {s} jumps",
    "Investors cheer robust consumer spending; {s} advances",
    "{s} hits a new high as the rally broadens",
    "Blowout results from megacaps send {s} higher",
    "Fed signals patience, markets welcome relief and {s} rises",
    "{s} surges on optimism over a trade agreement",
    "Bulls in control as {s} extends its winning streak",
    "Solid manufacturing data lifts sentiment; {s} up",
    "{s} rebounds strongly as dip buyers return",
    "Earnings beats pile up, a great quarter for {s} holders",
    "Upbeat outlook from retailers helps {s} gain",
)
BEARISH = (
    "{s} slides as recession fears grip investors",
    "Analysts cut targets on {s} amid weak demand",
    "{s} falls after disappointing earnings and a grim outlook",
    "Downgrade hits {s}; strategists warn of further losses",
    "{s} drops as inflation runs hotter than feared",
    "Weak jobs data rattles markets, {s} tumbles",
    "Selloff deepens as {s} breaks below support",
    "Investors flee risk; {s} sinks on heavy volume",
    "Fed hawkishness spooks traders, {s} declines",
    "{s} plunges amid a banking scare",
    "Bears tighten grip as {s} posts its worst week in months",
    "Profit warnings mount; {s} under pressure",
    "Trade tensions escalate, {s} falls sharply",
    "{s} slumps as bond yields spike",
    "Panic selling hits {s} after a surprise default",
    "Gloomy guidance from chipmakers drags {s} lower",
)
NEUTRAL = (
    "{s} little changed ahead of the Fed minutes",
    "{s} trades flat as investors await CPI data",
    "Markets mixed; {s} holds in a narrow range",
    "{s} steady in quiet pre-holiday session",
    "Traders eye next week's earnings; {s} unchanged",
    "{s} drifts sideways as volume thins",
    "Options expiry keeps {s} pinned near round strikes",
    "{s} flat after an in-line economic report",
    "Investors weigh mixed signals; {s} range-bound",
    "{s} consolidates recent moves",
    "Analysts split on the outlook for {s}",
    "{s} edges sideways in light trading",
    "Quiet session for {s} as the calendar stays empty",
    "{s} holds steady, volatility subdued",
    "Wall Street waits on central bank remarks; {s} flat",
    "{s} treads water ahead of the jobs report",
)
PHASE_TONE = {
    "trending_up": BULLISH, "accumulation": BULLISH,
    "trending_down": BEARISH, "distribution": BEARISH,
}
NANOS_PER_MINUTE = 60 * 10**9
CHUNK_BARS = 64  # occurrence draws hashed per compiled call: about an hour of 1-minute bars


class SimulatedNewsProvider:
    """``headlines(symbol, after_ns, until_ns)`` for the synthetic market.

    The occurrence draw of a bar, ``key_draw(f"{seed}|{symbol}|{ts_event}|news")``, is asked
    on every bar (~1 µs of hashlib each): it is read from the symbol's latest chunk of draws
    instead, ``CHUNK_BARS`` minutes hashed in one compiled call (gnosis.core.blake_kernel) and
    kept as {ts_event: draw}, the same numbers bit for bit (tests/unit/test_news_draws.py). A
    bar off the chunk's minute grid, or outside it, starts a new chunk at that bar. The chunks
    are a cache: left out of the pickled state, rebuilt on demand."""

    def __init__(self, phase_of: Callable[[str, int], str], seed: int = 0,
                 rate: float = 1 / 45, off_tone: float = 0.25) -> None:
        self.phase_of = phase_of
        self.seed = seed
        self.rate = rate
        self.off_tone = off_tone
        self._draws: dict[str, dict[int, float]] = {}  # symbol -> {ts_event: draw}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_draws", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Also loads a provider pickled before the cache existed."""
        self.__dict__.update(state)
        self._draws = {}

    def _new_chunk(self, symbol: str, ts_event: int) -> float:
        """The occurrence draws of ``symbol``'s bars ts_event, ts_event + 1 min, ... (replacing
        its previous chunk); returns the first."""
        draws = blake_kernel.key_draws(f"{self.seed}|{symbol}|", ts_event, NANOS_PER_MINUTE,
                                       CHUNK_BARS, "|news")
        self._draws[symbol] = dict(
            zip(range(ts_event, ts_event + CHUNK_BARS * NANOS_PER_MINUTE, NANOS_PER_MINUTE),
                draws))
        return draws[0]

    def headlines(self, symbol: str, after_ns: int, until_ns: int) -> Sequence[Headline]:
        """The headline (if any) of the 1-minute bar that closes at ``until_ns``: a caller
        asking bar by bar, (previous close, this close], meets every simulated headline once
        (between sessions there are no simulated bars, hence no simulated news)."""
        if until_ns <= after_ns:
            return ()
        ts_event = until_ns - NANOS_PER_MINUTE
        chunk = self._draws.get(symbol)  # every bar: key_draw(f"{seed}|{symbol}|{ts}|news")
        draw = None if chunk is None else chunk.get(ts_event)
        if draw is None:
            draw = self._new_chunk(symbol, ts_event)
        if draw >= self.rate:
            return ()
        try:
            phase = self.phase_of(symbol, ts_event)
        except KeyError:  # a bar outside the simulated sessions has no simulated news
            return ()
        tone = PHASE_TONE.get(phase)
        pick = unit_draw(self.seed, symbol, ts_event, "tone")
        if tone is None:
            pool = (BULLISH, BEARISH, NEUTRAL, NEUTRAL)[int(pick * 4)]
        elif pick < self.off_tone:
            pool = BEARISH if tone is BULLISH else BULLISH
        else:
            pool = tone
        template = pool[int(unit_draw(self.seed, symbol, ts_event, "text") * len(pool))]
        return (Headline(until_ns, (symbol,), template.format(s=symbol), source="simulated"),)
