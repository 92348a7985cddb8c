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
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse

from hearth.errors import InvalidRequest
from hearth.server.bridge import call_in_thread
from hearth.server.error_shapes import openai_error_body
from hearth.server.responses import guarded_body, open_stream

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

    async def events() -> AsyncIterator[bytes]:
        if first is not None:
            yield f"data: {json.dumps(marked(first))}\n\n".encode()
        async for event in items:
            yield f"data: {json.dumps(marked(event))}\n\n".encode()

    body = guarded_body(request, items, flag, events(), _error_event, end=b"data: [DONE]\n\n")
    return StreamingResponse(body, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **headers})
