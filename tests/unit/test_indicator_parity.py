"""Every incremental indicator equals its batch definition and the `ta` library on real prices
(ASML daily bars, see tests/data/README.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import ta

from gnosis.data import indicators as inc
from gnosis.data import indicators_batch as batch

DATA = Path(__file__).resolve().parents[1] / "data" / "asml_daily.csv"


@pytest.fixture(scope="module")
def ohlcv() -> pd.DataFrame:
    frame = pd.read_csv(DATA)
    frame = frame[(frame["High"] > frame["Low"]) & (frame["Volume"] > 0)].reset_index(drop=True)
    assert len(frame) > 700
    return frame


def run(indicator: object, values: list[float], read: str = "value") -> np.ndarray:
    out = []
    for v in values:
        indicator.update(v)  # type: ignore[attr-defined]
        out.append(getattr(indicator, read))
    return np.asarray(out, dtype=float)


def close_to(got: np.ndarray, want: pd.Series | np.ndarray, start: int = 0) -> None:
    np.testing.assert_allclose(got[start:], np.asarray(want, dtype=float)[start:], rtol=1e-9,
                               atol=1e-9)


@pytest.mark.parametrize("period", [5, 20, 50])
def test_ema_sma(ohlcv: pd.DataFrame, period: int) -> None:
    close = ohlcv["Close"]
    values = close.tolist()
    ema = run(inc.EMA(period), values)
    close_to(ema, batch.ema(close, period))
    close_to(ema, ta.trend.EMAIndicator(close, window=period).ema_indicator(), start=period - 1)
    sma = run(inc.SMA(period), values)
    close_to(sma, batch.sma(close, period))
    close_to(sma, ta.trend.SMAIndicator(close, window=period).sma_indicator(),
             start=period - 1)


@pytest.mark.parametrize("period", [10, 30])
def test_rolling_mean_std_and_zscore(ohlcv: pd.DataFrame, period: int) -> None:
    close = ohlcv["Close"]
    stats = inc.RollingMeanStd(period)
    means, stds = [], []
    for v in close.tolist():
        stats.update(v)
        means.append(stats.mean)
        stds.append(stats.std)
    close_to(np.asarray(means), batch.rolling_mean(close, period))
    np.testing.assert_allclose(stds, batch.rolling_std(close, period), rtol=1e-7, atol=1e-9)
    z = run(inc.ZScore(period), close.tolist())
    np.testing.assert_allclose(z[period:], batch.zscore(close, period)[period:], rtol=1e-6,
                               atol=1e-7)


def test_atr(ohlcv: pd.DataFrame) -> None:
    atr = inc.ATR(14)
    got = np.asarray([atr.update(h, lo, c) for h, lo, c in
                      zip(ohlcv["High"], ohlcv["Low"], ohlcv["Close"])])
    close_to(got, batch.atr(ohlcv["High"], ohlcv["Low"], ohlcv["Close"], 14), start=13)
    reference = ta.volatility.AverageTrueRange(ohlcv["High"], ohlcv["Low"], ohlcv["Close"],
                                               window=14).average_true_range()
    # ta seeds its first true range differently; Wilder smoothing forgets the seed
    np.testing.assert_allclose(got[300:], reference[300:], rtol=1e-8)


def test_bollinger(ohlcv: pd.DataFrame) -> None:
    close = ohlcv["Close"]
    bands = inc.Bollinger(20, 2.0)
    rows = []
    for v in close.tolist():
        bands.update(v)
        rows.append((bands.middle, bands.upper, bands.lower, bands.percent_b))
    got = np.asarray(rows)
    want = batch.bollinger(close, 20, 2.0)
    np.testing.assert_allclose(got, want[["middle", "upper", "lower", "percent_b"]], rtol=1e-7,
                               atol=1e-7)
    reference = ta.volatility.BollingerBands(close, window=20, window_dev=2)
    np.testing.assert_allclose(got[19:, 1], reference.bollinger_hband()[19:], rtol=1e-9)
    np.testing.assert_allclose(got[19:, 2], reference.bollinger_lband()[19:], rtol=1e-9)
    np.testing.assert_allclose(got[19:, 3], reference.bollinger_pband()[19:], rtol=1e-6)


def test_log_return_and_slope(ohlcv: pd.DataFrame) -> None:
    close = ohlcv["Close"]
    got = run(inc.LogReturn(), close.tolist())
    close_to(got[1:], batch.log_return(close)[1:])
    reference = ta.others.DailyLogReturnIndicator(close).daily_log_return() / 100.0
    close_to(got[1:], reference[1:])
    slope = run(inc.RollingSlope(20), np.log(close).tolist())
    np.testing.assert_allclose(slope[1:], batch.rolling_slope(np.log(close), 20)[1:],
                               rtol=1e-6, atol=1e-10)


def test_volume_stats(ohlcv: pd.DataFrame) -> None:
    volume = ohlcv["Volume"].astype(float)
    stats = inc.VolumeStats(20)
    rows = []
    for v in volume.tolist():
        stats.update(v)
        rows.append((stats.mean, stats.relative, stats.zscore))
    want = batch.volume_stats(volume, 20)
    np.testing.assert_allclose(np.asarray(rows), want[["mean", "relative", "zscore"]],
                               rtol=1e-6, atol=1e-6)
