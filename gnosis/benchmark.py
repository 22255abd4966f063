"""``gnosis bench``: the full pipeline over N synthetic 1-minute bars.

Only ``Engine.on_bar`` is timed (regime + agents + consensus + risk + positions + SimBroker);
generating the synthetic bars is not. Latency is per bar, so p99 shows the HMM refits.
"""

from __future__ import annotations

import resource
import sys
import time
from typing import Any

import numpy as np

from gnosis.core.clock import perf_counter_ns
from gnosis.core.config import load_config


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _import_lazy_dependencies() -> None:
    """Import what the pipeline loads on first use (hmmlearn at the first HMM fit, scipy's
    assignment, Black-Scholes, the news lexicon), so no timed bar pays a one-off import."""
    import importlib

    for module in ("hmmlearn.hmm", "scipy.optimize", "blackscholes",
                   "vaderSentiment.vaderSentiment"):
        importlib.import_module(module)


def run_pipeline_benchmark(
    bars: int, *, strategy: str = "agents", seed: int = 7, progress: bool = False
) -> dict[str, Any]:
    from gnosis.bootstrap import build_system, synthetic_market

    config = load_config(
        market={"symbols": ("SPY",), "seed": seed}, strategy={"name": strategy}
    )
    _import_lazy_dependencies()
    market = synthetic_market(config, bars)
    system = build_system(config, market, market=market)
    engine = system.engine
    latencies = np.empty(bars, dtype=np.float64)
    count = 0
    on_bar = engine.on_bar
    clock = perf_counter_ns
    started = time.perf_counter()
    report_every = max(bars // 20, 1)
    for bar in market.bars():
        if count >= bars:
            break
        t0 = clock()
        on_bar(bar)
        latencies[count] = clock() - t0
        count += 1
        if progress and count % report_every == 0:
            print(f"\r  {count:,}/{bars:,} bars", end="", file=sys.stderr, flush=True)
    wall = time.perf_counter() - started
    if progress:
        print(file=sys.stderr)
    latencies = latencies[:count]
    processing_s = float(latencies.sum()) / 1e9
    summary = engine.summary()
    return {
        "bars": count,
        "strategy": strategy,
        "pipeline_bars_per_s": round(count / processing_s, 1) if processing_s else 0.0,
        "decision_latency_p50_ms": round(float(np.percentile(latencies, 50)) / 1e6, 4),
        "decision_latency_p99_ms": round(float(np.percentile(latencies, 99)) / 1e6, 4),
        "decision_latency_max_ms": round(float(latencies.max()) / 1e6, 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "wall_s_including_generation": round(wall, 2),
        "trades": summary["trades"],
        "final_equity": summary["final_equity"],
    }
