"""The risk gate: sizing, stops, limits and the trading state machine (DESIGN §5).

Entries pass through ``approve_entry``; the answer is an ``Approval`` or a ``Refusal`` with a
reason, never an exception. ``on_equity`` runs every bar and moves the trading state:
ACTIVE → REDUCING (daily loss limit: exits only until the next session) and → HALTED
(drawdown circuit breaker: flatten and stay halted until a person resumes).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python gnosis/trading/risk_manager.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gnosis.core.config import RiskConfig
from gnosis.model.types import TradingState

_NANOS_PER_DAY = 86_400 * 1_000_000_000
# Regular and extended US sessions never straddle midnight in New York; shifting UTC by five
# hours gives one id per New York trading date (EST or EDT alike) with O(1) integer work.
_NEW_YORK_SHIFT = 5 * 3_600 * 1_000_000_000


def trading_day(ts_ns: int) -> int:
    """An integer that changes exactly when the New York trading date changes."""
    return (ts_ns - _NEW_YORK_SHIFT) // _NANOS_PER_DAY


@dataclass(frozen=True, slots=True)
class Approval:
    quantity: float
    stop_price: float
    target_price: float
    stop_pct: float
    weight: float  # fraction of equity the position is sized at
    reasoning: str


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str  # for people: the rule and the numbers that tripped it
    rule: str = "other"  # for tallies: a stable key per rule


@dataclass(frozen=True, slots=True)
class StateChange:
    previous: TradingState
    current: TradingState
    reason: str
    flatten: bool = False


def kelly_fraction(confidence: float, reward_risk: float) -> float:
    """Kelly's optimal bet fraction for win probability ``confidence`` at ``reward_risk`` : 1."""
    return confidence - (1.0 - confidence) / reward_risk


