"""A process that writes episodes to a real memory file as the engine would, for the SIGKILL
test: ``python -m tests.integration.memory_writer DIR FIRST LAST``.

For each i in [FIRST, LAST): recall for a candidate entry, open the episode, close it; after
each call returns (its transaction committed) it prints ``<what> <i>`` and flushes, so the
test knows what was committed before it killed the process. Every value is a function of i,
so a restart from an earlier FIRST replays the same writes, as the engine does after a crash.
"""

from __future__ import annotations

import sys
from pathlib import Path

from gnosis.memory import open_memory
from gnosis.model.memory import Situation
from gnosis.model.regime import REGIMES, RegimeState
from gnosis.model.types import Trade, Vote

T0 = 1_704_205_800_000_000_000
MINUTE = 60 * 10**9
AGENTS = ("hedge", "liquidity", "sentiment", "wyckoff", "markov")


def episode_id(i: int) -> str:
    return f"gn-crashtst-{i:07d}-SPY"


def situation(i: int) -> Situation:
    signal = 1 if i % 3 else -1
    regime = REGIMES[i % len(REGIMES)]
    state = RegimeState(regime, 0.5 + (i % 5) / 10, trend_strength=((i % 9) - 4) / 5,
                        volatility=0.1 + (i % 7) / 20, range_position=(i % 11) / 10,
                        hmm_state="ranging", hmm_probabilities=(0.2, 0.2, 0.2, 0.2, 0.2))
    votes = tuple(Vote(agent, (1, -1, 0)[(i + n) % 3], ((i * (n + 1)) % 10) / 10,
                       f"{agent} on {i}") for n, agent in enumerate(AGENTS))
    ts = T0 + 10 * i * MINUTE
    return Situation("SPY", ts, ts + MINUTE, signal, 0.55 + (i % 4) / 10, regime,
                     state.confidence, state, votes, 100.0 + i % 13)


def trade(i: int) -> Trade:
    s = situation(i)
    won = i % 5 not in (0, 3)
    ret = 0.02 if won else -0.01
    entry = s.price
    exit_price = entry * (1 + ret * s.signal)
    return Trade("SPY", "long" if s.signal > 0 else "short", 10.0, entry, exit_price,
                 s.ts_event + MINUTE, s.ts_event + (2 + i % 6) * MINUTE, 1 + i % 6,
                 ret * entry * 10, ret, 0.01, "take_profit" if won else "stop_loss",
                 episode_id(i), max_favorable=max(ret, 0.0) + 0.001,
                 max_adverse=max(-ret, 0.0) + 0.001)


def main(directory: str, first: int, last: int) -> None:
    memory = open_memory(Path(directory))
    assert memory is not None
    for i in range(first, last):
        s = situation(i)
        memory.advise(s)
        print(f"recalled {i}", flush=True)
        memory.open_episode(episode_id(i), s, entry_price=s.price, quantity=10.0,
                            stop_price=s.price * (1 - 0.01 * s.signal),
                            target_price=s.price * (1 + 0.02 * s.signal))
        print(f"opened {i}", flush=True)
        memory.close_episode(episode_id(i), trade(i))
        print(f"closed {i}", flush=True)
    memory.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
