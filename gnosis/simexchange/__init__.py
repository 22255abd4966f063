"""``gnosis sim-exchange``: a local exchange that the unmodified alpaca-py SDK accepts as Alpaca.

One server on 127.0.0.1 serves the trading REST API, the historical market-data REST API, the
stock and news streams (msgpack) and the ``trade_updates`` stream (JSON), all fed by the
synthetic market or a replay file and paced by a simulated clock. Orders fill against the same
market with gnosis' own fill model (``SimBroker``), so the bot's dry runs and its Alpaca path see
the same executions. Faults (dropped or mute streams, 406, 429/500, rejected orders, late or
split fills) can be injected from Python or over HTTP under ``/_sim``.

Layout: ``clock`` (sessions and simulated time), ``market`` (bars and what is derived from them:
trades, quotes, updated bars, news, options), ``orders`` (the Alpaca order state machine and the
account over ``SimBroker``), ``wire`` (Alpaca's JSON and msgpack shapes), ``streams`` (WebSocket
sessions), ``faults``, ``exchange`` (the core that ties them to the clock), ``app`` (routes) and
``server`` (uvicorn on a socket, in a thread or in the foreground).
"""

from gnosis.simexchange.exchange import ExchangeSettings, SimExchange
from gnosis.simexchange.server import SimExchangeServer

__all__ = ["ExchangeSettings", "SimExchange", "SimExchangeServer"]
