"""Alpaca's shapes on the wire: RFC-3339 strings, money as strings, msgpack frames, errors.

Everything here is a pure function of its arguments, so the shapes are unit-tested without a
server. Field names follow alpaca-py 0.44.0's models (``alpaca.data.mappings``,
``alpaca.trading.models``) and ``shared/alpaca-wire.md``.
"""

from __future__ import annotations

import base64
import binascii
import math
import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgpack

from gnosis.model.types import NANOS_PER_SECOND, Bar

EASTERN = ZoneInfo("America/New_York")
_NAMESPACE = uuid.UUID("6f0c3c7e-5a0b-4b0e-9d55-3f1d2c4b7a10")  # ids derived from names


class WireError(ValueError):
    """A request the exchange refuses; ``status`` and ``code`` are Alpaca's."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


def bad_request(message: str) -> WireError:
    return WireError(400, 40010000, message)


def unprocessable(message: str) -> WireError:
    return WireError(422, 40010001, message)


def forbidden(message: str) -> WireError:
    return WireError(403, 40310000, message)


def not_found(message: str) -> WireError:
    return WireError(404, 40410000, message)


def name_uuid(*parts: object) -> str:
    """A UUID that is a pure function of ``parts`` (asset ids, account id)."""
    return str(uuid.uuid5(_NAMESPACE, "|".join(map(str, parts))))


# -- time ---------------------------------------------------------------------------------------
def rfc3339(ts: int | None) -> str | None:
    """``2024-01-02T14:30:00.123456Z`` (microseconds, the precision pydantic parses)."""
    if ts is None:
        return None
    seconds, nanos = divmod(ts, NANOS_PER_SECOND)
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    micros = nanos // 1000
    return f"{text}.{micros:06d}Z" if micros else f"{text}Z"


def rfc3339_eastern(ts: int) -> str:
    """A timestamp in New York time with its offset, as ``/v2/clock`` answers."""
    seconds, nanos = divmod(ts, NANOS_PER_SECOND)
    moment = datetime.fromtimestamp(seconds, tz=UTC).astimezone(EASTERN)
    micros = nanos // 1000
    return moment.replace(microsecond=micros).isoformat()


def eastern_date(ts: int) -> str:
    seconds = ts // NANOS_PER_SECOND
    return datetime.fromtimestamp(seconds, tz=UTC).astimezone(EASTERN).strftime("%Y-%m-%d")


def parse_time(text: str, what: str) -> int:
    """Epoch nanoseconds of an RFC-3339 timestamp or a ``YYYY-MM-DD`` date (midnight UTC, as
    Alpaca's data API reads a bare date)."""
    raw = text.strip()
    try:
        if len(raw) == 10:
            moment = datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except ValueError:
        raise bad_request(f"invalid {what}: {text!r} is not an RFC-3339 timestamp") from None
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NANOS_PER_SECOND + delta.microseconds * 1000


# -- numbers ------------------------------------------------------------------------------------
def money(value: float | None, places: int = 6) -> str | None:
    """A number as Alpaca sends money and quantities: a decimal string without exponent."""
    if value is None:
        return None
    if not math.isfinite(value):
        return None
    text = f"{value:.{places}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def parse_positive(value: Any, what: str) -> float:
    """A positive finite number from JSON (number or numeric string), else a 422."""
    if isinstance(value, bool):
        raise unprocessable(f"{what} must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise unprocessable(f"invalid {what}: {value!r}") from None
    if not (0.0 < number < math.inf):
        raise unprocessable(f"{what} must be > 0")
    return number


# -- market data --------------------------------------------------------------------------------
def msgpack_time(ts: int) -> msgpack.Timestamp:
    return msgpack.Timestamp.from_unix_nano(ts)


def bar_message(bar: Bar, kind: str = "b") -> dict[str, Any]:
    """A stream bar: ``t`` is the minute's start as a msgpack Timestamp; ``n``, ``vw`` present."""
    return {"T": kind, "S": bar.symbol, "o": bar.open, "h": bar.high, "l": bar.low,
            "c": bar.close, "v": bar.volume, "t": msgpack_time(bar.ts_event),
            "n": bar.trade_count, "vw": bar.vwap}


def bar_rest(bar: Bar) -> dict[str, Any]:
    """A historical bar: the same fields, ``t`` as an RFC-3339 string."""
    return {"t": rfc3339(bar.ts_event), "o": bar.open, "h": bar.high, "l": bar.low,
            "c": bar.close, "v": bar.volume, "n": bar.trade_count, "vw": bar.vwap}


def pack(messages: list[dict[str, Any]]) -> bytes:
    """One server frame: always an array of maps."""
    return msgpack.packb(messages, datetime=False)


def unpack_client(data: bytes | str) -> Any:
    """A client's msgpack message; JSON text is accepted too (Alpaca speaks both)."""
    if isinstance(data, str):
        import json

        return json.loads(data)
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def stream_error(code: int) -> dict[str, Any]:
    return {"T": "error", "code": code, "msg": STREAM_ERRORS[code]}


STREAM_ERRORS: dict[int, str] = {
    400: "invalid syntax",
    401: "not authenticated",
    402: "auth failed",
    403: "already authenticated",
    404: "auth timeout",
    405: "symbol limit exceeded",
    406: "connection limit exceeded",
    407: "slow client",
    409: "insufficient subscription",
    410: "invalid subscribe action",
    500: "internal error",
}


# -- page tokens --------------------------------------------------------------------------------
def encode_token(*parts: object) -> str:
    return base64.urlsafe_b64encode("|".join(map(str, parts)).encode()).decode().rstrip("=")


def decode_token(token: str, fields: int) -> list[str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        parts = base64.urlsafe_b64decode(padded.encode()).decode().split("|")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad_request("invalid page_token") from None
    if len(parts) != fields:
        raise bad_request("invalid page_token")
    return parts
