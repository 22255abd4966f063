"""Batch (vectorized) definitions of the incremental indicators in ``indicators.py``.

Written from the textbook definitions with pandas/numpy, for two uses: parity tests (each
incremental indicator must equal its batch definition) and offline analysis of whole series.
Conventions match the incremental versions: population standard deviations, EMA seeded with the
first value, Wilder ATR seeded with the mean of the first ``period`` true ranges.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def sma(values: pd.Series, period: int) -> pd.Series:
    return values.rolling(period, min_periods=1).mean()


def ema(values: pd.Series, period: int) -> pd.Series:
    return values.ewm(span=period, adjust=False).mean()


def rolling_mean(values: pd.Series, period: int) -> pd.Series:
    return values.rolling(period, min_periods=1).mean()


def rolling_std(values: pd.Series, period: int) -> pd.Series:
    """Population standard deviation over the last ``period`` values."""
    return values.rolling(period, min_periods=1).std(ddof=0)


def zscore(values: pd.Series, period: int) -> pd.Series:
    sd = rolling_std(values, period)
    z = (values - rolling_mean(values, period)) / sd
    return z.where(sd > 0, 0.0)


def log_return(close: pd.Series) -> pd.Series:
    return np.log(close / close.shift(1))


def true_range(high: pd.Series, low: pd.Series, close: pd.Series) -> pd.Series:
    previous = close.shift(1)
    ranges = pd.concat([high - low, (high - previous).abs(), (low - previous).abs()], axis=1)
    tr = ranges.max(axis=1)
    tr.iloc[0] = high.iloc[0] - low.iloc[0]
    return tr


def atr(high: pd.Series, low: pd.Series, close: pd.Series, period: int = 14) -> pd.Series:
    """Wilder's ATR: mean of the first ``period`` true ranges, then (prev*(n-1) + tr) / n."""
    tr = true_range(high, low, close).to_numpy()
    out = np.full(len(tr), np.nan)
    if len(tr) >= period:
        out[period - 1] = tr[:period].mean()
        for i in range(period, len(tr)):
            out[i] = (out[i - 1] * (period - 1) + tr[i]) / period
    return pd.Series(out, index=close.index)


def bollinger(close: pd.Series, period: int = 20, k: float = 2.0) -> pd.DataFrame:
    mid = rolling_mean(close, period)
    band = k * rolling_std(close, period)
    upper, lower = mid + band, mid - band
    span = upper - lower
    return pd.DataFrame({
        "middle": mid, "upper": upper, "lower": lower, "width": span / mid,
        "percent_b": ((close - lower) / span).where(span > 0, 0.5),
    })


def rolling_slope(values: pd.Series, period: int) -> pd.Series:
    """Least-squares slope against the index over the last ``period`` values (>= 2 of them)."""
    y = values.to_numpy(dtype=float)
    out = np.full(len(y), np.nan)
    for i in range(1, len(y)):
        window = y[max(0, i - period + 1): i + 1]
        x = np.arange(len(window), dtype=float)
        out[i] = np.polyfit(x, window, 1)[0]
    return pd.Series(out, index=values.index)


def volume_stats(volume: pd.Series, period: int = 20) -> pd.DataFrame:
    mean = rolling_mean(volume, period)
    sd = rolling_std(volume, period)
    return pd.DataFrame({
        "mean": mean,
        "relative": (volume / mean).where(mean > 0, 1.0),
        "zscore": ((volume - mean) / sd).where(sd > 0, 0.0),
    })