class RiskManager:
    """Gate every entry against the limits; track daily loss and drawdown."""

    def __init__(self, config: RiskConfig | None = None) -> None:
        self.config = config or RiskConfig()
        self.state = TradingState.ACTIVE
        self.state_reason = "start"
        self.high_water_mark = 0.0
        self.day = -1
        self.day_start_equity = 0.0
        self.last_equity = 0.0
        self._next_day_ns = -(2**62)  # the first bar always starts a day
        self._halt_below = -math.inf
        self._reduce_below = -math.inf

    # -- state machine --------------------------------------------------------------------------
    @property
    def daily_pnl(self) -> float:
        return self.last_equity - self.day_start_equity

    @property
    def drawdown(self) -> float:
        """Current drawdown from the high-water mark as a negative fraction (0 at the peak)."""
        if self.high_water_mark <= 0:
            return 0.0
        return self.last_equity / self.high_water_mark - 1.0

    def on_equity(self, ts_ns: int, equity: float) -> StateChange | None:
        """Fold in the latest equity; return a state change when a limit is crossed.

        Runs on every bar, so the limits are kept as precomputed equity levels: the common
        case is three comparisons. A new day's loss is measured from the previous day's last
        equity, so an overnight gap counts against the new day.
        """
        previous_equity = self.last_equity
        self.last_equity = equity
        change: StateChange | None = None
        if ts_ns >= self._next_day_ns:
            change = self._start_day(ts_ns, previous_equity if previous_equity > 0 else equity)
        if equity > self.high_water_mark:
            self.high_water_mark = equity
            self._halt_below = equity * (1.0 - self.config.max_drawdown_pct)
        if equity <= self._halt_below and self.state is not TradingState.HALTED:
            cfg = self.config
            return self._move(
                TradingState.HALTED,
                f"drawdown {self.drawdown:.2%} breached -{cfg.max_drawdown_pct:.0%} from the "
                f"high-water mark {self.high_water_mark:,.2f}: flatten and halt until resumed",
                flatten=True,
                since=change,
            )
        if equity <= self._reduce_below and self.state is TradingState.ACTIVE:
            return self._move(
                TradingState.REDUCING,
                f"daily loss {self.daily_pnl / self.day_start_equity:.2%} (from the previous "
                f"close {self.day_start_equity:,.2f}) hit the "
                f"-{self.config.daily_loss_limit_pct:.0%} limit: exits only for the rest of "
                "the day",
                since=change,
            )
        return change

    def _start_day(self, ts_ns: int, previous_close: float) -> StateChange | None:
        self.day = trading_day(ts_ns)
        self._next_day_ns = (self.day + 1) * _NANOS_PER_DAY + _NEW_YORK_SHIFT
        self.day_start_equity = previous_close
        self._reduce_below = previous_close * (1.0 - self.config.daily_loss_limit_pct)
        if self.state is TradingState.REDUCING:
            return self._move(TradingState.ACTIVE, "new trading day: daily loss limit reset")
        return None

    def resume(self, reason: str = "resumed by operator") -> StateChange | None:
        """A person lifts a halt; the high-water mark restarts from the current equity."""
        if self.state is TradingState.ACTIVE:
            return None
        self.high_water_mark = self.last_equity
        self._halt_below = self.last_equity * (1.0 - self.config.max_drawdown_pct)
        self._reduce_below = -math.inf  # a person decided: no daily limit until the next day
        return self._move(TradingState.ACTIVE, reason)

    def halt(self, reason: str = "halted by operator") -> StateChange | None:
        if self.state is TradingState.HALTED:
            return None
        return self._move(TradingState.HALTED, reason, flatten=False)

    def _move(self, state: TradingState, reason: str, flatten: bool = False,
              since: StateChange | None = None) -> StateChange:
        """Change state; ``since`` is a change earlier on the same bar that this one follows
        (the reported change starts from the state before both)."""
        previous = self.state if since is None else since.previous
        change = StateChange(previous, state, reason, flatten)
        self.state = state
        self.state_reason = reason
        return change

    # -- the gate ----------------------------------------------------------------------------
    def stop_distance(self, confidence: float, volatility: float) -> float:
        """Stop distance as a fraction of price: the base stop widened for low confidence and
        high volatility, capped."""
        cfg = self.config
        confidence_widen = 1.0 + 0.5 * (1.0 - min(max(confidence, 0.0), 1.0))
        vol_ratio = volatility / cfg.target_volatility if volatility > 0 else 1.0
        volatility_widen = min(max(vol_ratio, 1.0), 2.0)
        return min(cfg.stop_loss_pct * confidence_widen * volatility_widen, cfg.max_stop_loss_pct)

    def approve_entry(
        self,
        *,
        signal: int,
        confidence: float,
        price: float,
        volatility: float,
        equity: float,
        gross_exposure: float,
        open_positions: int,
        size_scale: float = 1.0,
    ) -> Approval | Refusal:
        """Size an entry, or refuse it with the first limit it would break.

        ``gross_exposure`` and ``open_positions`` must include working entry orders.
        ``size_scale`` (episodic memory's advice) scales the sizing before any cap applies.
        """
        refusal = self._gate(signal, confidence, price, equity, open_positions)
        if refusal is not None:
            return refusal
        cfg = self.config
        edge = kelly_fraction(confidence, cfg.reward_risk)
        if edge <= 0:
            return Refusal(
                f"no Kelly edge at confidence {confidence:.2f} and {cfg.reward_risk:g}:1 "
                "reward:risk", "no_kelly_edge"
            )
        vol_scale = self.volatility_scale(volatility)
        weight = min(cfg.kelly_fraction * edge * vol_scale * size_scale, cfg.max_position_pct)
        room = cfg.max_total_exposure_pct * equity - gross_exposure
        quantity = self._quantity(weight, equity, room, price)
        if isinstance(quantity, Refusal):
            return quantity
        if quantity < 1:
            if room < weight * equity and room < price:  # the exposure limit is what binds
                return Refusal(
                    f"total exposure limit: {gross_exposure / equity:.1%} of "
                    f"{cfg.max_total_exposure_pct:.0%} used", "total_exposure"
                )
            return Refusal(
                f"size rounds to zero shares (weight {weight:.2%} at {price:.2f})",
                "zero_size",
            )
        stop_pct = self.stop_distance(confidence, volatility)
        stop = price * (1.0 - signal * stop_pct)
        target = price * (1.0 + signal * cfg.reward_risk * stop_pct)
        return Approval(
            quantity=float(quantity),
            stop_price=stop,
            target_price=target,
            stop_pct=stop_pct,
            weight=quantity * price / equity,
            reasoning=(
                f"kelly {edge:.2f}×{cfg.kelly_fraction:g} × vol scale {vol_scale:.2f}"
                + (f" × memory {size_scale:.2f}" if size_scale != 1.0 else "")
                + f" → {quantity * price / equity:.1%} of equity; stop {stop_pct:.2%}, "
                f"target {cfg.reward_risk * stop_pct:.2%}"
            ),
        )

    def _gate(self, signal: int, confidence: float, price: float, equity: float,
              open_positions: int) -> Refusal | None:
        """The rules that refuse an entry whatever its size."""
        cfg = self.config
        if self.state is TradingState.HALTED:
            return Refusal(f"halted: {self.state_reason}", "halted")
        if self.state is TradingState.REDUCING:
            return Refusal(f"reducing (exits only): {self.state_reason}", "reducing")
        if signal not in (-1, 1):
            return Refusal("no direction", "no_direction")
        if signal < 0 and not cfg.allow_shorts:
            return Refusal("shorts are disabled", "shorts_disabled")
        if not (price > 0 and math.isfinite(price)):
            return Refusal(f"no usable price ({price})", "bad_price")
        if equity <= 0:
            return Refusal("no equity", "no_equity")
        if confidence < cfg.min_confidence:
            return Refusal(
                f"confidence {confidence:.2f} < minimum {cfg.min_confidence:.2f}",
                "min_confidence",
            )
        if open_positions >= cfg.max_positions:
            return Refusal(
                f"max open positions reached ({open_positions}/{cfg.max_positions})",
                "max_positions",
            )
        return None

    def volatility_scale(self, volatility: float) -> float:
        """Target volatility over realized volatility, clipped to the configured bounds."""
        cfg = self.config
        low, high = cfg.volatility_scale_bounds
        scale = cfg.target_volatility / volatility if volatility > 0 else 1.0
        return min(max(scale, low), high)

    def _quantity(self, weight: float, equity: float, room: float,
                  price: float) -> int | Refusal:
        """Whole shares for ``weight`` of equity within the exposure room (or a fixed size)."""
        cfg = self.config
        if cfg.fixed_quantity > 0:
            quantity = math.floor(cfg.fixed_quantity)
            cap = min(cfg.max_position_pct * equity, room)
            if quantity * price > cap:
                return Refusal(
                    f"fixed quantity {quantity:g} × {price:.2f} exceeds the limit {cap:,.2f}",
                    "fixed_quantity_limit",
                )
            return quantity
        return math.floor(min(weight * equity, room) / price)

    # -- persistence ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "reason": self.state_reason,
            "hwm": self.high_water_mark,
            "day": self.day,
            "day_start": self.day_start_equity,
            "last": self.last_equity,
            "next_day": self._next_day_ns,
            "halt_below": self._halt_below,
            "reduce_below": self._reduce_below,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.state = TradingState(state["state"])
        self.state_reason = state["reason"]
        self.high_water_mark = state["hwm"]
        self.day = state["day"]
        self.day_start_equity = state["day_start"]
        self.last_equity = state["last"]
        self._next_day_ns = state["next_day"]
        self._halt_below = state["halt_below"]
        self._reduce_below = state["reduce_below"]


