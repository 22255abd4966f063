"""Where slow, pure computations run: inline (replay, tests) or on one worker thread (live).

A component hands ``submit(fn, *args)`` a pure function of its arguments and asks the handle
for the result at a bar fixed in advance, so *when* the work ran never changes *what* it
returned: replay and live agree. Live mode (``use_worker_thread()``) takes the work off the
core thread; the handle's ``result()`` then waits only if the worker has not finished by then.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol


class Handle(Protocol):
    def result(self) -> Any: ...


class _Done:
    __slots__ = ("_value",)

    def __init__(self, value: Any) -> None:
        self._value = value

    def result(self) -> Any:
        return self._value


_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
# While the worker runs, the interpreter hands the GIL over every 0.1 ms instead of every 5 ms:
# the fit's compiled loops release the GIL, but its Python glue (starts, label matching) needs
# it, and waits for the core thread to let go. With the default interval a bar arriving then
# waited up to 5 ms (a 7-19 ms worst bar in `gnosis bench`). At 0.5 ms a replay at 100,000
# bars/s reached a refit's effective bar (390 bars, ~3.7 ms later) before the worker was done
# in most refits and waited 0.3-0.8 ms (median; up to 3 ms); at 0.1 ms the median wait is
# ~0.01 ms, the worst bar 2.0-2.3 ms, and the throughput the same (paired runs)
_SWITCH_INTERVAL_S = 0.0001
_previous_switch_interval: float | None = None
_worker_cpu_s = 0.0  # CPU time the worker thread spent on submitted work (benchmarks read it)


def _timed(fn: Callable[..., Any], *args: Any) -> Any:
    global _worker_cpu_s
    started = time.thread_time()
    try:
        return fn(*args)
    finally:
        _worker_cpu_s += time.thread_time() - started


def submit(fn: Callable[..., Any], *args: Any) -> Handle:
    """Run ``fn(*args)`` now (inline) or on the worker thread (after ``use_worker_thread``)."""
    executor = _executor
    if executor is None:
        return _Done(fn(*args))
    future: Future[Any] = executor.submit(_timed, fn, *args)
    return future


def worker_cpu_seconds() -> float:
    """CPU seconds the worker thread has spent on submitted work so far."""
    return _worker_cpu_s


def use_worker_thread() -> None:
    """Run submitted work on one background thread from now on (idempotent)."""
    global _executor, _previous_switch_interval
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gnosis-background")
            _previous_switch_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(_SWITCH_INTERVAL_S, _previous_switch_interval))


def use_inline() -> None:
    """Run submitted work inline again; waits for the worker's queue to drain."""
    global _executor, _previous_switch_interval
    with _lock:
        executor, _executor = _executor, None
        previous, _previous_switch_interval = _previous_switch_interval, None
    if executor is not None:
        executor.shutdown(wait=True)
    if previous is not None:
        sys.setswitchinterval(previous)


def in_worker_thread() -> bool:
    return _executor is not None
