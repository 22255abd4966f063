"""Deterministic pseudo-random draws keyed by values, stable across processes and platforms.

CRC32 is not fit for this: it is affine in its input, so draws whose keys differ only in a
suffix (``(..., "news")`` and ``(..., "tone")``) are rigidly correlated. BLAKE2b avalanches.
"""

from __future__ import annotations

from hashlib import blake2b

_SCALE = 1.0 / 2**64


def unit_draw(*parts: object) -> float:
    """A number in [0, 1) determined by ``parts``, independent-looking across different keys."""
    digest = blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") * _SCALE
