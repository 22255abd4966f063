"""Injected faults: what a test asks the exchange to get wrong, and for how long.

One description format serves the Python API and ``POST /_sim/faults`` alike::

    {"fault": "drop_streams", "endpoint": "/v2/iex"}             # every connection now (all if
                                                                 # no endpoint)
    {"fault": "stall_stream", "endpoint": "/v2/iex", "seconds": 5}  # mute, socket kept open
    {"fault": "refuse_streams", "endpoint": "/v2/iex", "count": 1}  # next auths answered 406
    {"fault": "http_error", "status": 429, "path_prefix": "/v2/account", "count": 2}
    {"fault": "reject_orders", "count": 1, "mode": "venue" | "api"}
    {"fault": "delay_fills", "bars": 3, "count": 1}              # next orders work 3 bars late
    {"fault": "split_fills", "parts": 3, "count": 1}             # next fills in 3 executions

``venue`` rejections accept the order (``pending_new``) and then reject it on the stream
(``rejected``); ``api`` rejections answer the POST with 403 and create nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gnosis.simexchange.wire import WireError

STREAM_ENDPOINTS = ("/v2/iex", "/v2/sip", "/v2/test", "/v1beta1/news", "/stream")
HTTP_ERRORS = {
    429: {"code": 42910000, "message": "rate limit exceeded"},
    500: {"code": 50010000, "message": "internal server error"},
    502: {"code": 50210000, "message": "bad gateway"},
    503: {"code": 50310000, "message": "service unavailable"},
    504: {"code": 50410000, "message": "gateway timeout"},
}


class FaultError(ValueError):
    """A fault description that cannot be applied."""


@dataclass(slots=True)
class HttpFault:
    status: int
    path_prefix: str
    remaining: int


@dataclass(slots=True)
class Faults:
    """Pending faults. Counters are consumed as requests, orders and fills meet them."""

    http: list[HttpFault] = field(default_factory=list)
    refuse: dict[str, int] = field(default_factory=dict)
    reject_orders: list[str] = field(default_factory=list)  # modes, in order
    delay_fills: list[int] = field(default_factory=list)  # bars, one per coming order

    def http_fault_for(self, path: str) -> HttpFault | None:
        """Consume one matching HTTP fault, if any (the ``/_sim`` control API never fails)."""
        if path.startswith("/_sim"):
            return None
        for fault in self.http:
            if path.startswith(fault.path_prefix) and fault.remaining > 0:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self.http.remove(fault)
                return fault
        return None

    def take_refusal(self, endpoint: str) -> bool:
        left = self.refuse.get(endpoint, 0)
        if left <= 0:
            return False
        self.refuse[endpoint] = left - 1
        return True

    def take_rejection(self) -> str | None:
        return self.reject_orders.pop(0) if self.reject_orders else None

    def take_delay(self) -> int:
        return self.delay_fills.pop(0) if self.delay_fills else 0

    def clear(self) -> None:
        self.http.clear()
        self.refuse.clear()
        self.reject_orders.clear()
        self.delay_fills.clear()

    def pending(self) -> dict[str, Any]:
        return {
            "http": [{"status": f.status, "path_prefix": f.path_prefix, "remaining": f.remaining}
                     for f in self.http],
            "refuse_streams": {k: v for k, v in self.refuse.items() if v},
            "reject_orders": list(self.reject_orders),
            "delay_fills": list(self.delay_fills),
        }


def _count(spec: dict[str, Any], key: str = "count", default: int = 1) -> int:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise FaultError(f"{key} must be a whole number >= 1, got {value!r}")
    return value


def _endpoint(spec: dict[str, Any], required: bool) -> str | None:
    endpoint = spec.get("endpoint")
    if endpoint is None:
        if required:
            raise FaultError(f"endpoint is required (one of {', '.join(STREAM_ENDPOINTS)})")
        return None
    if endpoint not in STREAM_ENDPOINTS:
        raise FaultError(f"unknown endpoint {endpoint!r} (one of {', '.join(STREAM_ENDPOINTS)})")
    return str(endpoint)


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """A validated fault description."""

    fault: str
    endpoint: str | None = None
    seconds: float = 0.0
    count: int = 1
    status: int = 0
    path_prefix: str = ""
    mode: str = "venue"
    bars: int = 0
    parts: int = 1


def parse_fault(spec: Any) -> FaultSpec:
    if not isinstance(spec, dict):
        raise FaultError("a fault is a JSON object with a 'fault' field")
    kind = spec.get("fault")
    if not isinstance(kind, str) or kind not in _PARSERS:
        raise FaultError(f"unknown fault {kind!r} ({', '.join(_PARSERS)})")
    return _PARSERS[kind](kind, spec)


def _drop_streams(kind: str, spec: dict[str, Any]) -> FaultSpec:
    return FaultSpec(kind, endpoint=_endpoint(spec, required=False))


def _stall_stream(kind: str, spec: dict[str, Any]) -> FaultSpec:
    seconds = spec.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
        raise FaultError(f"seconds must be a positive number, got {seconds!r}")
    return FaultSpec(kind, endpoint=_endpoint(spec, required=True), seconds=float(seconds))


def _refuse_streams(kind: str, spec: dict[str, Any]) -> FaultSpec:
    return FaultSpec(kind, endpoint=_endpoint(spec, required=True), count=_count(spec))


def _http_error(kind: str, spec: dict[str, Any]) -> FaultSpec:
    status = spec.get("status")
    if status not in HTTP_ERRORS:
        raise FaultError(f"status must be one of {sorted(HTTP_ERRORS)}, got {status!r}")
    prefix = spec.get("path_prefix", "/")
    if not isinstance(prefix, str) or not prefix.startswith("/"):
        raise FaultError(f"path_prefix must start with '/', got {prefix!r}")
    return FaultSpec(kind, status=int(status), path_prefix=prefix, count=_count(spec))


def _reject_orders(kind: str, spec: dict[str, Any]) -> FaultSpec:
    mode = spec.get("mode", "venue")
    if mode not in ("venue", "api"):
        raise FaultError(f"mode must be 'venue' or 'api', got {mode!r}")
    return FaultSpec(kind, mode=mode, count=_count(spec))


def _delay_fills(kind: str, spec: dict[str, Any]) -> FaultSpec:
    return FaultSpec(kind, bars=_count(spec, "bars", 1), count=_count(spec))


def _split_fills(kind: str, spec: dict[str, Any]) -> FaultSpec:
    parts = _count(spec, "parts", 2)
    if parts < 2:
        raise FaultError("parts must be at least 2")
    return FaultSpec(kind, parts=parts, count=_count(spec))


_PARSERS: dict[str, Callable[[str, dict[str, Any]], FaultSpec]] = {
    "drop_streams": _drop_streams,
    "stall_stream": _stall_stream,
    "refuse_streams": _refuse_streams,
    "http_error": _http_error,
    "reject_orders": _reject_orders,
    "delay_fills": _delay_fills,
    "split_fills": _split_fills,
}


def http_error_body(status: int) -> dict[str, Any]:
    return dict(HTTP_ERRORS[status])


def fault_error(exc: FaultError) -> WireError:
    return WireError(400, 40010000, str(exc))
