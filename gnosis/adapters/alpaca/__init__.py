"""Alpaca: market data, paper trading and the agents' side inputs through alpaca-py.

Layout: ``settings`` (keys and URLs from the configuration; the live-money endpoint is refused),
``rest`` (retries and one-line errors around the SDK's REST calls), ``streams`` (the SDK's
websocket clients run in our own event loop, with connect/failure hooks), ``calendar`` (the
exchange calendar and the venue's ``/v2/clock``), ``feed`` (``AlpacaFeed``: live bars with
watchdog, reconnect backfill and warm-up), ``journal`` and ``broker`` (``AlpacaBroker``: the
``Broker`` port on a paper account), ``reconcile`` (the broker's state against ours after a
restart or a reconnect), ``options`` and ``news`` (the Hedge and Sentiment agents' inputs),
``history`` (``gnosis backtest --source alpaca``: a Parquet cache of downloaded bars and news)
and ``wiring`` (one function that plugs them into the engine).
"""
