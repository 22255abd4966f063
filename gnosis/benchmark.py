"""``gnosis bench``: the full pipeline over N synthetic 1-minute bars, or M minutes of many symbols.

Only ``Engine.on_bar`` is timed (regime + HMM + agents + consensus + memory when on + risk +
positions + SimBroker); generating the synthetic bars is not. HMM fits run on the worker thread
as in live mode; their CPU time is added to the pipeline's (``hmm_worker_cpu_s``), so
``pipeline_bars_per_s`` counts every cost of the pipeline on one core. Latency is per bar (one
symbol) or per minute (``--symbols N``: every symbol's bar of that minute), so p99 and max show
any stall.
"""

from __future__ import annotations

import resource
import sys
import time
from time import perf_counter_ns  # the C function: a wrapper's call would land in the timing
from typing import Any

import numpy as np

from gnosis.core import background
from gnosis.core.config import load_config


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _import_lazy_dependencies(strategy: str) -> None:
    """Import (and compile) what the pipeline loads on first use: the compiled step and HMM
    fit (numba's cache), the news lexicon, so no timed bar pays a one-off import."""
    import importlib

    importlib.import_module("vaderSentiment.vaderSentiment")
    if strategy == "agents":
        from gnosis.agents.sentiment_lexicon import score_text
        from gnosis.strategies.fast import warm_up_compiled

        warm_up_compiled()
        score_text("warm up the lexicon")


def _latency_summary(latencies_ns: np.ndarray, prefix: str) -> dict[str, float]:
    return {
        f"{prefix}_p50_ms": round(float(np.percentile(latencies_ns, 50)) / 1e6, 4),
        f"{prefix}_p99_ms": round(float(np.percentile(latencies_ns, 99)) / 1e6, 4),
        f"{prefix}_max_ms": round(float(latencies_ns.max()) / 1e6, 3),
    }


def _system(symbols: tuple[str, ...], bars: int, strategy: str, seed: int, fast: bool,
            memory: bool) -> tuple[Any, Any]:
    from gnosis.bootstrap import build_system, synthetic_market

    config = load_config(market={"symbols": symbols, "seed": seed},
                         strategy={"name": strategy, "fast": fast})
    _import_lazy_dependencies(strategy)
    market = synthetic_market(config, bars)
    system = build_system(config, market, market=market)
    if memory:
        from gnosis.memory import open_memory

        system.engine.attach_memory(open_memory(None, enabled=True, config=config.memory,
                                                backtest=True))
    return market, system.engine


def run_pipeline_benchmark(
    bars: int, *, strategy: str = "agents", seed: int = 7, progress: bool = False,
    fast: bool = True, memory: bool = False,
) -> dict[str, Any]:
    """One symbol, ``bars`` bars: throughput, per-bar latency, peak RSS."""
    market, engine = _system(("SPY",), bars, strategy, seed, fast, memory)
    latencies = np.empty(bars, dtype=np.int64)
    count = 0
    on_bar = engine.on_bar
    clock = perf_counter_ns
    report_every = max(bars // 20, 1)
    background.use_worker_thread()  # HMM fits off the core thread, as live
    worker_before = background.worker_cpu_seconds()
    started = time.perf_counter()
    try:
        for bar in market.bars():
            if count >= bars:
                break
            t0 = clock()
            on_bar(bar)
            latencies[count] = clock() - t0
            count += 1
            if progress and count % report_every == 0:
                print(f"\r  {count:,}/{bars:,} bars", end="", file=sys.stderr, flush=True)
    finally:
        background.use_inline()
    wall = time.perf_counter() - started
    if progress:
        print(file=sys.stderr)
    latencies = latencies[:count]
    worker_s = background.worker_cpu_seconds() - worker_before
    processing_s = float(latencies.sum()) / 1e9 + worker_s
    summary = engine.summary()
    result: dict[str, Any] = {
        "bars": count,
        "strategy": strategy,
        "path": "fast" if fast or strategy != "agents" else "reference",
        "memory": memory,
        "pipeline_bars_per_s": round(count / processing_s, 1) if processing_s else 0.0,
        "core_thread_s": round(float(latencies.sum()) / 1e9, 3),
        "hmm_worker_cpu_s": round(worker_s, 3),
        **_latency_summary(latencies, "decision_latency"),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "wall_s_including_generation": round(wall, 2),
        "trades": summary["trades"],
        "final_equity": summary["final_equity"],
    }
    if memory and "memory" in summary:
        result["memory_recalls"] = summary["memory"].get("recalls")
    return result


def run_symbols_benchmark(
    symbols: int, minutes: int, *, seed: int = 7, progress: bool = False, fast: bool = True,
) -> dict[str, Any]:
    """``symbols`` symbols for ``minutes`` minutes: the time to process each minute's bars of
    every symbol (the live budget of one minute), median, p99 and max."""
    names = tuple(f"S{i:03d}" for i in range(symbols))
    market, engine = _system(names, symbols * minutes, "agents", seed, fast, False)
    per_minute = np.zeros(minutes, dtype=np.int64)
    on_bar = engine.on_bar
    clock = perf_counter_ns
    minute, current, count = -1, -1, 0
    background.use_worker_thread()
    worker_before = background.worker_cpu_seconds()
    try:
        for bar in market.bars():
            if bar.ts_event != current:
                current = bar.ts_event
                minute += 1
                if minute >= minutes:
                    break
                if progress and minute % 50 == 0:
                    print(f"\r  minute {minute:,}/{minutes:,}", end="", file=sys.stderr,
                          flush=True)
            t0 = clock()
            on_bar(bar)
            per_minute[minute] += clock() - t0
            count += 1
    finally:
        background.use_inline()
    if progress:
        print(file=sys.stderr)
    per_minute = per_minute[:minute + 1] if minute < minutes else per_minute
    worker_s = background.worker_cpu_seconds() - worker_before
    worst = int(np.argmax(per_minute))
    return {
        "symbols": symbols,
        "minutes": len(per_minute),
        "bars": count,
        "path": "fast" if fast else "reference",
        **_latency_summary(per_minute, "minute"),
        "worst_minute": worst,
        "hmm_worker_cpu_s": round(worker_s, 3),
        "pipeline_bars_per_s": round(count / (float(per_minute.sum()) / 1e9 + worker_s), 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
