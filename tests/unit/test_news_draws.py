"""The compiled BLAKE2b draws equal hashlib's (``key_draw``) bit for bit, and the simulated news
read from cached chunks of them equals the per-bar specification, pickled or not."""

from __future__ import annotations

import pickle
import random
from collections.abc import Sequence
from hashlib import blake2b

import numpy as np
import pytest

from gnosis.agents.news_sim import (
    BEARISH,
    BULLISH,
    CHUNK_BARS,
    NEUTRAL,
    PHASE_TONE,
    SimulatedNewsProvider,
)
from gnosis.core import blake_kernel
from gnosis.core.hashing import key_draw, key_draws, unit_draw
from gnosis.model.market import Headline

T0 = 1_704_205_800 * 10**9  # 2024-01-02 14:30 UTC
MINUTE = 60 * 10**9
SESSION_BARS = 390
OVERNIGHT = 17 * 60 * MINUTE + 30 * MINUTE  # close 21:00 to open 14:30 the next day


def hashlib_word(message: bytes) -> int:
    return int.from_bytes(blake2b(message, digest_size=8).digest(), "little")


# -- the compiled BLAKE2b ----------------------------------------------------------------------
def test_blake2b_equals_hashlib_on_every_length_up_to_one_block() -> None:
    rng = random.Random(5)
    messages = [rng.randbytes(n) for n in range(129) for _ in range(25)]
    messages += [b"", b"\x00" * 128, b"\xff" * 128, b"abc", "é|株|🚀".encode()]
    for message in messages:
        assert int(blake_kernel.blake2b_word(message)) == hashlib_word(message), message
    for message in messages[::50]:  # a uint8 array is hashed as its bytes
        array = np.frombuffer(message, np.uint8)
        assert int(blake_kernel.blake2b_word(array)) == hashlib_word(message)


def test_blake2b_refuses_more_than_one_block() -> None:
    with pytest.raises(ValueError, match="at most 128 bytes"):
        blake_kernel.blake2b_word(b"x" * 129)


def test_words_to_units_rounds_as_python_does() -> None:
    """uint64 -> float64 rounds to nearest, ties to even, as Python's int -> float: ties at
    2**53 + 1, near 2**63 and 2**64 (which rounds up to a draw of exactly 1.0)."""
    special = [0, 1, 2**52 + 1, 2**53 - 1, 2**53, 2**53 + 1, 2**53 + 2, 2**53 + 3,
               2**54 + 2, 2**54 + 6, 2**63 - 1, 2**63, 2**63 + 1, 2**63 + 2**10,
               2**63 + 3 * 2**10, 2**63 + 3 * 2**10 - 1, 2**63 + 3 * 2**10 + 1,
               2**64 - 2**11, 2**64 - 2**10 - 1, 2**64 - 2**10, 2**64 - 2**10 + 1, 2**64 - 1,
               0x8000_0000_0000_0401, 0xFFFF_FFFF_FFFF_F3FF, 0x0020_0000_0000_0001]
    rng = random.Random(9)
    special += [rng.getrandbits(64) | (1 << 63) for _ in range(200)]  # 64 significant bits
    special += [rng.getrandbits(rng.randrange(1, 65)) for _ in range(200)]
    # every word at every offset: the SIMD body of the loop and its scalar remainder
    words = [w for shift in range(9) for w in special[shift:] + special[:shift]]
    units = blake_kernel.words_to_units(np.array(words, dtype=np.uint64)).tolist()
    assert units == [w * 2.0**-64 for w in words]
    assert units[words.index(2**64 - 1)] == 1.0
    assert units[words.index(2**64 - 2**10 - 1)] < 1.0


