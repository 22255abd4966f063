"""Live mode's cost of crash-safe state: N symbols' bars of each minute through the full pipeline
with a state directory, committing after every bar or once per minute's burst (as the live bot
does when bars arrive together). Prints the time per minute (median, p99, max) of each.

    python benchmarks/bench_live_state.py --symbols 500 --minutes 60

``gnosis bench --symbols N`` measures the pipeline alone (no state); this adds what a live run
pays to survive ``kill -9`` at any moment.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from gnosis.benchmark import _import_lazy_dependencies
from gnosis.bootstrap import build_system, synthetic_market
from gnosis.cli.common import positive_int
from gnosis.core import background
from gnosis.core.config import load_config


def run(symbols: int, minutes: int, burst: bool) -> dict[str, Any]:
    names = tuple(f"S{i:03d}" for i in range(symbols))
    config = load_config(market={"symbols": names, "seed": 7})
    market = synthetic_market(config, symbols * (minutes + 1))
    with tempfile.TemporaryDirectory() as state:
        system = build_system(config, market, market=market, state_dir=Path(state))
        engine = system.engine
        bars = iter(market.bars())
        per_minute: list[float] = []
        pending = next(bars)
        background.use_worker_thread()
        try:
            for _ in range(minutes):
                minute = [pending]
                for bar in bars:
                    if bar.ts_event != pending.ts_event:
                        pending = bar
                        break
                    minute.append(bar)
                started = time.perf_counter()
                for bar in minute[:-1]:
                    engine.on_bar(bar, commit=not burst)
                engine.on_bar(minute[-1])
                per_minute.append(time.perf_counter() - started)
        finally:
            background.use_inline()
            assert system.store is not None
            system.store.close()
    times = np.asarray(per_minute[minutes // 4:]) * 1e3  # after the first commits of each part
    return {"symbols": symbols, "minutes": minutes,
            "commit": "once per minute" if burst else "after every bar",
            "minute_median_ms": round(float(np.median(times)), 1),
            "minute_p99_ms": round(float(np.percentile(times, 99)), 1),
            "minute_max_ms": round(float(times.max()), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=positive_int, default=100)
    parser.add_argument("--minutes", type=positive_int, default=60)
    args = parser.parse_args()
    _import_lazy_dependencies("agents")
    for burst in (False, True):
        print(json.dumps(run(args.symbols, args.minutes, burst)))


if __name__ == "__main__":
    main()
