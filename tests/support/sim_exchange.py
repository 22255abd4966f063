"""Start ``gnosis sim-exchange`` for a test and stop it afterwards.

Two ways, both on 127.0.0.1 with a free port:

* ``running_exchange(**settings)``: the exchange in a background thread of this process (fast;
  faults and the clock can be driven from Python through the returned ``SimExchangeServer``);
* ``exchange_process(*args)``: the real command as a subprocess (``gnosis sim-exchange --port 0
  ...``); it yields an ``ExchangeProcess`` with the URLs parsed from what the command printed,
  and stops it with SIGTERM (then SIGKILL if it hangs).

Plus ``wait_for(predicate)``, a bounded poll for things that happen in simulated time, and
``run_stream(stream, until)``, which runs an alpaca-py stream in the caller's asyncio loop the
way ``shared/alpaca-wire.md`` prescribes (``_run_forever()`` as a task, ``stop_ws()`` to end).
Default keys are ``SIM_KEY`` / ``SIM_SECRET``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from gnosis.simexchange import ExchangeSettings, SimExchangeServer

SIM_KEY = "sim-test-key"
SIM_SECRET = "sim-test-secret"
FAST = 1200.0  # simulated seconds per real second: 20 bars a second


@contextlib.contextmanager
def running_exchange(**settings: Any) -> Iterator[SimExchangeServer]:
    """An exchange in a thread of this process; ``settings`` are ``ExchangeSettings`` fields
    (default: fast clock, SPY, 3 history + 2 live sessions)."""
    settings.setdefault("speed", FAST)
    settings.setdefault("days", 2)
    server = SimExchangeServer(ExchangeSettings(**settings))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.02,
             what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds.

    The timeout is a safety net against hangs, not an assertion about speed."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


async def async_wait_for(predicate: Callable[[], Any], limit_s: float = 20.0,
                         what: str = "condition") -> Any:
    """``wait_for`` inside an event loop (``limit_s`` is the safety net against hangs)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {limit_s:g} s waiting for {what}")
        await asyncio.sleep(0.02)


async def run_stream(stream: Any, until: Callable[[], Any], limit_s: float = 20.0,
                     what: str = "stream data") -> Any:
    """Run an alpaca-py stream (subscribed beforehand) until ``until()`` is truthy, then stop it
    and wait for its task to end."""
    task = asyncio.get_running_loop().create_task(stream._run_forever())
    try:
        return await async_wait_for(until, limit_s, what)
    finally:
        await stream.stop_ws()
        try:
            await asyncio.wait_for(task, 15)
        except TimeoutError:
            task.cancel()


@dataclass
class ExchangeProcess:
    process: subprocess.Popen[str]
    base_url: str
    stream_url: str
    output: list[str]


@contextlib.contextmanager
def exchange_process(*args: str, startup_timeout: float = 60.0) -> Iterator[ExchangeProcess]:
    """``gnosis sim-exchange --port 0 *args`` as a subprocess, stopped with SIGTERM at the end."""
    command = [sys.executable, "-m", "gnosis.cli", "sim-exchange", "--port", "0", *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    output: list[str] = []
    found = threading.Event()
    url: dict[str, str] = {}

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line.rstrip("\n"))
            match = re.search(r"ALPACA_BASE_URL=(http://127\.0\.0\.1:\d+)", line)
            if match:
                url["base"] = match.group(1)
            if "ALPACA_STREAM_URL=" in line:  # the last address printed
                found.set()
        found.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not found.wait(startup_timeout) or "base" not in url:
            raise AssertionError("sim-exchange did not print its URL:\n" + "\n".join(output))
        base = url["base"]
        yield ExchangeProcess(process, base, base.replace("http://", "ws://"), output)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        reader.join(5)
        if process.stdout is not None:
            process.stdout.close()
