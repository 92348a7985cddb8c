"""Run the runtime's blocking iterators on threads and hand their items to asyncio.

Each stream gets its own thread (not the shared thread pool) so a long queue of waiting
requests cannot starve the pool that other routes need. When the client goes away, or the
server shuts down, the stream's ``cancelled`` flag is raised and generation stops at the next
token.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

_DONE = object()


class StreamRegistry:
    """Every live stream's cancel flag, so shutdown can end them all with an error chunk."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: set[CancelFlag] = set()
        self.shutting_down = False

    def add(self, flag: CancelFlag) -> None:
        with self._lock:
            self._streams.add(flag)

    def discard(self, flag: CancelFlag) -> None:
        with self._lock:
            self._streams.discard(flag)

    def cancel_all(self, reason: str) -> None:
        self.shutting_down = True
        with self._lock:
            for flag in self._streams:
                flag.cancel(reason)

    def __len__(self) -> int:
        with self._lock:
            return len(self._streams)


class CancelFlag:
    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def cancel(self, reason: str = "cancelled") -> None:
        self.reason = self.reason or reason
        self._event.set()

    def __call__(self) -> bool:
        return self._event.is_set()


class ThreadStream:
    """The items of ``make(flag)``, produced on a thread of their own, as an async iterator.

    Exceptions raised there are raised here. The thread wakes the event loop once per burst,
    not once per item: while the loop has not yet taken what is ready, more items join the same
    wake-up. ``batches()`` hands over everything ready at once, so a stream writes a burst of
    tokens to its socket in one piece. Each wake-up of this process takes CPU from the decode
    threads on a small machine, which is why this matters.
    """

    def __init__(self, make: Callable[[CancelFlag], Iterator[Any]], flag: CancelFlag) -> None:
        self._flag = flag
        self._loop = asyncio.get_running_loop()
        self._lock = threading.Lock()
        self._ready: collections.deque[tuple[str, Any]] = collections.deque()
        self._wake = asyncio.Event()
        self._wake_pending = False
        self._buffer: collections.deque[Any] = collections.deque()
        self._ended = False
        self._error: BaseException | None = None
        self._on_end: list[Callable[[], None]] = []
        self._thread = threading.Thread(target=self._work, args=(make,), name="hearth-stream",
                                        daemon=True)
        self._thread.start()

    def _put(self, kind: str, value: Any) -> None:
        with self._lock:
            self._ready.append((kind, value))
            if self._wake_pending:
                return
            self._wake_pending = True
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening
            self._loop.call_soon_threadsafe(self._wake.set)

    def _work(self, make: Callable[[CancelFlag], Iterator[Any]]) -> None:
        flag = self._flag
        iterator = None
        try:
            iterator = make(flag)
            for item in iterator:
                self._put("item", item)
                if flag():
                    break
        except BaseException as exc:  # handed to the event loop, raised there
            self._put("error", exc)
        finally:
            if iterator is not None and hasattr(iterator, "close"):
                # Releases the model slot the generator holds; a client that is gone needs no report.
                with contextlib.suppress(Exception):
                    iterator.close()
            self._put("end", _DONE)

    async def batches(self) -> AsyncIterator[list[Any]]:
        """Lists of the items ready at each wake-up (never empty), in order."""
        while True:
            if self._buffer:
                items, self._buffer = list(self._buffer), collections.deque()
                yield items
            elif self._error is not None:
                error, self._error = self._error, None
                raise error
            elif self._ended:
                return
            else:
                await self._fill()

    async def _fill(self) -> None:
        """Wait for the worker's next burst and move it into the buffer."""
        while True:
            with self._lock:
                ready, self._ready = self._ready, collections.deque()
                self._wake_pending = False
            if ready:
                break
            self._wake.clear()
            with self._lock:
                if self._ready:  # arrived between the two locks
                    continue
            await self._wake.wait()
        for kind, value in ready:
            if kind == "item":
                self._buffer.append(value)
            else:
                self._ended = True
                self._run_on_end()
                if kind == "error":
                    self._error = value

    def on_end(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` (on the event loop) once the stream has ended or been closed."""
        self._on_end.append(callback)

    def _run_on_end(self) -> None:
        callbacks, self._on_end = self._on_end, []
        for callback in callbacks:
            callback()

    def __aiter__(self) -> ThreadStream:
        return self

    async def __anext__(self) -> Any:
        while True:
            if self._buffer:
                return self._buffer.popleft()
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            if self._ended:
                raise StopAsyncIteration
            await self._fill()

    async def aclose(self) -> None:
        # Reached on normal end, on error, and when the response is abandoned (disconnect).
        self._flag.cancel("client disconnected")
        self._run_on_end()


def iterate_in_thread(make: Callable[[CancelFlag], Iterator[Any]], flag: CancelFlag) -> ThreadStream:
    """Yield the items of ``make(flag)``; exceptions raised there are raised here."""
    return ThreadStream(make, flag)


async def call_in_thread(function: Callable[..., Any], *args: Any) -> Any:
    """A blocking call (store access, pulls, embeddings) off the event loop."""
    return await asyncio.to_thread(function, *args)
