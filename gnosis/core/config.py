"""One typed, validated configuration tree.

Values come from (highest first) explicit arguments, environment variables with the ``GNOSIS_``
prefix (nested with ``__``, e.g. ``GNOSIS_RISK__MAX_POSITIONS=5``), a ``.env`` file, and the
defaults below. Unknown keys are rejected so a typo never silently falls back to a default.
Alpaca credentials are secrets: they are never logged, printed or served.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

ENV_PREFIX = "GNOSIS_"
ENV_FILE = ".env"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class RiskConfig(_Section):
    max_positions: int = Field(3, ge=1, le=100)
    max_position_pct: float = Field(0.15, gt=0, le=1)
    max_total_exposure_pct: float = Field(0.30, gt=0, le=4)
    daily_loss_limit_pct: float = Field(0.05, gt=0, lt=1)
    max_drawdown_pct: float = Field(0.10, gt=0, lt=1)
    stop_loss_pct: float = Field(0.02, gt=0, lt=0.5)
    max_stop_loss_pct: float = Field(0.05, gt=0, lt=0.5)
    reward_risk: float = Field(2.0, gt=0)
    kelly_fraction: float = Field(0.5, gt=0, le=1)
    target_volatility: float = Field(0.15, gt=0)
    volatility_scale_bounds: tuple[float, float] = (0.25, 2.0)
    min_confidence: float = Field(0.0, ge=0, le=1)
    allow_shorts: bool = True
    # Peer benchmarks: a fixed share quantity instead of Kelly × volatility sizing, and no
    # bracket orders. Limits still apply.
    fixed_quantity: float = Field(0.0, ge=0)
    brackets: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> RiskConfig:
        if self.max_stop_loss_pct < self.stop_loss_pct:
            raise ValueError("max_stop_loss_pct must be >= stop_loss_pct")
        if self.max_position_pct > self.max_total_exposure_pct:
            raise ValueError("max_position_pct must be <= max_total_exposure_pct")
        low, high = self.volatility_scale_bounds
        if not 0 < low <= high:
            raise ValueError("volatility_scale_bounds must be 0 < low <= high")
        return self


class PositionConfig(_Section):
    max_bars_held: int = Field(120, ge=1)


class ExecutionConfig(_Section):
    slippage_bps: float = Field(1.0, ge=0)
    impact_coefficient: float = Field(0.1, ge=0)
    max_participation: float = Field(0.10, gt=0, le=1)
    commission_per_share: float = Field(0.0, ge=0)
    sell_fee_bps: float = Field(0.278, ge=0)


class StrategyConfig(_Section):
    name: Literal["agents", "sma"] = "agents"
    # agents: the compiled per-bar step (identical decisions); false runs the reference objects
    fast: bool = True
    sma_fast: int = Field(10, ge=1)
    sma_slow: int = Field(30, ge=2)


class MemoryConfig(_Section):
    """Episodic memory (DESIGN §6): how recall weighs past episodes and how far it may nudge."""

    k: int = Field(20, ge=1, le=1000)  # the k most similar closed episodes are recalled
    min_similarity: float = Field(0.5, ge=-1, lt=1)  # less similar episodes are not evidence
    min_episodes: int = Field(3, ge=1)  # fewer comparable episodes: advice stays neutral
    half_life_days: float = Field(30.0, gt=0)  # recency: an episode's weight halves per period
    outcome_scale: float = Field(0.01, gt=0)  # |return| at which an outcome counts fully
    prior_weight: float = Field(3.0, ge=0)  # evidence weight at which half the effect applies
    strength: float = Field(1.0, ge=0, le=1)  # 0 recalls and reports but never adjusts
    max_confidence_change: float = Field(0.10, ge=0, le=0.5)
    size_scale_bounds: tuple[float, float] = (0.5, 1.5)
    max_candidates: int = Field(10_000, ge=100)  # most recent closed episodes a recall scans
    quick_exit_bars: int = Field(5, ge=1)  # reflection: an exit this soon is "at once"
    split_vote_agreement: float = Field(0.6, gt=0, le=1)  # reflection: below it a vote is split
    lock_timeout_s: float = Field(2.0, gt=0, le=60)  # wait for a reader holding the file

    @model_validator(mode="after")
    def _consistent(self) -> MemoryConfig:
        low, high = self.size_scale_bounds
        if not 0 < low <= 1.0 <= high <= 4.0:
            raise ValueError("size_scale_bounds must be 0 < low <= 1 <= high <= 4")
        return self


class MarketConfig(_Section):
    symbols: tuple[str, ...] = Field(("SPY",), min_length=1)
    seed: int = 7
    start: str = "2024-01-02"
    days: int = Field(20, ge=1)
    # history sessions `gnosis run` folds in before trading: 3 covers the HMM's first fit (bar
    # 600 of a 1-minute run, staggered by up to 59 bars) and the session it takes to take effect
    warmup_days: int = Field(3, ge=0)

    @field_validator("symbols")
    @classmethod
    def _tickers(cls, symbols: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(s.strip().upper() for s in symbols)
        for symbol in cleaned:
            if not symbol or not symbol.replace(".", "").replace("/", "").isalnum():
                raise ValueError(f"{symbol!r} is not a ticker symbol")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("a symbol is listed twice")
        return cleaned

    @field_validator("start")
    @classmethod
    def _iso_date(cls, start: str) -> str:
        try:
            date.fromisoformat(start)
        except ValueError:
            raise ValueError(f"{start!r} is not a date like 2024-01-02") from None
        return start


class AlpacaConfig(_Section):
    """How the Alpaca mode behaves (keys and URLs are separate: ``ALPACA_*`` variables)."""

    data_feed: Literal["iex", "sip"] = "iex"  # sip needs a paid market-data plan
    watchdog_s: float = Field(150.0, gt=0)  # no bar this long while open: reconnect the stream
    clock_poll_s: float = Field(30.0, gt=0)  # how often /v2/clock is asked
    order_poll_s: float = Field(10.0, gt=0)  # REST fallback when trade updates are missed
    stale_after_s: float = Field(120.0, ge=0)  # backfilled bars older than this (venue time)
    # are folded in without trading when orders go to Alpaca
    minute_grace_s: float = Field(3.0, ge=0)  # wait for every symbol's bar of a minute
    options_refresh_s: float = Field(300.0, gt=0)  # option chain snapshot refresh
    options_days: int = Field(14, ge=1)  # expiries up to this many days ahead
    news: bool = True


class GnosisConfig(BaseSettings):
    """The whole configuration tree."""

    # ``extra="ignore"``: a shared .env may hold other programs' keys (DATABASE_URL, ...);
    # unknown GNOSIS_* keys are caught by ``unknown_settings`` instead, so typos still stop us
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=ENV_FILE,
        extra="ignore",
        frozen=True,
        allow_inf_nan=False,
    )

    initial_cash: float = Field(100_000.0, gt=0)
    state_dir: Path = Path("gnosis-state")
    risk: RiskConfig = RiskConfig()
    positions: PositionConfig = PositionConfig()
    execution: ExecutionConfig = ExecutionConfig()
    strategy: StrategyConfig = StrategyConfig()
    market: MarketConfig = MarketConfig()
    alpaca: AlpacaConfig = AlpacaConfig()
    memory: MemoryConfig = MemoryConfig()
    # the dashboard's control token (GNOSIS_DASHBOARD_TOKEN) and where npm put the chart
    # library when it is not ./node_modules (GNOSIS_NODE_MODULES)
    dashboard_token: SecretStr | None = None
    node_modules: Path | None = None
    alpaca_api_key: SecretStr | None = Field(None, validation_alias="ALPACA_API_KEY")
    alpaca_secret_key: SecretStr | None = Field(None, validation_alias="ALPACA_SECRET_KEY")
    alpaca_base_url: str | None = Field(None, validation_alias="ALPACA_BASE_URL")
    alpaca_data_url: str | None = Field(None, validation_alias="ALPACA_DATA_URL")
    alpaca_stream_url: str | None = Field(None, validation_alias="ALPACA_STREAM_URL")


class ConfigError(ValueError):
    """Configuration that cannot be used, with a message a person can act on."""


def _settings_keys(environ: Mapping[str, str], env_file: Path) -> dict[str, str]:
    """Every GNOSIS_* key set in the environment or the .env file (key -> where)."""
    keys = {key: "environment" for key in environ if key.upper().startswith(ENV_PREFIX)}
    if env_file.is_file():
        from dotenv import dotenv_values

        for key in dotenv_values(env_file):
            if key.upper().startswith(ENV_PREFIX):
                keys.setdefault(key, str(env_file))
    return keys


def unknown_settings(environ: Mapping[str, str] | None = None,
                     env_file: Path = Path(ENV_FILE)) -> list[str]:
    """GNOSIS_* keys that name no setting, e.g. ``GNOSIS_RISK__MAX_POSITION`` (a typo)."""
    unknown = []
    for key, where in _settings_keys(os.environ if environ is None else environ,
                                     env_file).items():
        model: Any = GnosisConfig
        for part in key[len(ENV_PREFIX):].lower().split("__"):
            fields = getattr(model, "model_fields", None)
            if fields is None or part not in fields or part.startswith("alpaca_"):
                unknown.append(f"{key} (in the {where})")
                break
            model = fields[part].annotation
    return sorted(unknown)


def load_config(**overrides: object) -> GnosisConfig:
    """Build the configuration, turning validation errors into one readable message."""
    unknown = unknown_settings()
    unknown += [f"{key} (an argument)" for key in overrides
                if key not in GnosisConfig.model_fields]
    if unknown:
        raise ConfigError("unknown setting(s): " + ", ".join(unknown)
                          + "; check the spelling (see gnosis/core/config.py for every key)")
    try:
        return GnosisConfig(**overrides)  # type: ignore[arg-type]
    except SettingsError as exc:
        raise ConfigError(f"invalid configuration: {exc}"
                          f"{'; ' + str(exc.__cause__) if exc.__cause__ else ''}") from None
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "config"
            message = error["msg"]
            if error["type"] == "extra_forbidden":
                message = "unknown setting (check the spelling in arguments, GNOSIS_* env or .env)"
            lines.append(f"{where}: {message}")
        raise ConfigError("invalid configuration: " + "; ".join(lines)) from None
