"""Many ``key_draw``s in one compiled call, for the per-bar draws of the backtest hot path.

``key_draw`` (gnosis.core.hashing, the specification) costs ~1 µs of hashlib and formatting
per key; the simulated news asks it once per bar and symbol. The keys of consecutive bars differ
only in their timestamp, so ``key_draws`` hashes a whole grid of them (``prefix + str(ts) +
suffix``) at once with BLAKE2b (RFC 7693) written here for the only case needed: unkeyed, an
8-byte digest, a message of at most one 128-byte block. Its draws equal ``key_draw``'s bit for
bit (tests/unit/test_news_draws.py):

- the digest is the first 8 bytes of the state word h[0], read little-endian, i.e. h[0] itself;
- all arithmetic is on uint64 (numba widens uint64 mixed with int64 to float64), so sums and
  rotations wrap mod 2**64 as the RFC's do;
- ``float(h) * 2**-64``: Python rounds the int to the nearest double (ties to even), and so does
  the compiled uint64 -> float64 conversion (a draw can round up to exactly 1.0 in both);
- keys that do not fit one block, and timestamps outside [0, 2**63), go to the specification.

The keys are hashed side by side (the state is 16 words x keys), so that each step of the G
function is one loop over the keys, which the compiler vectorizes: ~55 ns a key, against ~175
one key at a time and ~1 µs for ``key_draw``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gnosis.core.hashing import key_draws as reference_key_draws

BLOCK_BYTES = 128
_BATCH = 64  # keys hashed side by side: 16 x 64 words of state and message, 16 KiB
_INT64_MAX = 2**63 - 1

# RFC 7693, section 2.6: the initialization vector (the SHA-512 IV)
_IV = np.array([
    0x6A09E667F3BCC908, 0xBB67AE8584CAA73B, 0x3C6EF372FE94F82B, 0xA54FF53A5F1D36F1,
    0x510E527FADE682D1, 0x9B05688C2B3E6C1F, 0x1F83D9ABFB41BD6B, 0x5BE0CD19137E2179,
], dtype=np.uint64)
# RFC 7693, section 2.7: the message schedule of each round (round r uses row r mod 10)
_SIGMA = np.array([
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
    [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
    [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
    [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
    [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
    [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
    [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
    [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
    [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
], dtype=np.uint8)  # unsigned: indexing m needs no negative-index check
# parameter block word 0: digest length 8, key length 0, fanout 1, depth 1 (section 3.2)
_PARAM0 = np.uint64(0x01010008)
_ALL_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)  # the final-block flag inverts v[14]
_R32, _R24, _R16, _R63 = np.uint64(32), np.uint64(24), np.uint64(16), np.uint64(63)
_SIXTY_FOUR = np.uint64(64)
_EIGHT = np.uint64(8)
_SCALE = 1.0 / 2**64
_TEN = np.uint64(10)
_POWERS_OF_TEN = np.array([10**k for k in range(20)], dtype=np.uint64)  # int64 has <= 19 digits
_DIGIT_0 = np.uint64(48)  # ord("0")


@njit(cache=True, inline="always")
def _rotr(x: np.uint64, n: np.uint64) -> np.uint64:
    return (x >> n) | (x << (_SIXTY_FOUR - n))


@njit(cache=True, inline="always")
def _mix(va: np.ndarray, vb: np.ndarray, vc: np.ndarray, vd: np.ndarray, mx: np.ndarray,
         my: np.ndarray) -> None:
    """The G function (section 3.1) on four words of the working vector, for every message at
    once: one simple loop over the messages, which the compiler turns into SIMD (~3x faster
    per hash than one message at a time, all in registers)."""
    for j in range(va.shape[0]):
        a = va[j] + vb[j] + mx[j]
        d = _rotr(vd[j] ^ a, _R32)
        c = vc[j] + d
        b = _rotr(vb[j] ^ c, _R24)
        a = a + b + my[j]
        d = _rotr(d ^ a, _R16)
        c = c + d
        b = _rotr(b ^ c, _R63)
        va[j] = a
        vb[j] = b
        vc[j] = c
        vd[j] = d


@njit(cache=True)
def _load_words(block: np.ndarray, m: np.ndarray, j: int) -> None:
    """The 16 little-endian words of a 128-byte ``block`` into column ``j`` of ``m``."""
    for i in range(16):
        word = np.uint64(0)
        for k in range(8):
            word |= np.uint64(block[8 * i + k]) << (_EIGHT * np.uint64(k))
        m[i, j] = word


@njit(cache=True)
def _digest_words(m: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """BLAKE2b with an 8-byte digest of each one-block message: column j of ``m`` (16 x n
    words) holds message j, zero past its ``lengths[j]`` bytes. The digests as little-endian
    uint64: the digest is the first 8 bytes of the state word h[0]."""
    n = lengths.shape[0]
    h0 = _IV[0] ^ _PARAM0
    v = np.empty((16, n), np.uint64)
    for i in range(8):
        v[i, :] = _IV[i]
        v[i + 8, :] = _IV[i]
    v[0, :] = h0
    for j in range(n):
        v[12, j] ^= np.uint64(lengths[j])  # the byte counter t: the whole message, < 2**64
    v[14, :] = _IV[6] ^ _ALL_ONES  # the final-block flag: last (and only) block
    for r in range(12):
        s = _SIGMA[r % 10]
        _mix(v[0], v[4], v[8], v[12], m[s[0]], m[s[1]])
        _mix(v[1], v[5], v[9], v[13], m[s[2]], m[s[3]])
        _mix(v[2], v[6], v[10], v[14], m[s[4]], m[s[5]])
        _mix(v[3], v[7], v[11], v[15], m[s[6]], m[s[7]])
        _mix(v[0], v[5], v[10], v[15], m[s[8]], m[s[9]])
        _mix(v[1], v[6], v[11], v[12], m[s[10]], m[s[11]])
        _mix(v[2], v[7], v[8], v[13], m[s[12]], m[s[13]])
        _mix(v[3], v[4], v[9], v[14], m[s[14]], m[s[15]])
    out = np.empty(n, np.uint64)
    for j in range(n):
        out[j] = h0 ^ v[0, j] ^ v[8, j]
    return out


@njit(cache=True)
def blake2b_word(message: bytes | np.ndarray) -> np.uint64:
    """``int.from_bytes(blake2b(message, digest_size=8).digest(), "little")`` for a message
    (bytes or a uint8 array) of at most 128 bytes."""
    n = len(message)
    if n > BLOCK_BYTES:
        raise ValueError("blake2b_word hashes messages of at most 128 bytes")
    block = np.zeros(BLOCK_BYTES, np.uint8)
    for i in range(n):
        block[i] = message[i]
    m = np.empty((16, 1), np.uint64)
    _load_words(block, m, 0)
    return _digest_words(m, np.full(1, n, np.int64))[0]


@njit(cache=True)
def words_to_units(words: np.ndarray) -> np.ndarray:
    """``word * 2**-64`` for each uint64 word, as Python computes it for an int: to the nearest
    double, ties to even (so a word within 2**10 of 2**64 gives 1.0), then an exact scaling by
    a power of two. (The compiler may turn this loop into SIMD conversions: tested as such.)"""
    out = np.empty(words.shape[0], np.float64)
    for j in range(words.shape[0]):
        out[j] = np.float64(words[j]) * _SCALE
    return out


@njit(cache=True)
def _write_key(block: np.ndarray, n_prefix: int, ts: int, suffix: bytes | np.ndarray,
               previous_digits: int) -> int:
    """``str(ts) + suffix`` into ``block`` after its ``n_prefix`` bytes of prefix, zero after;
    ``previous_digits``: the length of the ts this block holds (its suffix stays if equal).
    Returns the length of ts's digits."""
    if ts < 0:
        raise ValueError("news_draws takes non-negative timestamps only")
    rest = np.uint64(ts)  # unsigned: cheaper division, no sign fix-ups
    n_digits = 1
    while n_digits < 19 and rest >= _POWERS_OF_TEN[n_digits]:
        n_digits += 1
    n_suffix = len(suffix)
    length = n_prefix + n_digits + n_suffix
    if length > BLOCK_BYTES:
        raise ValueError("news_draws hashes keys of at most 128 bytes")
    if n_digits != previous_digits:  # the suffix moves
        for i in range(n_suffix):
            block[n_prefix + n_digits + i] = suffix[i]
        block[length:] = 0
    for i in range(n_prefix + n_digits - 1, n_prefix - 1, -1):  # last digit first
        block[i] = _DIGIT_0 + rest % _TEN
        rest //= _TEN
    return n_digits