# -- a grid of key_draws in one call -----------------------------------------------------------
@pytest.mark.parametrize(("prefix", "first_ts", "step_ns", "count", "suffix"), [
    ("0|SPY|", T0, MINUTE, 64, "|news"),
    ("7|SPY|", T0 + 17, MINUTE, 200, "|news"),  # more than one batch, a short last one
    ("3|AAPL|", 0, 1, 30, "|news"),  # ts = 0, and 1 to 2 digits
    ("3|AAPL|", 95, 1, 10, "|news"),  # 2 to 3 digits: the suffix moves
    ("3|AAPL|", 105, -1, 10, "|news"),  # and back
    ("3|AAPL|", 10**18 - 5, 1, 10, "|news"),  # 18 to 19 digits
    ("11|ÄÖÜ|", T0, MINUTE, 64, "|news"),
    ("11|株式会社|", T0, MINUTE, 64, "|news"),
    ("11|🚀|", T0, 7 * MINUTE, 64, "|tone"),
    ("-4|a|b|", T0, MINUTE, 3, ""),
    ("", 2**63 - 10, 1, 10, ""),  # up to the largest int64
    ("5|SPY|", T0, 0, 5, "|news"),
    ("5|SPY|", T0, MINUTE, 1, "|news"),
    ("5|SPY|", T0, MINUTE, 0, "|news"),
])
def test_key_draws_equal_key_draw_bit_for_bit(prefix: str, first_ts: int, step_ns: int,
                                              count: int, suffix: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    expected = [key_draw(f"{prefix}{first_ts + j * step_ns}{suffix}") for j in range(count)]
    assert key_draws(prefix, first_ts, step_ns, count, suffix) == expected
    if count:
        compiled = blake_kernel.news_draws(prefix.encode(), first_ts, step_ns, count,
                                           suffix.encode())
        assert compiled.tolist() == expected
        as_arrays = blake_kernel.news_draws(np.frombuffer(prefix.encode(), np.uint8), first_ts,
                                            step_ns, count,
                                            np.frombuffer(suffix.encode(), np.uint8))
        assert as_arrays.tolist() == expected

    def refuse(*args: object) -> list[float]:
        raise AssertionError("these keys fit the compiled path")

    monkeypatch.setattr(blake_kernel, "reference_key_draws", refuse)
    assert blake_kernel.key_draws(prefix, first_ts, step_ns, count, suffix) == expected


def test_key_draws_on_random_keys() -> None:
    rng = random.Random(13)
    alphabet = "ABCXYZabc.-_|é株🚀 0123456789"
    for _ in range(300):
        symbol = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 30)))
        seed = rng.randrange(-10**6, 10**12)
        first = rng.choice([0, rng.randrange(10**rng.randrange(1, 19)), T0])
        step = rng.choice([MINUTE, 1, rng.randrange(1, 10**9)])
        count = rng.randrange(1, 80)
        prefix = f"{seed}|{symbol}|"
        expected = [key_draw(f"{prefix}{first + j * step}|news") for j in range(count)]
        assert blake_kernel.key_draws(prefix, first, step, count, "|news") == expected, prefix


