"""Run the runtime's blocking iterators on threads and hand their items to asyncio.

Each stream gets its own thread (not the shared thread pool) so a long queue of waiting
requests cannot starve the pool that other routes need. When the client goes away, or the
server shuts down, the stream's ``cancelled`` flag is raised and generation stops at the next
token.
"""

from __future__ import annotations

import asyncio
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


async def iterate_in_thread(make: Callable[[CancelFlag], Iterator[Any]], flag: CancelFlag,
                            ) -> AsyncIterator[Any]:
    """Yield the items of ``make(flag)``; exceptions raised there are raised here."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()

    def put(item: Any) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, item)

    def work() -> None:
        iterator = None
        try:
            iterator = make(flag)
            for item in iterator:
                put(("item", item))
                if flag():
                    break
        except BaseException as exc:  # handed to the event loop, raised there
            put(("error", exc))
        finally:
            if iterator is not None and hasattr(iterator, "close"):
                # Releases the model slot the generator holds; a client that is gone needs no report.
                with contextlib.suppress(Exception):
                    iterator.close()
            put(("end", _DONE))

    thread = threading.Thread(target=work, name="hearth-stream", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = await queue.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        # Reached on normal end, on error, and when the response is abandoned (disconnect).
        flag.cancel("client disconnected")


async def call_in_thread(function: Callable[..., Any], *args: Any) -> Any:
    """A blocking call (store access, pulls, embeddings) off the event loop."""
    return await asyncio.to_thread(function, *args)
