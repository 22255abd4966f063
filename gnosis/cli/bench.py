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
    bench.add_argument("--json", action="store_true")


def main(args: argparse.Namespace) -> int:
    from gnosis.benchmark import run_pipeline_benchmark

    result = run_pipeline_benchmark(args.bars, strategy=args.strategy, seed=args.seed,
                                    progress=not args.json and sys.stderr.isatty())
    if args.json:
        print(dump_json(result))
    else:
        for key, value in result.items():
            print(f"  {key:<28} {value}")
    return 0
