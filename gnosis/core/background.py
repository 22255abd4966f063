"""Where slow, pure computations run: inline (replay, tests) or on one worker thread (live).

A component hands ``submit(fn, *args)`` a pure function of its arguments and asks the handle
for the result at a bar fixed in advance, so *when* the work ran never changes *what* it
returned: replay and live agree. Live mode (``use_worker_thread()``) takes the work off the
core thread; the handle's ``result()`` then waits only if the worker has not finished by then.
"""

from __future__ import annotations

import threading
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


def submit(fn: Callable[..., Any], *args: Any) -> Handle:
    """Run ``fn(*args)`` now (inline) or on the worker thread (after ``use_worker_thread``)."""
    executor = _executor
    if executor is None:
        return _Done(fn(*args))
    future: Future[Any] = executor.submit(fn, *args)
    return future


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
