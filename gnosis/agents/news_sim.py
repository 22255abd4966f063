"""Simulated headlines for the default market, their tone correlated with the market's phase.

Deterministic by (seed, symbol, bar): a headline appears on about ``rate`` of the synthetic
market's 1-minute bars and is published at the bar's close; in bullish
phases (trending up, accumulation) most headlines are bullish, in bearish phases (trending down,
distribution) most are bearish, otherwise they are mixed; a quarter of them go against the
phase, as real news does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gnosis.core.hashing import key_draw, unit_draw
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


class SimulatedNewsProvider:
    """``headlines(symbol, after_ns, until_ns)`` for the synthetic market."""

    def __init__(self, phase_of: Callable[[str, int], str], seed: int = 0,
                 rate: float = 1 / 45, off_tone: float = 0.25) -> None:
        self.phase_of = phase_of
        self.seed = seed
        self.rate = rate
        self.off_tone = off_tone

    def headlines(self, symbol: str, after_ns: int, until_ns: int) -> Sequence[Headline]:
        """The headline (if any) of the 1-minute bar that closes at ``until_ns``: a caller
        asking bar by bar, (previous close, this close], meets every simulated headline once
        (between sessions there are no simulated bars, hence no simulated news)."""
        if until_ns <= after_ns:
            return ()
        ts_event = until_ns - NANOS_PER_MINUTE
        if key_draw(f"{self.seed}|{symbol}|{ts_event}|news") >= self.rate:  # every bar
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
