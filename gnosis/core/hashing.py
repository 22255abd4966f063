"""Deterministic pseudo-random draws keyed by values, stable across processes and platforms.

CRC32 is not fit for this: it is affine in its input, so draws whose keys differ only in a
suffix (``(..., "news")`` and ``(..., "tone")``) are rigidly correlated. BLAKE2b avalanches.
"""

from __future__ import annotations

from hashlib import blake2b

_SCALE = 1.0 / 2**64


def unit_draw(*parts: object) -> float:
    """A number in [0, 1) determined by ``parts``, independent-looking across different keys."""
    return key_draw("|".join(map(str, parts)))


def key_draw(key: str) -> float:
    """``unit_draw`` of parts already joined by "|" (``f"{a}|{b}"``): the per-bar callers
    format their key in one f-string instead of joining a tuple (a third of the cost)."""
    return int.from_bytes(blake2b(key.encode(), digest_size=8).digest(), "little") * _SCALE


def key_draws(prefix: str, first_ts: int, step_ns: int, count: int, suffix: str) -> list[float]:
    """``key_draw(f"{prefix}{ts}{suffix}")`` for ts = first_ts + j * step_ns, j < count: the
    specification of the compiled ``gnosis.core.blake_kernel.key_draws`` and its fallback."""
    return [key_draw(f"{prefix}{first_ts + j * step_ns}{suffix}") for j in range(count)]
