"""Running an OpenAI request on the runtime: to the end (a whole completion), or as server-sent
events (``data: {json}`` per event, a last ``data: [DONE]``; an error after the first event is
one ``data: {"error": {...}}`` event, since the status line has gone)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from hearth.api.openai_types import SamplingFields
from hearth.errors import ServerBusy
from hearth.server.bridge import CancelFlag
from hearth.server.error_shapes import openai_error_body
from hearth.server.responses import SHUTDOWN_MESSAGE, guarded_body, open_stream

Events = Callable[[AsyncIterator[Any]], AsyncIterator[BaseModel]]


async def run_to_end(request: Request, make: Callable[[CancelFlag], Iterator[Any]]) -> list[Any]:
    first, items, flag = await open_stream(request, make)
    chunks = [] if first is None else [first]
    try:
        chunks += [item async for item in items]
    finally:
        request.app.state.streams.discard(flag)
        await items.aclose()
    if not chunks or not chunks[-1].done:
        # Only a shutdown ends generation without a last chunk.
        raise ServerBusy(flag.reason or SHUTDOWN_MESSAGE)
    request.app.state.metrics.record_generation(chunks[-1])
    return chunks


def sse_event(item: BaseModel | dict[str, Any]) -> bytes:
    data = item.model_dump_json() if isinstance(item, BaseModel) else json.dumps(item)
    return f"data: {data}\n\n".encode()


def error_event(status: int, message: str) -> dict[str, Any]:
    return openai_error_body(status, message)


async def sse_response(request: Request, make: Callable[[CancelFlag], Iterator[Any]],
                       events: Events) -> StreamingResponse:
    """The SSE counterpart of ``ndjson_response``: ``events`` turns runtime chunks into events."""
    first, items, flag = await open_stream(request, make)
    metrics = request.app.state.metrics

    async def chunks() -> AsyncIterator[Any]:
        if first is not None:
            yield recorded(first)
        async for item in items:
            yield recorded(item)

    def recorded(item: Any) -> Any:
        if item.done:
            metrics.record_generation(item)
        return item

    async def produce() -> AsyncIterator[bytes]:
        async for event in events(chunks()):
            yield sse_event(event)

    body = guarded_body(request, items, flag, produce(),
                        lambda status, message: sse_event(error_event(status, message)),
                        end=b"data: [DONE]\n\n")
    return StreamingResponse(body, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def include_usage(body: SamplingFields) -> bool:
    return bool(body.stream_options and body.stream_options.include_usage)
