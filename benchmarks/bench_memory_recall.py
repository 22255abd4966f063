"""Episodic memory: recall latency with 100,000 stored episodes, and what each write costs.

Builds a real memory file of N closed episodes (seeded, realistic situations: every regime,
five agents voting, reflections from the rule table), then measures on that file:

- open: opening the store (schema check, full read for corruption, recall index load);
- recall: ``DuckDBMemory.advise`` minus its recall log, i.e. the cosine top-k in DuckDB over
  the candidate window plus the weighting (the design target: p99 <= 5 ms), and the same with
  the window off (a full scan of all N episodes) for comparison;
- advise: recall plus the recall log write, as the engine pays it, in both connection modes;
- writes per episode (open + close), persistent connection vs one short-lived connection per
  write (the bot's live mode, which lets other processes read between writes);
- readers: a read-only open plus ``stats`` (the CLI), and what a Parquet snapshot of all
  episodes would cost instead (the alternative design: the bot holds the file and exports).

    python benchmarks/bench_memory_recall.py [--episodes 100000] [--recalls 1000] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gnosis.core.clock import perf_counter_ns  # noqa: E402
from gnosis.core.config import MemoryConfig  # noqa: E402
from gnosis.memory import DuckDBMemory, MemoryReader, memory_path  # noqa: E402
from gnosis.memory.reflection import reflect  # noqa: E402
from gnosis.memory.store import _outcome, _situation_row  # noqa: E402
from gnosis.memory.vector import AGENTS  # noqa: E402
from gnosis.model.memory import Situation  # noqa: E402
from gnosis.model.regime import HMM_LABELS, REGIMES, RegimeState  # noqa: E402
from gnosis.model.types import Trade, Vote  # noqa: E402

T0 = 1_704_205_800_000_000_000
MINUTE = 60 * 10**9


def random_situation(rng: random.Random, ts: int) -> Situation:
    regime = rng.choice(REGIMES)
    weights = [rng.random() for _ in HMM_LABELS]
    total = sum(weights)
    state = RegimeState(regime, rng.uniform(0.3, 1.0), trend_strength=rng.uniform(-1, 1),
                        volatility=rng.lognormvariate(-1.8, 0.5),
                        range_position=rng.uniform(-0.2, 1.2),
                        hmm_state=rng.choice(HMM_LABELS),
                        hmm_probabilities=tuple(w / total for w in weights))
    votes = tuple(Vote.abstain(agent, "off") if rng.random() < 0.2 else
                  Vote(agent, rng.choice((-1, 0, 1)), rng.random(), f"{agent} reasoning")
                  for agent in AGENTS)
    return Situation("SPY" if rng.random() < 0.5 else "QQQ", ts, ts + MINUTE,
                     rng.choice((-1, 1)), rng.uniform(0.3, 0.95), regime, state.confidence,
                     state, votes, rng.uniform(50, 500))


def random_trade(rng: random.Random, s: Situation, episode_id: str) -> Trade:
    ret = rng.gauss(0.001, 0.012)
    bars = rng.randint(1, 120)
    return Trade(s.symbol, "long" if s.signal > 0 else "short", 10.0, s.price,
                 s.price * (1 + ret * s.signal), s.ts_event + MINUTE,
                 s.ts_event + (1 + bars) * MINUTE, bars, ret * s.price * 10, ret, 0.05,
                 rng.choice(("stop_loss", "take_profit", "time_stop", "signal_reversal")),
                 episode_id, max_favorable=abs(ret) + rng.random() * 0.01,
                 max_adverse=abs(ret) + rng.random() * 0.01)


def fill(path: Path, count: int, seed: int) -> int:
    """Bulk-load ``count`` closed episodes (the store's own rows, inserted in one go)."""
    rng = random.Random(seed)
    config = MemoryConfig()
    rows: list[dict[str, Any]] = []
    from gnosis.memory.store import _OUTCOME_COLUMNS, _SITUATION_COLUMNS

    for i in range(count):
        s = random_situation(rng, T0 + i * 3 * MINUTE)
        episode_id = f"gn-benchmrk-{i:07d}-{s.symbol}"
        stop = s.price * (1 - 0.02 * s.signal)
        target = s.price * (1 + 0.04 * s.signal)
        trade = random_trade(rng, s, episode_id)
        reflection = reflect(_outcome(trade, stop, target, 0.6, config))
        situation = _situation_row(s, s.price, 10.0, stop, target)
        outcome = [trade.entry_ts, trade.exit_ts, trade.exit_price, trade.pnl, trade.return_pct,
                   trade.fees, trade.bars_held, trade.exit_reason, trade.max_favorable,
                   trade.max_adverse, reflection.rule, reflection.critique, reflection.lesson]
        rows.append(dict(zip(("id", *_SITUATION_COLUMNS, *_OUTCOME_COLUMNS),
                             [episode_id, *situation, *outcome], strict=True)))
    memory = DuckDBMemory(path, config)  # creates the schema
    table = pa.Table.from_pylist(rows)
    with memory.db.transaction() as con:
        con.register("incoming", table)
        con.execute("INSERT INTO episodes SELECT * FROM incoming")
        con.unregister("incoming")
    memory.close()
    return int(rows[-1]["exit_ts"])


CPU: list[float] = []  # CPU time of the last timed calls: on a shared, busy machine the wall
# time includes waiting for a core; the CPU time is the work itself (DuckDB runs the recall
# index on one thread, in this process)


def timed(fn: Any) -> float:
    start, cpu = perf_counter_ns(), time.process_time_ns()
    fn()
    CPU.append((time.process_time_ns() - cpu) / 1e6)
    return (perf_counter_ns() - start) / 1e6


def measured(fn: Any, items: list[Any]) -> dict[str, float]:
    """Wall-time summary of ``fn(item)`` over the items, with the CPU-time median and p99."""
    CPU.clear()
    wall = summary([timed(lambda item=item: fn(item)) for item in items])
    cpu = summary(CPU)
    return {**wall, "cpu_median_ms": cpu["median_ms"], "cpu_p99_ms": cpu["p99_ms"]}


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return {"n": len(samples), "median_ms": round(statistics.median(ordered), 3),
            "p99_ms": round(p99, 3), "max_ms": round(ordered[-1], 3)}


def probes(count: int, after: int, seed: int) -> list[Situation]:
    rng = random.Random(seed)
    return [random_situation(rng, after + (i + 1) * MINUTE) for i in range(count)]


def recall_only(memory: DuckDBMemory, situation: Situation) -> None:
    from gnosis.memory.advice import advice_from
    from gnosis.memory.vector import situation_vector

    cfg = memory.config
    candidates = memory.index.recall(situation_vector(situation), situation.ts_event, cfg.k,
                                     cfg.min_similarity, cfg.max_candidates)
    advice_from(situation, candidates, cfg)


def measure_recalls(memory: DuckDBMemory, situations: list[Situation], episodes: int,
                    results: dict[str, Any]) -> None:
    for s in situations[:20]:  # warm up DuckDB's caches and plans
        recall_only(memory, s)
    results["recall"] = measured(lambda s: recall_only(memory, s), situations)
    windowed = memory.config
    for window in (10_000, 25_000, 50_000, episodes + 1):  # for comparison
        memory.config = windowed.model_copy(update={"max_candidates": window})
        results[f"recall_window_{min(window, episodes)}"] = measured(
            lambda s: recall_only(memory, s), situations[: len(situations) // 2])
    memory.config = windowed
    results["recall_window"] = windowed.max_candidates


def measure_writes(path: Path, memory: DuckDBMemory, situations: list[Situation],
                   last_exit: int, args: argparse.Namespace, results: dict[str, Any]) -> None:
    results["advise_persistent"] = summary([timed(lambda s=s: memory.advise(s))
                                            for s in situations[: args.writes]])
    rng = random.Random(args.seed + 2)
    extra = probes(2 * args.writes, last_exit + 10**12, args.seed + 3)

    def write(store: DuckDBMemory, s: Situation, n: int) -> None:
        episode_id = f"gn-benchwrt-{n:07d}-{s.symbol}"
        store.open_episode(episode_id, s, entry_price=s.price, quantity=10.0,
                           stop_price=None, target_price=None)
        store.close_episode(episode_id, random_trade(rng, s, episode_id))

    results["write_persistent"] = summary(
        [timed(lambda s=s, n=n: write(memory, s, n)) for n, s in enumerate(extra[::2])])
    memory.close()
    shared = DuckDBMemory(path, shared=True)
    results["write_shared"] = summary(
        [timed(lambda s=s, n=n: write(shared, s, 10**6 + n))
         for n, s in enumerate(extra[1::2][: args.writes // 2])])
    results["advise_shared"] = summary([timed(lambda s=s: shared.advise(s))
                                        for s in situations[: args.writes // 2]])
    shared.close()


def measure_readers(path: Path, results: dict[str, Any]) -> None:
    results["reader_open_stats"] = summary(
        [timed(lambda: MemoryReader(path).stats()) for _ in range(5)])
    snapshot = path.parent / "snapshot.parquet"
    reader = MemoryReader(path)

    def export() -> None:
        with reader.db.connection() as con:
            con.execute(f"COPY episodes TO '{snapshot}' (FORMAT parquet)")

    results["parquet_snapshot"] = summary([timed(export) for _ in range(3)])


def report(results: dict[str, Any], episodes: int) -> None:
    print(f"episodic memory with {episodes:,} episodes ({results['file_mb']} MB file, "
          f"filled in {results['fill_s']} s, opened in {results['open_ms']} ms)")
    windows = sorted(int(k.rsplit("_", 1)[1]) for k in results
                     if k.startswith("recall_window_"))
    for key, label in (
        ("recall", f"recall (default window: the {results['recall_window']:,} latest)"),
        *((f"recall_window_{w}", f"recall, window of the {w:,} latest"
           + (" (full scan)" if w == episodes else "")) for w in windows),
        ("advise_persistent", "advise incl. recall log, persistent connection"),
        ("advise_shared", "advise incl. recall log, short-lived connections (live)"),
        ("write_persistent", "open + close an episode, persistent connection"),
        ("write_shared", "open + close an episode, short-lived connections (live)"),
        ("reader_open_stats", "CLI: read-only open + stats"),
        ("parquet_snapshot", "alternative: Parquet snapshot of all episodes"),
    ):
        r = results[key]
        cpu = (f"  cpu median {r['cpu_median_ms']:.2f} p99 {r['cpu_p99_ms']:.2f}"
               if "cpu_median_ms" in r else "")
        print(f"  {label:<52} median {r['median_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  "
              f"(n={r['n']}){cpu}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100_000)
    parser.add_argument("--recalls", type=int, default=1_000)
    parser.add_argument("--writes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[str, Any] = {"episodes": args.episodes}
    with tempfile.TemporaryDirectory() as folder:
        path = memory_path(Path(folder))
        exits: list[int] = []
        results["fill_s"] = round(timed(lambda: exits.append(
            fill(path, args.episodes, args.seed))) / 1e3, 1)
        opened: list[DuckDBMemory] = []
        results["open_ms"] = round(timed(lambda: opened.append(DuckDBMemory(path))), 1)
        results["file_mb"] = round(path.stat().st_size / 2**20, 1)
        situations = probes(args.recalls, exits[0], args.seed + 1)
        measure_recalls(opened[0], situations, args.episodes, results)
        measure_writes(path, opened[0], situations, exits[0], args, results)
        measure_readers(path, results)
    if args.json:
        print(json.dumps(results))
    else:
        report(results, args.episodes)


if __name__ == "__main__":
    main()
