"""Public response schemas: what the dashboard API promises (and all it may ever serve).

Every response goes through one of these models, so a field that is not declared here (a
setting, a credential, an internal id) cannot reach a client even if it slips into the state.
Unknown keys are dropped rather than refused: the engine's events may gain fields.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Public(BaseModel):
    model_config = ConfigDict(extra="ignore")


class BarView(_Public):
    symbol: str
    time: int = Field(description="bar start, epoch seconds UTC")
    open: float
    high: float
    low: float
    close: float
    volume: float


class VoteView(_Public):
    agent: str
    signal: int
    confidence: float | None
    reasoning: str
    abstained: bool = False
    active: bool = Field(True, description="false: switched off by the regime (reasoning says why)")


class DecisionView(_Public):
    signal: int
    confidence: float | None
    reasoning: str = ""
    quantity: float | None = Field(None, description="signed quantity sent (0: none)")
    note: str = ""


class AgentVotesView(_Public):
    symbol: str
    ts: str | None
    close: float | None = None
    decision: DecisionView
    votes: list[VoteView]


class RegimeView(_Public):
    symbol: str
    ts: str | None = None
    primary: str | None = None
    confidence: float | None = None
    ready: bool = False
    trend_strength: float | None = None
    volatility: float | None = Field(None, description="annualized for the bar interval")
    volatility_class: str | None = None
    range_position: float | None = None
    hmm_state: str | None = None
    hmm_probabilities: dict[str, float | None] | None = None
    reason: str | None = None
    bars_seen: int | None = None


class PositionView(_Public):
    symbol: str
    side: Literal["long", "short"]
    quantity: float | None
    entry_price: float | None
    last_price: float | None
    unrealized_pnl: float | None
    unrealized_pct: float | None = None
    market_value: float | None = None
    stop_price: float | None = None
    target_price: float | None = None
    opened_time: int | None = None
    opened_ts: str | None = None


class TradeView(_Public):
    symbol: str
    side: str
    quantity: float | None
    entry_price: float | None
    exit_price: float | None
    entry_time: int
    exit_time: int
    entry_ts: str | None = None
    exit_ts: str | None = None
    bars_held: int
    pnl: float | None
    return_pct: float | None
    fees: float | None = None
    exit_reason: str


class PortfolioView(_Public):
    time: int | None = None
    ts: str | None = None
    initial_capital: float | None = None
    cash: float | None = None
    equity: float | None = None
    pnl: float | None = None
    pnl_pct: float | None = None
    realized_pnl: float | None = None
    unrealized_pnl: float | None = None
    daily_pnl: float | None = None
    daily_pnl_pct: float | None = None
    fees: float | None = None
    trades: int = 0
    wins: int = 0
    win_rate: float | None = None
    drawdown: float | None = None
    max_drawdown: float | None = None
    high_water_mark: float | None = None
    exposure: float | None = None
    open_positions: int = 0
    trading_state: str | None = None


class TradingStateView(_Public):
    state: str
    previous: str | None = None
    reason: str = ""
    ts: str | None = None


class NoticeView(_Public):
    id: int | None = None
    kind: str
    message: str
    symbol: str | None = None
    ts: str | None = None
    at: str | None = None


class EpisodeView(_Public):
    episode_id: str
    symbol: str
    entry_ts: str | None
    exit_ts: str | None
    regime: str | None
    signal: int
    return_pct: float | None
    exit_reason: str
    similarity: float | None
    weight: float | None
    lesson: str = ""


class MemoryRecallView(_Public):
    id: int | None = None
    symbol: str
    ts: str | None
    signal: int
    regime: str | None = None
    confidence_before: float | None
    confidence_after: float | None
    size_scale: float | None
    reason: str
    win_rate: float | None = None
    alignment: float | None = None
    episodes: list[EpisodeView]


class MemoryView(_Public):
    available: bool
    status: str
    recalls: list[MemoryRecallView] = []


class EquityPoint(_Public):
    time: int
    value: float


class SymbolView(_Public):
    regime: RegimeView | None = None
    votes: AgentVotesView | None = None
    last_bar: BarView | None = None


class InfoView(_Public):
    instance: str | None = None
    strategy: str | None = None
    symbols: list[str] = []
    initial_cash: float | None = None
    started: str | None = None
    mode: Literal["attached", "standalone"] = "attached"
    read_only: bool = False
    control_enabled: bool = False
    published_at: str | None = Field(None, description="standalone: when the bot last wrote")


class StateView(_Public):
    available: bool = True
    unavailable_reason: str | None = None
    seq: int = 0
    info: InfoView
    symbols: dict[str, SymbolView] = {}
    positions: list[PositionView] = []
    portfolio: PortfolioView | None = None
    trading_state: TradingStateView | None = None
    trades: list[TradeView] = Field([], description="the last 20 trades, newest first")
    trades_total: int = 0
    notices: list[NoticeView] = Field([], description="recent activity, newest first")
    memory: MemoryView
    equity_curve: list[EquityPoint] = []


class PositionsView(_Public):
    positions: list[PositionView]


class TradesPage(_Public):
    symbol: str | None
    offset: int
    limit: int
    total: int = Field(description="retained trades matching the filter")
    items: list[TradeView] = Field(description="newest first")


class BarsView(_Public):
    symbol: str
    bars: list[BarView] = Field(description="oldest first")


class RegimesView(_Public):
    symbols: dict[str, RegimeView | None]


class HealthView(_Public):
    status: Literal["ok", "no_data"]
    mode: Literal["attached", "standalone"]
    read_only: bool
    seq: int
    clients: int
    dropped_clients: int
    messages: int
    chart_library: bool
    published_at: str | None = None
    detail: str | None = None


class CommandRequest(_Public):
    reason: str = Field("", max_length=200)


class CommandAccepted(_Public):
    command: Literal["halt", "resume", "flatten"]
    accepted: bool
    detail: str
