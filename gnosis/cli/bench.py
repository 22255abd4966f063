"""``gnosis bench``: the full pipeline's throughput, latency and memory."""

from __future__ import annotations

import argparse
import sys

from gnosis.cli.common import dump_json, positive_int


def add_parser(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="measure the full pipeline")
    bench.add_argument("--bars", type=positive_int, default=100_000)
    bench.add_argument("--strategy", choices=("agents", "sma"), default="agents")
    bench.add_argument("--seed", type=int, default=7)
    bench.add_argument("--memory", choices=("on", "off"), default="off",
                       help="episodic memory (DuckDB recall on every candidate entry)")
    bench.add_argument("--reference", action="store_true",
                       help="the agents' reference per-bar path instead of the compiled one")
    bench.add_argument("--symbols", type=positive_int, default=None,
                       help="that many synthetic symbols: time each minute's bars of all of "
                            "them (median, p99, max per minute)")
    bench.add_argument("--minutes", type=positive_int, default=1_000,
                       help="minutes to run with --symbols (default 1,000: every first HMM "
                            "fit happens in the first 670)")
    bench.add_argument("--json", action="store_true")


def main(args: argparse.Namespace) -> int:
    from gnosis.benchmark import run_pipeline_benchmark, run_symbols_benchmark

    progress = not args.json and sys.stderr.isatty()
    if args.symbols is not None:
        result = run_symbols_benchmark(args.symbols, args.minutes, seed=args.seed,
                                       progress=progress, fast=not args.reference)
    else:
        result = run_pipeline_benchmark(args.bars, strategy=args.strategy, seed=args.seed,
                                        progress=progress, fast=not args.reference,
                                        memory=args.memory == "on")
    if args.json:
        print(dump_json(result))
    else:
        for key, value in result.items():
            print(f"  {key:<28} {value}")
    return 0