@pytest.mark.parametrize(("prefix", "first_ts", "count"), [
    ("1|" + "X" * 120 + "|", T0, 5),  # longer than a block
    ("1|" + "é" * 60 + "|", T0, 5),  # 63 characters but 123 bytes
    ("1|SPY|", -3 * MINUTE, 8),  # negative timestamps
    ("1|SPY|", 2**63 - 3, 5),  # past the largest int64
])
def test_keys_the_kernel_cannot_hash_go_to_the_specification(
        prefix: str, first_ts: int, count: int, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = [key_draw(f"{prefix}{first_ts + j}|news") for j in range(count)]

    def refuse(*args: object) -> object:
        raise AssertionError("the compiled kernel must not be asked")

    monkeypatch.setattr(blake_kernel, "news_draws", refuse)
    assert blake_kernel.key_draws(prefix, first_ts, 1, count, "|news") == expected


def test_a_key_of_exactly_one_block_is_compiled_one_byte_more_is_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    ts = T0  # 19 digits
    fits = "9|" + "Q" * (128 - 2 - 1 - 19 - 5) + "|"
    assert len(f"{fits}{ts}|news".encode()) == 128
    assert blake_kernel.news_draws(fits.encode(), ts, 1, 1, b"|news").tolist() == [
        key_draw(f"{fits}{ts}|news")]
    too_long = fits + "Q"
    with pytest.raises(ValueError, match="at most 128 bytes"):
        blake_kernel.news_draws(too_long.encode(), ts, 1, 1, b"|news")
    with pytest.raises(ValueError, match="non-negative"):
        blake_kernel.news_draws(b"9|SPY|", -1, 1, 1, b"|news")
    calls: list[str] = []
    reference = blake_kernel.reference_key_draws

    def counted(prefix: str, *args: int | str) -> list[float]:
        calls.append(prefix)
        return reference(prefix, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(blake_kernel, "reference_key_draws", counted)
    for prefix in (fits, too_long):
        assert blake_kernel.key_draws(prefix, ts, MINUTE, 3, "|news") == [
            key_draw(f"{prefix}{ts + j * MINUTE}|news") for j in range(3)]
    assert calls == [too_long]


# -- the simulated news ------------------------------------------------------------------------
def reference_headlines(news: SimulatedNewsProvider, symbol: str, after_ns: int,
                        until_ns: int) -> Sequence[Headline]:
    """``SimulatedNewsProvider.headlines`` as it was written before its draws were cached: one
    ``key_draw`` per call. The specification the cached path must equal."""
    if until_ns <= after_ns:
        return ()
    ts_event = until_ns - MINUTE
    if key_draw(f"{news.seed}|{symbol}|{ts_event}|news") >= news.rate:
        return ()
    try:
        phase = news.phase_of(symbol, ts_event)
    except KeyError:
        return ()
    tone = PHASE_TONE.get(phase)
    pick = unit_draw(news.seed, symbol, ts_event, "tone")
    if tone is None:
        pool = (BULLISH, BEARISH, NEUTRAL, NEUTRAL)[int(pick * 4)]
    elif pick < news.off_tone:
        pool = BEARISH if tone is BULLISH else BULLISH
    else:
        pool = tone
    template = pool[int(unit_draw(news.seed, symbol, ts_event, "text") * len(pool))]
    return (Headline(until_ns, (symbol,), template.format(s=symbol), source="simulated"),)


def session_phase(symbol: str, ts: int) -> str:
    """Phases that change every 97 minutes; no phase (KeyError) on the 13th minute of 100."""
    minute = ts // MINUTE
    if minute % 100 == 13:
        raise KeyError(ts)
    phases = ("trending_up", "trending_down", "ranging", "accumulation", "distribution")
    return phases[(minute // 97 + len(symbol)) % len(phases)]


def bar_closes(bars: int) -> list[int]:
    """The closes of ``bars`` consecutive 1-minute bars in sessions of 390, nights between."""
    return [T0 + (i + 1) * MINUTE + (i // SESSION_BARS) * OVERNIGHT for i in range(bars)]


def calls_of_a_run(bars: int, symbols: tuple[str, ...]) -> list[tuple[str, int, int]]:
    """(symbol, after, until) as the strategies ask, bar by bar and symbol by symbol, with
    repeated, empty, out-of-order and off-grid asks mixed in."""
    rng = random.Random(17)
    calls: list[tuple[str, int, int]] = []
    closes = bar_closes(bars)
    for i, close in enumerate(closes):
        for symbol in symbols:
            after = closes[i - 1] if i else close - MINUTE
            calls.append((symbol, after, close))
            if i % 7 == 0:  # the same bar again
                calls.append((symbol, after, close))
            if i % 53 == 0:  # an empty window
                calls.append((symbol, close, close))
            if i % 50 == 0 and i:  # an earlier bar
                j = rng.randrange(max(0, i - 300), i)
                calls.append((symbol, closes[j] - MINUTE, closes[j]))
            if i % 211 == 0:  # a bar off the minute grid, then back on it
                calls.append((symbol, close - MINUTE, close + 30 * 10**9))
    return calls


@pytest.mark.parametrize("rate", [1 / 45, 0.3])
def test_headlines_equal_the_per_bar_specification(rate: float) -> None:
    symbols = ("SPY", "ÄPPL")
    calls = calls_of_a_run(20_000, symbols)
    news = SimulatedNewsProvider(session_phase, seed=11, rate=rate)
    spec = SimulatedNewsProvider(session_phase, seed=11, rate=rate)
    got, want = [], []
    for n, (symbol, after, until) in enumerate(calls):
        if n == len(calls) // 2:  # a snapshot mid-run: the cache is rebuilt, results stay
            news = pickle.loads(pickle.dumps(news))
            assert news._draws == {}
        got.append(news.headlines(symbol, after, until))
        want.append(reference_headlines(spec, symbol, after, until))
    assert got == want
    headlines = sum(len(h) for h in want)
    assert headlines > rate * 20_000 * len(symbols) * 0.8  # not vacuous
    assert len(news._draws) == len(symbols)  # only the latest chunk of each symbol
    assert all(len(chunk) == CHUNK_BARS for chunk in news._draws.values())


def test_a_chunk_is_hashed_once_per_hour_of_bars(monkeypatch: pytest.MonkeyPatch) -> None:
    hashed: list[int] = []
    compiled = blake_kernel.key_draws

    def counted(prefix: str, first_ts: int, step_ns: int, count: int,
                suffix: str) -> list[float]:
        hashed.append(first_ts)
        return compiled(prefix, first_ts, step_ns, count, suffix)

    monkeypatch.setattr(blake_kernel, "key_draws", counted)
    news = SimulatedNewsProvider(session_phase, seed=2)
    for i in range(10 * CHUNK_BARS):
        news.headlines("SPY", T0 + i * MINUTE, T0 + (i + 1) * MINUTE)
    assert hashed == [T0 + k * CHUNK_BARS * MINUTE for k in range(10)]


def test_a_provider_pickled_before_the_cache_existed_loads(
        monkeypatch: pytest.MonkeyPatch) -> None:
    news = SimulatedNewsProvider(session_phase, seed=4, rate=0.5)
    window = (T0, T0 + MINUTE)
    expected = reference_headlines(news, "SPY", *window)
    assert news.headlines("SPY", *window) == expected
    assert "_draws" not in news.__getstate__()
    # an old snapshot: the default pickling of the object without the cache attribute
    monkeypatch.delattr(SimulatedNewsProvider, "__getstate__")
    monkeypatch.delattr(SimulatedNewsProvider, "__setstate__")
    del news._draws
    old = pickle.dumps(news)
    monkeypatch.undo()
    loaded = pickle.loads(old)
    assert (loaded.seed, loaded.rate, loaded.off_tone) == (4, 0.5, 0.25)
    assert loaded.headlines("SPY", *window) == expected
    assert pickle.loads(pickle.dumps(loaded)).headlines("SPY", *window) == expected