@njit(cache=True)
def news_draws(prefix: bytes | np.ndarray, first_ts: int, step_ns: int, count: int,
               suffix: bytes | np.ndarray) -> np.ndarray:
    """``key_draw(prefix + str(ts) + suffix)`` for ts = first_ts + j * step_ns, j < count, with
    prefix and suffix UTF-8 encoded (bytes or uint8 arrays). Every ts must be in [0, 2**63)
    and every key at most 128 bytes: ``key_draws`` checks both before calling (a ts that
    overflows int64 may wrap unnoticed here) and sends anything else to the specification.
    Hashes ``_BATCH`` keys at a time, so the working arrays stay in the L1 cache."""
    words = np.empty(count, np.uint64)
    batch = max(1, min(count, _BATCH))
    m = np.zeros((16, batch), np.uint64)
    lengths = np.zeros(batch, np.int64)
    block = np.zeros(BLOCK_BYTES, np.uint8)
    n_prefix = len(prefix)
    for i in range(n_prefix):
        block[i] = prefix[i]
    n_digits = 0
    for start in range(0, count, batch):
        n = min(batch, count - start)  # a short last batch hashes stale columns, unread
        for j in range(n):
            n_digits = _write_key(block, n_prefix, first_ts + (start + j) * step_ns, suffix,
                                  n_digits)
            _load_words(block, m, j)
            lengths[j] = n_prefix + n_digits + len(suffix)
        words[start:start + n] = _digest_words(m, lengths)[:n]
    return words_to_units(words)


def key_draws(prefix: str, first_ts: int, step_ns: int, count: int, suffix: str) -> list[float]:
    """``gnosis.core.hashing.key_draws`` (the same draws, bit for bit) in one compiled call
    when every key fits one block and every ts is in [0, 2**63); the specification otherwise."""
    if count <= 0:
        return []
    head, tail = prefix.encode(), suffix.encode()
    last_ts = first_ts + (count - 1) * step_ns
    high = max(first_ts, last_ts)
    if (min(first_ts, last_ts) < 0 or high > _INT64_MAX
            or len(head) + len(str(high)) + len(tail) > BLOCK_BYTES):
        return reference_key_draws(prefix, first_ts, step_ns, count, suffix)
    draws: list[float] = news_draws(head, first_ts, step_ns, count, tail).tolist()
    return draws