def _demo() -> None:
    """Show sizing across confidences and volatilities, then the breakers tripping."""
    risk = RiskManager()
    t0 = 1_704_205_800_000_000_000
    risk.on_equity(t0, 100_000.0)
    print("RiskManager demo: equity $100,000, SPY @ 450")
    print(f"  {'conf':>5} {'vol':>5}  result")
    for confidence in (0.3, 0.5, 0.7, 0.9):
        for volatility in (0.10, 0.30):
            answer = risk.approve_entry(
                signal=1, confidence=confidence, price=450.0, volatility=volatility,
                equity=100_000.0, gross_exposure=0.0, open_positions=0,
            )
            text = (
                f"BUY {answer.quantity:.0f} sh, stop {answer.stop_price:.2f}, "
                f"target {answer.target_price:.2f} ({answer.reasoning})"
                if isinstance(answer, Approval)
                else f"refused: {answer.reason}"
            )
            print(f"  {confidence:5.2f} {volatility:5.0%}  {text}")
    full = risk.approve_entry(signal=-1, confidence=0.8, price=450.0, volatility=0.15,
                              equity=100_000.0, gross_exposure=29_900.0, open_positions=2)
    print(f"  with 29.9% exposure already: {full}")
    crowded = risk.approve_entry(signal=1, confidence=0.8, price=450.0, volatility=0.15,
                                 equity=1e5, gross_exposure=0.0, open_positions=3)
    print(f"  with 3 positions open: {crowded}")
    print(f"  equity falls to 94,900 the same day -> {risk.on_equity(t0 + 60 * 10**9, 94_900.0)}")
    print(f"  next day equity 95,000 -> {risk.on_equity(t0 + 86_400 * 10**9, 95_000.0)}")
    print(f"  equity falls to 89,900 -> {risk.on_equity(t0 + 86_460 * 10**9, 89_900.0)}")
    print(f"  state now {risk.state.value}; resume -> {risk.resume()}")


if __name__ == "__main__":
    _demo()
