"""``gnosis memory stats | list | show ID``: inspect the episodic memory of a state directory.

Reads open the file read-only for the moment of the query, so they work while the bot runs
(the bot holds the file only for the milliseconds of each write).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gnosis.cli.common import CommandError, dump_json, positive_int
from gnosis.model.types import format_ns


def add_parser(sub: argparse._SubParsersAction) -> None:
    memory = sub.add_parser("memory", help="inspect the episodic memory (stats, list, show)")
    actions = memory.add_subparsers(dest="action", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--state-dir", type=Path, default=Path("gnosis-state"),
                            help="state directory holding memory.duckdb (default ./gnosis-state)")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def filters(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--symbol", help="only this symbol")
        parser.add_argument("--regime", help="only entries taken in this regime")

    stats = actions.add_parser("stats", help="win rates, adjustments and their history")
    common(stats)
    filters(stats)
    listing = actions.add_parser("list", help="the latest episodes")
    common(listing)
    filters(listing)
    listing.add_argument("--outcome", choices=("win", "loss", "open"), help="only these")
    listing.add_argument("--limit", type=positive_int, default=30, help="rows (default 30)")
    show = actions.add_parser("show", help="one episode: situation, outcome, lesson, recall")
    common(show)
    show.add_argument("id", help="episode id (the entry's client order id), or a unique part")


def main(args: argparse.Namespace) -> int:
    from gnosis.memory import MemoryReader, MemoryUnavailable, memory_path

    try:
        reader = MemoryReader(memory_path(args.state_dir))
        if args.action == "stats":
            result: Any = reader.stats(symbol=args.symbol, regime=args.regime)
            _emit(result, args.json, _print_stats)
        elif args.action == "list":
            result = reader.episodes(symbol=args.symbol, regime=args.regime,
                                     outcome=args.outcome, limit=args.limit)
            _emit({"episodes": result}, args.json, lambda r: _print_list(r["episodes"]))
        else:
            try:
                result = reader.episode(args.id)
            except LookupError as exc:
                raise CommandError(str(exc)) from None
            if result is None:
                raise CommandError(f"no episode {args.id!r} in {reader.path}")
            _emit(result, args.json, _print_episode)
    except MemoryUnavailable as exc:
        raise CommandError(str(exc)) from None
    return 0


def _emit(result: Any, as_json: bool, printer: Any) -> None:
    if as_json:
        print(dump_json(result))
    else:
        printer(result)


# -- terminal tables ---------------------------------------------------------------------------
def _cell(value: Any, kind: str = "") -> str:
    if value is None:
        return "-"
    if kind == "pct":
        return f"{value:+.2%}"
    if kind == "rate":
        return f"{value:.0%}"
    if kind == "time":
        return format_ns(int(value))
    if kind == "money":
        return f"{value:+,.2f}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, str]]) -> str:
    """Rows as an aligned text table; ``columns`` are (key, header, kind)."""
    cells = [[_cell(row.get(key), kind) for key, _, kind in columns] for row in rows]
    headers = [header for _, header, _ in columns]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [kind in ("pct", "rate", "money", "num") for _, _, kind in columns]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if n else v.ljust(w)
                         for v, w, n in zip(values, widths, numeric)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, cells)])


_GROUP = (("key", "", ""), ("closed", "closed", "num"), ("win_rate", "win rate", "rate"),
          ("mean_return", "mean return", "pct"), ("pnl", "pnl", "money"))


def _print_stats(s: dict[str, Any]) -> None:
    if not s["episodes"]:
        print("no episodes yet")
        return
    win = "-" if s["win_rate"] is None else f"{s['win_rate']:.1%}"
    print(f"episodes {s['episodes']} ({s['closed']} closed, {s['open']} open), win rate {win}, "
          f"pnl {s['total_pnl']:+,.2f}, from {_cell(s['first_ts'], 'time')} "
          f"to {_cell(s['last_exit_ts'], 'time')}")
    r = s["recalls"]
    if r["recalls"]:
        print(f"recalls {r['recalls']}: {r['adjusted']} adjusted (size up {r['scaled_up']}, "
              f"down {r['scaled_down']}), mean confidence change "
              f"{r['mean_confidence_change']:+.3f}, mean size x{r['mean_size_scale']:.3f}, "
              f"{r['mean_episodes_used']:.1f} episodes used on average")
    for title, key in (("by regime", "by_regime"), ("by symbol", "by_symbol"),
                       ("by exit reason", "by_exit_reason"), ("by lesson rule", "by_rule")):
        if s[key]:
            columns = ((("key", title[3:], ""),) + _GROUP[1:])
            print(f"\n{title}\n{table(s[key], columns)}")
    if s["memory_calls"]:
        print("\nhow memory's calls turned out (closed episodes by the advice their entry got)")
        print(table(s["memory_calls"], (("advice", "advice", ""),) + _GROUP[1:]))
    if s["over_time"]:
        print("\nover time (month of the decision)")
        print(table(s["over_time"], (
            ("month", "month", ""), ("closed", "closed", "num"), ("win_rate", "win rate", "rate"),
            ("mean_return", "mean return", "pct"), ("recalls", "recalls", "num"),
            ("adjusted", "adjusted", "num"),
            ("mean_confidence_change", "mean conf change", "num"),
            ("mean_size_scale", "mean size scale", "num"))))


def _print_list(rows: list[dict[str, Any]]) -> None:
    if not rows:
        print("no episodes match")
        return
    for row in rows:
        row["side"] = "long" if row["signal"] > 0 else "short"
    print(table(rows, (
        ("id", "id", ""), ("bar_ts", "decided", "time"), ("symbol", "symbol", ""),
        ("side", "side", ""), ("regime", "regime", ""), ("confidence", "conf", "num"),
        ("return_pct", "return", "pct"), ("bars_held", "bars", "num"),
        ("exit_reason", "exit", ""), ("lesson", "lesson", ""))))


def _print_episode(e: dict[str, Any]) -> None:
    side = "long" if e["signal"] > 0 else "short"
    print(f"episode {e['id']}: {side} {e['quantity']:g} {e['symbol']} @ {e['entry_price']:.4f}, "
          f"decided {_cell(e['bar_ts'], 'time')} (close {e['price']:.4f})")
    print(f"  regime      {e['regime']} ({_cell(e['regime_confidence'])}), trend "
          f"{_cell(e['trend_strength'])}, volatility {_cell(e['volatility'])} "
          f"{e['volatility_class'] or ''}, range position {_cell(e['range_position'])}, "
          f"HMM {e['hmm_state'] or '-'}")
    print(f"  decision    confidence {e['confidence']:.3f}, stop {_cell(e['stop_price'])}, "
          f"target {_cell(e['target_price'])}, agreement {_cell(e['agreement'], 'rate')}")
    for vote in e["votes"] or ():
        what = ("abstains" if vote["abstained"]
                else f"{vote['signal']:+d} @ {vote['confidence']:.2f}")
        print(f"    {vote['agent']:<10} {what:<12} {vote['reasoning']}")
    if e["exit_ts"] is None:
        print("  outcome     open")
    else:
        print(f"  outcome     {e['exit_reason']} at {e['exit_price']:.4f} on "
              f"{_cell(e['exit_ts'], 'time')} after {e['bars_held']} bars: pnl "
              f"{e['pnl']:+,.2f} ({e['return_pct']:+.2%}), best {e['max_favorable']:.2%}, "
              f"worst {e['max_adverse']:.2%}")
        print(f"  critique    {e['critique']}")
        print(f"  lesson      {e['lesson']}  [{e['rule']}]")
    recall = e.get("recall")
    if recall is not None:
        print(f"  recall      {recall['reason']}")
        if recall["episodes"]:
            print(table(recall["episodes"], (("id", "episode", ""),
                                             ("similarity", "similarity", "num"),
                                             ("weight", "weight", "num"))))
