"""Where slow, pure computations run: inline (replay, tests) or on one worker thread (live).

A component hands ``submit(fn, *args)`` a pure function of its arguments and asks the handle
for the result at a bar fixed in advance, so *when* the work ran never changes *what* it
returned: replay and live agree. Live mode (``use_worker_thread()``) takes the work off the
core thread; the handle's ``result()`` then waits only if the worker has not finished by then.
"""

from __future__ import annotations

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
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gnosis-background")


def use_inline() -> None:
    """Run submitted work inline again; waits for the worker's queue to drain."""
    global _executor
    with _lock:
        executor, _executor = _executor, None
    if executor is not None:
        executor.shutdown(wait=True)


def in_worker_thread() -> bool:
    return _executor is not None
