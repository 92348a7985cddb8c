"""Errors and streams on the wire: an error response in its API's shape (``error_shapes.py``) and
Ollama's NDJSON streams.

Errors that happen before the first chunk become a normal HTTP error response with the
error's status; errors after streaming started become a last ``{"error": ...}`` line, since
the status line has already been sent.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel

from hearth.errors import ClosedModel, HearthError, ModelNotFound, ServerBusy
from hearth.server.bridge import CancelFlag, ThreadStream, iterate_in_thread
from hearth.server.error_shapes import shapes_of

log = logging.getLogger("hearth.server")

SHUTDOWN_MESSAGE = "server is shutting down"


def error_response(request: Any, status: int, message: str, headers: dict[str, str] | None = None,
                   code: str | None = None, details: dict[str, Any] | None = None) -> JSONResponse:
    """An error in the shape of the API that ``request``'s path belongs to (``error_shapes.py``)."""
    body = shapes_of(request.app).body(request.url.path, status, message, code, details)
    return JSONResponse(body, status_code=status, headers=headers)


def hearth_error_response(request: Any, exc: HearthError) -> JSONResponse:
    # ServerBusy and a provider's rate limit both say when to come back.
    retry_after = getattr(exc, "retry_after", None)
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    # A closed model (gpt-4o) is not here either; its message says which provider reaches it.
    code = "model_not_found" if isinstance(exc, (ModelNotFound, ClosedModel)) else exc.code
    return error_response(request, exc.status_code, exc.message, headers, code, exc.details())


def to_json_line(item: Any) -> bytes:
    if isinstance(item, BaseModel):
        return item.model_dump_json(exclude_none=True).encode() + b"\n"
    return json.dumps(item).encode() + b"\n"


async def open_stream(request: Request, make: Callable[[CancelFlag], Iterator[Any]],
                      ) -> tuple[Any, ThreadStream, CancelFlag]:
    """Start a stream and wait for its first item (so early errors get a real status)."""
    registry = request.app.state.streams
    if registry.shutting_down:
        raise ServerBusy(SHUTDOWN_MESSAGE)
    flag = CancelFlag()
    registry.add(flag)
    items = iterate_in_thread(make, flag)
    # A client that leaves while its request waits for a model or is generated whole (no
    # stream to fail a write) must still stop it, or an SDK's timeouts and retries leave copies
    # holding slots. (StreamingResponse watches too once streaming; both may, harmlessly.)
    watcher = asyncio.create_task(cancel_on_disconnect(request, flag))
    items.on_end(watcher.cancel)
    try:
        first = await items.__anext__()
    except StopAsyncIteration:
        registry.discard(flag)
        return None, items, flag
    except BaseException:
        registry.discard(flag)
        await items.aclose()
        raise
    return first, items, flag


async def cancel_on_disconnect(request: Request, flag: CancelFlag) -> None:
    """Raise ``flag`` when the client disconnects (the body was read: the next message that
    can arrive is the disconnect)."""
    while not flag():
        message = await request.receive()
        if message.get("type") == "http.disconnect":
            flag.cancel("client disconnected")
            return


async def guarded_body(request: Request, items: ThreadStream, flag: CancelFlag,
                       produce: AsyncIterator[bytes], error_event: Callable[[int, str], bytes],
                       end: bytes = b"") -> AsyncIterator[bytes]:
    """The body of every streamed answer, whatever its format: ``produce``'s bytes, then ``end``;
    a shutdown or an error after the status line went out becomes one last ``error_event``
    (the status can no longer change); the stream is unregistered and closed however it ends."""
    try:
        async for data in produce:
            yield data
        if flag.reason == SHUTDOWN_MESSAGE:
            yield error_event(503, SHUTDOWN_MESSAGE)
            return
        if end:
            yield end
    except HearthError as exc:
        yield error_event(exc.status_code, exc.message)
    except Exception:
        log.exception("stream failed")
        yield error_event(500, "internal error while streaming; see the server log")
    finally:
        request.app.state.streams.discard(flag)
        await items.aclose()


def ndjson_response(request: Request, first: Any, items: ThreadStream, flag: CancelFlag,
                    on_item: Callable[[Any], Any] | None = None) -> StreamingResponse:
    """Ollama's stream: one JSON object a line, and ``{"error": ...}`` as the last if it fails."""

    def line(item: Any) -> bytes:
        return to_json_line(on_item(item) if on_item else item)

    async def lines() -> AsyncIterator[bytes]:
        if first is not None:
            yield line(first)
        # Everything ready at once goes out in one write (see ThreadStream).
        async for batch in items.batches():
            yield b"".join(line(item) for item in batch)

    body = guarded_body(request, items, flag, lines(),
                        lambda _status, message: to_json_line({"error": message}))
    return StreamingResponse(body, media_type="application/x-ndjson")
