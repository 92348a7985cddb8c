"""A deadline for work on the calling thread: one watchdog thread for the whole process raises
``Overrun`` in a thread whose deadline passed (``PyThreadState_SetAsyncExc``), which stops even
pure-Python loops that produce nothing and call nothing. Used for chat templates
(``template_limits.bounded``), which are untrusted programs.
"""

from __future__ import annotations

import heapq
import itertools
import math
import os
import threading
import time


class Overrun(BaseException):
    """Raised inside the rendering thread by the watchdog. A BaseException, so that no
    ``except Exception`` in jinja2 or a filter can swallow it."""


class _Watch:
    __slots__ = ("deadline", "done", "fired", "thread_id")

    def __init__(self, thread_id: int, deadline: float) -> None:
        self.thread_id = thread_id
        self.deadline = deadline
        self.done = False
        self.fired = False


class _Watchdog:
    """One daemon thread for every render in the process: it sleeps until the earliest
    deadline, so a render costs a heap push and a flag, not a thread."""

    def __init__(self) -> None:
        import ctypes

        self._raise_in = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.py_object)(
            ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
        )
        # The same function with NULL clears an exception that was set but not yet raised.
        self._clear_in = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)(
            ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
        )
        # A C lock, not an RLock or a Python-level one: `with` on it cannot be interrupted
        # between acquiring and entering the block, so an overrun never leaves it held.
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._heap: list[tuple[float, int, _Watch]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._wake_at = math.inf

    def arm(self, seconds: float) -> _Watch:
        watch = _Watch(threading.get_ident(), time.monotonic() + seconds)
        with self._lock:
            heapq.heappush(self._heap, (watch.deadline, next(self._order), watch))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="hearth-template-watchdog", daemon=True
                )
                self._thread.start()
            elif watch.deadline < self._wake_at:
                self._wakeup.notify()
        return watch

    def disarm(self, watch: _Watch) -> None:
        with self._lock:
            watch.done = True
            if watch.fired:
                self._clear_in(watch.thread_id, None)

    def _run(self) -> None:
        with self._lock:
            while True:
                heap = self._heap
                while heap and heap[0][2].done:
                    heapq.heappop(heap)
                if not heap:
                    self._wake_at = math.inf
                    self._wakeup.wait()
                    continue
                deadline, _, watch = heap[0]
                now = time.monotonic()
                if deadline > now:
                    self._wake_at = deadline
                    self._wakeup.wait(deadline - now)
                    continue
                heapq.heappop(heap)
                # Under the lock, so disarm() either runs first (and nothing fires) or after
                # (and clears the exception if the thread has not met it yet).
                watch.fired = True
                self._raise_in(watch.thread_id, Overrun)


_watchdog_lock = threading.Lock()
_watchdog: _Watchdog | None = None


def the_watchdog() -> _Watchdog:
    global _watchdog
    if _watchdog is None:
        with _watchdog_lock:
            if _watchdog is None:
                _watchdog = _Watchdog()
    return _watchdog


def _forget_watchdog_after_fork() -> None:
    # The child has no watchdog thread, and the parent's lock may have been held at the fork.
    global _watchdog, _watchdog_lock
    _watchdog = None
    _watchdog_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_watchdog_after_fork)
