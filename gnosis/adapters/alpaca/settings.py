"""Where Alpaca is and how to log in: keys and URLs from the configuration, SDK clients built
from them.

Keys come from ``ALPACA_API_KEY`` / ``ALPACA_SECRET_KEY`` (environment or ``.env``) and stay
``SecretStr`` until the moment an SDK client is built; nothing here prints, logs or stores
them. ``ALPACA_BASE_URL`` (trading REST), ``ALPACA_DATA_URL`` (market data REST) and
``ALPACA_STREAM_URL`` (the base of every websocket: ``/v2/iex``, ``/v1beta1/news`` and
``/stream`` are appended) point the SDK elsewhere, e.g. at ``gnosis sim-exchange``; unset, the
SDK's own paper-trading and market-data addresses are used. Gnosis trades paper money only: the
live-money trading endpoint is refused here, whatever else is configured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from pydantic import SecretStr

from gnosis.adapters.alpaca.errors import AlpacaSetupError
from gnosis.core.config import AlpacaConfig, GnosisConfig

LIVE_TRADING_HOST = "api.alpaca.markets"  # real money; paper is paper-api.alpaca.markets
MISSING_KEYS = (
    "Alpaca keys are not set: put ALPACA_API_KEY and ALPACA_SECRET_KEY in the environment or "
    "in .env (paper-trading keys from https://app.alpaca.markets/paper/dashboard/overview), or "
    "run `gnosis sim-exchange` and paste the lines it prints"
)


def _clean_url(name: str, value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    url = value.strip().rstrip("/")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https", "ws", "wss") or not parsed.netloc:
        raise AlpacaSetupError(f"{name}={value!r} is not a URL like https://host or ws://host:port")
    return url


@dataclass(frozen=True)
class AlpacaSettings:
    """Keys, addresses and the adapter's tuning (``GnosisConfig.alpaca``)."""

    api_key: SecretStr
    secret_key: SecretStr
    base_url: str | None = None
    data_url: str | None = None
    stream_url: str | None = None
    tuning: AlpacaConfig = AlpacaConfig()

    def __post_init__(self) -> None:
        for name in ("api_key", "secret_key"):
            if not getattr(self, name).get_secret_value().strip():
                raise AlpacaSetupError(MISSING_KEYS)
        if self.base_url is not None:
            host = urlparse(self.base_url).hostname or ""
            if host == LIVE_TRADING_HOST:
                raise AlpacaSetupError(
                    f"ALPACA_BASE_URL points at Alpaca's live-money endpoint ({host}); Gnosis "
                    "trades paper accounts only: use https://paper-api.alpaca.markets or unset "
                    "ALPACA_BASE_URL")

    @classmethod
    def from_config(cls, config: GnosisConfig) -> AlpacaSettings:
        if config.alpaca_api_key is None or config.alpaca_secret_key is None:
            raise AlpacaSetupError(MISSING_KEYS)
        return cls(
            api_key=config.alpaca_api_key,
            secret_key=config.alpaca_secret_key,
            base_url=_clean_url("ALPACA_BASE_URL", config.alpaca_base_url),
            data_url=_clean_url("ALPACA_DATA_URL", config.alpaca_data_url),
            stream_url=_clean_url("ALPACA_STREAM_URL", config.alpaca_stream_url),
            tuning=config.alpaca,
        )

    def __repr__(self) -> str:  # never the keys, even in a traceback's locals
        return (f"AlpacaSettings(base_url={self.base_url!r}, data_url={self.data_url!r}, "
                f"stream_url={self.stream_url!r}, feed={self.tuning.data_feed!r})")

    __str__ = __repr__

    # -- what the SDK is given ---------------------------------------------------------------
    def _keys(self) -> tuple[str, str]:
        return self.api_key.get_secret_value(), self.secret_key.get_secret_value()

    @property
    def venue(self) -> str:
        """A short, secret-free description of where we trade and read data."""
        return self.base_url or "Alpaca paper trading (paper-api.alpaca.markets)"

    def stock_stream_url(self) -> str | None:
        return None if self.stream_url is None else f"{self.stream_url}/v2/{self.tuning.data_feed}"

    def news_stream_url(self) -> str | None:
        return None if self.stream_url is None else f"{self.stream_url}/v1beta1/news"

    def trading_stream_url(self) -> str | None:
        return None if self.stream_url is None else f"{self.stream_url}/stream"

    def trading_client(self, raw: bool = False) -> Any:
        from alpaca.trading.client import TradingClient

        key, secret = self._keys()
        return TradingClient(key, secret, paper=True, url_override=self.base_url, raw_data=raw)

    def stock_data_client(self, raw: bool = False) -> Any:
        from alpaca.data.historical import StockHistoricalDataClient

        key, secret = self._keys()
        return StockHistoricalDataClient(key, secret, url_override=self.data_url, raw_data=raw)

    def option_data_client(self, raw: bool = False) -> Any:
        from alpaca.data.historical import OptionHistoricalDataClient

        key, secret = self._keys()
        return OptionHistoricalDataClient(key, secret, url_override=self.data_url, raw_data=raw)

    def news_client(self, raw: bool = False) -> Any:
        from alpaca.data.historical.news import NewsClient

        key, secret = self._keys()
        return NewsClient(key, secret, url_override=self.data_url, raw_data=raw)

    def stream_keys(self) -> tuple[str, str]:
        """The plain keys, for the websocket clients (``gnosis.adapters.alpaca.streams``)."""
        return self._keys()
