"""OpenAI's routes for remote models: a gateway, not a translation.

The request goes to the provider as the client sent it (the provider's model id swapped in,
hearth-only fields dropped), so tools, tool call ids, response formats and the rest keep their
exact meaning. The answer comes back as the provider sent it, with the hearth name as
``model``, ``remote_model`` and ``remote_host`` added to every object, and the header
``X-Hearth-Remote: PROVIDER``. Offline refusal, retries, error mapping and the per-provider
concurrency limit are the providers layer's, the same as for the CLI.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse

from hearth.errors import HearthError, InvalidRequest
from hearth.server.bridge import call_in_thread
from hearth.server.error_shapes import openai_error_body
from hearth.server.responses import SHUTDOWN_MESSAGE, open_stream

log = logging.getLogger("hearth.server")
REMOTE_HEADER = "X-Hearth-Remote"


def _error_event(status: int, message: str) -> bytes:
    return f"data: {json.dumps(openai_error_body(status, message))}\n\n".encode()


async def forward(request: Request, route: str, stream: bool) -> Any:
    runtime = request.app.state.runtime
    raw = await request.json()
    if not isinstance(raw, dict):
        raise InvalidRequest("the request body must be a JSON object")
    name = raw["model"]
    target = runtime.remote.target(name)
    marker = runtime.remote.marker(target)
    headers = {REMOTE_HEADER: target.provider.name}

    def marked(answer: dict[str, Any]) -> dict[str, Any]:
        return {**answer, "model": name, **marker}

    if not stream:
        answer = await call_in_thread(runtime.remote.forward, name, route, raw)
        return JSONResponse(marked(answer), headers=headers)

    first, items, flag = await open_stream(
        request, lambda cancelled: runtime.remote.forward_events(name, route, raw, cancelled))
    registry = request.app.state.streams

    async def body() -> AsyncIterator[bytes]:
        try:
            if first is not None:
                yield f"data: {json.dumps(marked(first))}\n\n".encode()
            async for event in items:
                yield f"data: {json.dumps(marked(event))}\n\n".encode()
            if flag.reason == SHUTDOWN_MESSAGE:
                yield _error_event(503, SHUTDOWN_MESSAGE)
                return
            yield b"data: [DONE]\n\n"
        except HearthError as exc:
            yield _error_event(exc.status_code, exc.message)
        except Exception:
            log.exception("remote stream failed")
            yield _error_event(500, "internal error while streaming; see the server log")
        finally:
            registry.discard(flag)
            await items.aclose()

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **headers})
