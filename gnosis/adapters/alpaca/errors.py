"""Errors of the Alpaca adapter; each message is one line a person can act on."""

from __future__ import annotations


class AlpacaError(Exception):
    """Something about Alpaca stops the bot; ``str()`` says what and what to do."""


class AlpacaSetupError(AlpacaError):
    """Missing keys, a live-money endpoint, or settings the adapter cannot use."""


class AlpacaAuthError(AlpacaError):
    """The venue rejected the keys."""


class AlpacaUnavailable(AlpacaError):
    """The venue did not answer usefully after the retries."""
