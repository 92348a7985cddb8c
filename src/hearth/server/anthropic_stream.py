"""Anthropic's server-sent events: each event named (``event: NAME``) and its JSON beside it
(``data: {...}``, whose ``type`` is the name again). The order is Anthropic's:
``message_start``, a ``ping``, each content block's ``content_block_start`` /
``content_block_delta``... / ``content_block_stop`` (``anthropic_blocks.py``), ``message_delta``
with the stop reason and usage, ``message_stop``. An error after the status line went out is an
``error`` event with the error body; no ``[DONE]`` line, which Anthropic's SDKs do not expect.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

from hearth.api.anthropic_types import MessageOut
from hearth.server.anthropic_blocks import BlockAssembly, Event
from hearth.server.anthropic_translate import stop_reason, usage_of
from hearth.server.bridge import CancelFlag
from hearth.server.error_shapes import anthropic_error_body
from hearth.server.responses import guarded_body, open_stream


def sse_event(event: Event) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def error_event(status: int, message: str) -> bytes:
    return sse_event(anthropic_error_body(status, message))


async def sse_response(request: Request, make: Callable[[CancelFlag], Iterator[Any]],
                       start: MessageOut) -> StreamingResponse:
    """Stream ``make``'s items: first the prompt's token count (an int, for ``message_start``),
    then the runtime's chunks. ``start`` is the message as ``message_start`` shows it."""
    first, items, flag = await open_stream(request, make)
    metrics = request.app.state.metrics

    async def produce() -> AsyncIterator[bytes]:
        if first is None:
            return
        start.usage.input_tokens = first
        yield sse_event({"type": "message_start", "message": start.model_dump()})
        yield sse_event({"type": "ping"})
        blocks = BlockAssembly()
        async for batch in items.batches():
            # Everything ready at once goes out in one write (see bridge.ThreadStream).
            events: list[Event] = []
            for chunk in batch:
                events += blocks.feed(chunk)
                if chunk.done:
                    metrics.record_generation(chunk)
                    events += blocks.finish() + end_events(chunk, blocks)
            if events:
                yield b"".join(sse_event(event) for event in events)

    body = guarded_body(request, items, flag, produce(), error_event)
    return StreamingResponse(body, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def end_events(final: Any, blocks: BlockAssembly) -> list[Event]:
    reason, sequence = stop_reason(final, blocks.tool_calls)
    # The counts are totals, so they replace message_start's (the SDKs read them so): the
    # prompt as computed and as read from the cache, and the answer.
    usage = usage_of(final).model_dump()
    return [{"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": sequence},
             "usage": usage},
            {"type": "message_stop"}]
