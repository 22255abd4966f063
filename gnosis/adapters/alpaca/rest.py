"""REST calls through the SDK with the retries the SDK does not make, and one-line errors.

alpaca-py retries 429 and 504 three times itself (3 s apart). Here 500, 502, 503, a 429 that
outlasted the SDK and network errors are retried too, with a short exponential backoff; a
rejected key becomes ``AlpacaAuthError`` and anything else that still fails
``AlpacaUnavailable``, each with one line that says what failed. Order placement does not use
this blind retry: a POST that failed on a 5xx may have been placed, so the broker looks the
order up by its client order id before trying again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from alpaca.common.exceptions import APIError

from gnosis.adapters.alpaca.errors import AlpacaAuthError, AlpacaUnavailable
from gnosis.core.clock import LiveClock

log = logging.getLogger(__name__)
T = TypeVar("T")
TRANSIENT = frozenset({429, 500, 502, 503, 504})
AUTH = frozenset({401})
ATTEMPTS = 4
BASE_DELAY_S = 0.25


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of an SDK error (None for a network error)."""
    if isinstance(exc, APIError):
        try:
            return exc.status_code
        except Exception:  # noqa: BLE001 - a malformed error object has no status
            return None
    return None


def message_of(exc: BaseException) -> str:
    """The venue's message of an SDK error, else the exception's text (one line)."""
    if isinstance(exc, APIError):
        try:
            return str(exc.message)
        except (ValueError, KeyError, TypeError, json.JSONDecodeError):
            pass
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, requests.RequestException) and not isinstance(exc, requests.HTTPError):
        return True  # connection refused, reset, timeout
    return status_of(exc) in TRANSIENT


def call(what: str, fn: Callable[..., T], *args: Any, attempts: int = ATTEMPTS,
         sleep: Callable[[float], None] = LiveClock.sleep, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` with retries on transient failures; ``what`` names it in errors."""
    delay = BASE_DELAY_S
    for attempt in range(1, attempts + 1):
        try:
            return fn(*args, **kwargs)
        except (APIError, requests.RequestException) as exc:
            status = status_of(exc)
            if status in AUTH:
                raise AlpacaAuthError(
                    f"Alpaca rejected the API key while trying to {what} (HTTP {status}: "
                    f"{message_of(exc)}); check ALPACA_API_KEY / ALPACA_SECRET_KEY (paper keys "
                    "work only with the paper endpoint)") from None
            if not is_transient(exc):
                raise
            if attempt == attempts:
                where = f"HTTP {status}" if status else type(exc).__name__
                raise AlpacaUnavailable(f"Alpaca did not answer while trying to {what} after "
                                        f"{attempts} attempts ({where}: {message_of(exc)})"
                                        ) from None
            log.warning("%s: %s (attempt %d/%d), retrying in %.2f s", what,
                        f"HTTP {status}" if status else type(exc).__name__, attempt, attempts,
                        delay)
            sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")  # pragma: no cover
