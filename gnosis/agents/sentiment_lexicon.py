"""Headline sentiment with VADER, whose lexicon ships inside the ``vaderSentiment`` package
(no download at install or run time)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

_analyzer: Any = None


def _get() -> Any:
    global _analyzer
    if _analyzer is None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        _analyzer = SentimentIntensityAnalyzer()
    return _analyzer


@lru_cache(maxsize=4096)
def score_text(text: str) -> float:
    """Compound sentiment of ``text`` in [-1, 1] (0 for empty text)."""
    if not text.strip():
        return 0.0
    return float(_get().polarity_scores(text)["compound"])
