"""Errors and streams on the wire: Ollama's ``{"error": ...}`` and NDJSON, OpenAI's error shape.

Errors that happen before the first chunk become a normal HTTP error response with the
error's status; errors after streaming started become a last ``{"error": ...}`` line, since
the status line has already been sent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel

from hearth.errors import ClosedModel, HearthError, ModelNotFound, ServerBusy
from hearth.server.bridge import CancelFlag, ThreadStream, iterate_in_thread

log = logging.getLogger("hearth.server")

SHUTDOWN_MESSAGE = "server is shutting down"


def is_openai_path(path: str) -> bool:
    return path.startswith("/v1/") or path == "/v1"


def openai_error_type(status: int) -> str:
    return {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        413: "invalid_request_error",
        429: "rate_limit_error",
        503: "server_busy_error",
    }.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_response(path: str, status: int, message: str, headers: dict[str, str] | None = None,
                   code: str | None = None) -> JSONResponse:
    if is_openai_path(path):
        body: dict[str, Any] = {"error": {"message": message, "type": openai_error_type(status),
                                          "param": None, "code": code}}
    else:
        body = {"error": message}
    return JSONResponse(body, status_code=status, headers=headers)


def hearth_error_response(path: str, exc: HearthError) -> JSONResponse:
    # ServerBusy and a provider's rate limit both say when to come back.
    retry_after = getattr(exc, "retry_after", None)
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    # A closed model (gpt-4o) is not here either; its message says which provider reaches it.
    code = "model_not_found" if isinstance(exc, (ModelNotFound, ClosedModel)) else None
    return error_response(path, exc.status_code, exc.message, headers, code)


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


def ndjson_response(request: Request, first: Any, items: ThreadStream, flag: CancelFlag,
                    on_item: Callable[[Any], Any] | None = None) -> StreamingResponse:
    registry = request.app.state.streams

    async def body() -> AsyncIterator[bytes]:
        try:
            if first is not None:
                yield to_json_line(on_item(first) if on_item else first)
            # Everything ready at once goes out in one write (see ThreadStream).
            async for batch in items.batches():
                yield b"".join(to_json_line(on_item(item) if on_item else item) for item in batch)
            if flag.reason == SHUTDOWN_MESSAGE:
                yield to_json_line({"error": SHUTDOWN_MESSAGE})
        except HearthError as exc:
            yield to_json_line({"error": exc.message})
        except Exception:
            log.exception("stream failed")
            yield to_json_line({"error": "internal error while streaming; see the server log"})
        finally:
            registry.discard(flag)
            await items.aclose()

    return StreamingResponse(body(), media_type="application/x-ndjson")
