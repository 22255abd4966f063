"""Does serving the dashboard to 100 browsers slow the bot? Per-bar latency of Engine.on_bar
with no dashboard, with the dashboard and no client, and with 100 WebSocket clients.

Each run is a real paced LiveBot (full agent pipeline, simulated market) in this process; the
dashboard is the real uvicorn server on a loopback port; the clients are real WebSocket
connections from a separate process (as browsers would be), each reading every message and
checking that the sequence numbers arrive without a gap. Configurations alternate run by run
so drift on a shared machine hits them alike; the report gives the median over runs of each
run's median and p99, and the ratios to the no-dashboard baseline.

    .venv/bin/python benchmarks/bench_dashboard_fanout.py [--runs 3] [--bars 600]
        [--speed 1200] [--clients 100] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from typing import Any

END = "bench: end of run"


# -- the client process ------------------------------------------------------------------------
async def _client(url: str, ready: asyncio.Queue[int]) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    async with connect(url, max_size=None, compression=None, open_timeout=60) as ws:
        init = json.loads(await ws.recv())
        first = expected = init["seq"] + 1
        received = gaps = 0
        await ready.put(1)
        async for raw in ws:
            message = json.loads(raw)
            if message["seq"] != expected:
                gaps += 1
            expected = message["seq"] + 1
            received += 1
            if message["type"] == "notice" and message["data"]["message"].endswith(END):
                break
        return {"first": first, "last": expected - 1, "received": received, "gaps": gaps}


async def _clients(url: str, count: int) -> None:
    ready: asyncio.Queue[int] = asyncio.Queue()
    tasks = [asyncio.create_task(_client(url, ready)) for _ in range(count)]
    for _ in range(count):
        await ready.get()
    print("ready", flush=True)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps([r if isinstance(r, dict) else {"error": repr(r)} for r in results]),
          flush=True)


# -- the bot process -------------------------------------------------------------------------
def one_run(mode: str, bars: int, speed: float, clients: int, drain_ms: float
            ) -> dict[str, Any]:
    from gnosis.bootstrap import build_system, synthetic_market
    from gnosis.core.clock import perf_counter_ns
    from gnosis.core.config import load_config
    from gnosis.dashboard import launch
    from gnosis.trading.live_bot import LiveBot

    config = load_config(market={"symbols": ("SPY",), "seed": 7, "days": 5, "warmup_days": 1})
    market = synthetic_market(config, history=True)
    system = build_system(config, market, market=market)
    engine = system.engine
    latencies: list[int] = []
    cpu: list[int] = []
    process = engine.on_bar
    thread_time = time.thread_time_ns

    def timed(bar: Any, commit: bool = True) -> Any:  # as Engine.on_bar, the live bot's way
        start, start_cpu = perf_counter_ns(), thread_time()
        result = process(bar, commit)
        cpu.append(thread_time() - start_cpu)
        latencies.append(perf_counter_ns() - start)
        return result

    engine.on_bar = timed  # type: ignore[method-assign]
    bot = LiveBot(engine, market, speed=speed, max_bars=bars,
                  warmup_bars=market.bars_in_sessions(1))
    dashboard = None
    reader = None
    if mode != "off":
        dashboard = launch.attach(engine, bot, serve_web=True, port=0,
                                  drain_interval=drain_ms / 1000)
        if mode == "clients":
            reader = _start_clients(dashboard.url or "", clients)
    began = time.perf_counter()
    bot.run()
    wall = time.perf_counter() - began
    result: dict[str, Any] = {"mode": mode, "bars": len(latencies), "wall_s": round(wall, 2)}
    if dashboard is not None:
        dashboard.publisher.operator(END)
        if reader is not None:
            result.update(_client_reports(reader, dashboard))
        dashboard.close()
    ordered = sorted(latencies)
    result["median_us"] = ordered[len(ordered) // 2] / 1000
    result["p99_us"] = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1000
    result["cpu_median_us"] = sorted(cpu)[len(cpu) // 2] / 1000  # the core thread's own CPU
    return result


def _start_clients(url: str, clients: int) -> subprocess.Popen[str]:
    reader = subprocess.Popen(
        [sys.executable, __file__, "--serve-clients", str(clients),
         "--url", url.replace("http", "ws") + "/ws"], stdout=subprocess.PIPE, text=True)
    assert reader.stdout is not None
    line = reader.stdout.readline().strip()
    if line != "ready":
        raise RuntimeError(f"the client process did not connect: {line!r}")
    return reader


def _client_reports(reader: subprocess.Popen[str], dashboard: Any) -> dict[str, Any]:
    """Did every client get every message, from its init's sequence number to the end?"""
    out, _ = reader.communicate(timeout=300)
    reports = json.loads(out.strip().splitlines()[-1])
    dashboard.publisher.pump()
    last = dashboard.publisher.state.seq
    complete = [r for r in reports
                if "error" not in r and r["gaps"] == 0 and r["last"] == last
                and r["received"] == r["last"] - r["first"] + 1]
    return {"clients": len(reports), "clients_complete": len(complete),
            "messages_per_client": statistics.median(r.get("received", 0) for r in reports),
            "dropped_clients": dashboard.handle.backend.broadcaster.dropped_clients}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bars", type=int, default=600, help="live bars per run")
    parser.add_argument("--speed", type=float, default=1200.0,
                        help="simulated seconds per real second (1200: 20 bars/s)")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--drain-ms", type=float, default=50.0,
                        help="the web loop's drain interval (gnosis.dashboard.hub)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve-clients", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--url", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_clients:
        asyncio.run(_clients(args.url, args.serve_clients))
        return 0

    modes = ("off", "server", "clients")
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    for index in range(args.runs):
        for mode in modes if index % 2 == 0 else modes[::-1]:  # spread drift evenly
            result = one_run(mode, args.bars, args.speed, args.clients, args.drain_ms)
            runs[mode].append(result)
            if not args.json:
                print(f"run {index + 1}/{args.runs} {mode:<8} " + ", ".join(
                    f"{k} {v}" for k, v in result.items() if k != "mode"), flush=True)
    summary: dict[str, Any] = {"bars_per_run": args.bars, "speed": args.speed,
                               "client_count": args.clients, "runs": args.runs,
                               "drain_ms": args.drain_ms}
    for mode in modes:
        summary[mode] = {
            key: round(statistics.median(r[key] for r in runs[mode]), 1)
            for key in ("median_us", "p99_us", "cpu_median_us")
        }
    base = summary["off"]
    for mode in ("server", "clients"):
        summary[mode]["median_ratio"] = round(summary[mode]["median_us"] / base["median_us"], 3)
        summary[mode]["p99_ratio"] = round(summary[mode]["p99_us"] / base["p99_us"], 3)
        summary[mode]["cpu_ratio"] = round(summary[mode]["cpu_median_us"] / base["cpu_median_us"],
                                           3)
    with_clients = runs["clients"]
    summary["clients"] = {
        **summary["clients"],
        "every_client_got_every_message": all(
            r["clients_complete"] == r["clients"] == args.clients for r in with_clients),
        "messages_per_client": [r["messages_per_client"] for r in with_clients],
        "dropped_clients": [r["dropped_clients"] for r in with_clients],
    }
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        print("\nEngine.on_bar latency, median over runs (µs; cpu = the core thread's own CPU "
              "time per bar, blind to other processes)")
        for mode, name in (("off", "no dashboard"), ("server", "dashboard, 0 clients"),
                           ("clients", f"dashboard, {args.clients} clients")):
            row = summary[mode]
            ratio = "" if mode == "off" else (f"  ratios: median {row['median_ratio']:.3f}, "
                                              f"p99 {row['p99_ratio']:.3f}, "
                                              f"cpu {row['cpu_ratio']:.3f}")
            print(f"  {name:<24} median {row['median_us']:7.1f}  p99 {row['p99_us']:7.1f}  "
                  f"cpu {row['cpu_median_us']:7.1f}{ratio}")
        print(f"  every client received every message: "
              f"{summary['clients']['every_client_got_every_message']} "
              f"(messages per client: {summary['clients']['messages_per_client']})")
    return 0 if summary["clients"]["every_client_got_every_message"] else 1


if __name__ == "__main__":
    sys.exit(main())
