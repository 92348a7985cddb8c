"""Long operations (pull, create) as a stream of progress events, Ollama style."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import Request

from hearth.api.types import ProgressFn, ProgressResponse, StatusResponse
from hearth.server.responses import ndjson_response, open_stream

_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _events(work: Callable[[ProgressFn], Any]) -> Iterator[ProgressResponse]:
    events: queue.Queue[Any] = queue.Queue()

    def run() -> None:
        try:
            work(events.put)
            events.put(_DONE)
        except BaseException as exc:  # re-raised in the streaming thread
            events.put(_Failure(exc))

    threading.Thread(target=run, name="hearth-progress", daemon=True).start()
    last_status = None
    while True:
        item = events.get()
        if item is _DONE:
            if last_status != "success":
                yield ProgressResponse(status="success")
            return
        if isinstance(item, _Failure):
            raise item.exc
        last_status = item.status
        yield item


async def progress_stream(request: Request, work: Callable[..., Any], stream: bool, *,
                          cancellable: bool = False):
    """``cancellable``: ``work(progress, cancelled)`` gets the stream's cancel flag, raised when
    the client goes away (a pull then stops and keeps what it downloaded for a resume)."""

    def make(flag: Any) -> Iterator[ProgressResponse]:
        return _events((lambda progress: work(progress, flag)) if cancellable else work)

    first, items, flag = await open_stream(request, make)
    if stream:
        return ndjson_response(request, first, items, flag)
    try:
        async for _ in items:
            pass
    finally:
        request.app.state.streams.discard(flag)
    return StatusResponse(status="success")


