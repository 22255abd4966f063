"""The compiled fast path against the reference path, on many bars and on real files.

Runs ``gnosis backtest`` twice per case, once as is (the fast path) and once with
``--reference``, each in its own process, and checks that the ``--decisions`` files are
byte-identical and that every summary figure but the timings is equal. Cases:

- the synthetic market, ``--bars`` bars (default 1,000,000), seed 7;
- tests/data/asml_daily.csv (real daily bars; HMM refits every 130 bars);
- a minute file written with the synthetic market's writer (``--minute-bars`` bars of two
  symbols, CSV in Alpaca's column names), replayed as a data file.

    python benchmarks/fast_parity.py [--bars 1000000] [--minute-bars 200000] [--json]

Exit status 0 when every case is identical, 1 otherwise (the first differing line is printed).
"""

from __future__ import annotations

import argparse
import filecmp
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNPINNED = {"bars_per_s", "elapsed_s", "state_dir"}


def backtest(args: list[str], decisions: Path) -> tuple[dict, float]:
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "gnosis.cli", "backtest", "--json", "--no-progress",
         "--decisions", str(decisions), *args],
        check=True, capture_output=True, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - started
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    return {k: v for k, v in summary.items() if k not in UNPINNED}, elapsed


def first_difference(a: Path, b: Path) -> str:
    with a.open() as left, b.open() as right:
        for number, (x, y) in enumerate(zip(left, right), start=1):
            if x != y:
                return f"line {number}:\n  fast      {x.rstrip()}\n  reference {y.rstrip()}"
    return "one file is longer"


def compare(name: str, args: list[str], folder: Path) -> dict:
    fast_file, reference_file = folder / f"{name}-fast.csv", folder / f"{name}-reference.csv"
    fast, fast_s = backtest(args, fast_file)
    reference, reference_s = backtest([*args, "--reference"], reference_file)
    same_file = filecmp.cmp(fast_file, reference_file, shallow=False)
    differences = {k: (fast.get(k), reference.get(k)) for k in sorted(set(fast) | set(reference))
                   if fast.get(k) != reference.get(k)}
    result = {
        "case": name,
        "bars": fast["bars"],
        "trades": fast["trades"],
        "decisions_rows": sum(1 for _ in fast_file.open()) - 1,
        "identical_decisions_file": same_file,
        "identical_summary": not differences,
        "fast_s": round(fast_s, 1),
        "reference_s": round(reference_s, 1),
    }
    if not same_file:
        result["first_difference"] = first_difference(fast_file, reference_file)
    if differences:
        result["summary_differences"] = differences
    return result


def minute_file(folder: Path, bars: int) -> Path:
    sys.path.insert(0, str(ROOT))
    from gnosis.data.replay import write_bars_csv
    from gnosis.data.synthetic import SyntheticMarket

    symbols = ("AAA", "BBB")
    days = bars // (390 * len(symbols)) + 2
    market = SyntheticMarket(symbols=symbols, seed=11, days=days)
    path = folder / "minutes.csv"
    write_bars_csv((bar for _, bar in zip(range(bars), market.bars())), path, style="alpaca")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--minute-bars", type=int, default=200_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results.append(compare("synthetic", ["--synthetic", "--bars", str(args.bars),
                                             "--seed", "7"], folder))
        results.append(compare("asml_daily", ["--data", str(ROOT / "tests/data/asml_daily.csv"),
                                              "--symbol", "ASML"], folder))
        results.append(compare("minute_file", ["--data", str(minute_file(folder,
                                                                          args.minute_bars))],
                               folder))
    if args.json:
        print(json.dumps(results))
    else:
        for result in results:
            print(json.dumps(result))
    ok = all(r["identical_decisions_file"] and r["identical_summary"] for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
