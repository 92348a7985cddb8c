"""OpenAI's Responses API under /v1/responses, a translation over the same runtime chat as the
other APIs (what Codex and the OpenAI Agents SDK speak).

``POST /v1/responses`` turns the request into a ChatRequest (``responses_translate.py``), runs
it, and answers the response object, or with ``"stream": true`` server-sent events in the
Responses form (``event: TYPE`` and ``data: {json}``, no ``[DONE]``; ``responses_events.py``).
Stateful as OpenAI's and LM Studio's: with ``store`` (the default) the response and the
conversation up to it are kept in the on-disk log (``store/response_log.py``), so a later
request's ``previous_response_id`` continues it, across restarts too, and ``GET`` / ``DELETE
/v1/responses/{id}`` find it. Errors are OpenAI-shaped (``ERROR_SHAPE``); one after the first
event is an ``error`` event and ``response.failed``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from hearth.api.responses_types import ResponseDeleted, ResponseObject, ResponsesRequest
from hearth.errors import InvalidRequest
from hearth.runtime import Runtime
from hearth.server.bridge import CancelFlag, call_in_thread
from hearth.server.error_shapes import ErrorShape, openai_error_body
from hearth.server.openai_stream import run_to_end
from hearth.server.responses import guarded_body, open_stream
from hearth.server.responses_events import Event, OutputStream, new_id
from hearth.server.responses_translate import (
    ToolSet,
    chat_request,
    read_items,
    read_tool_choice,
    read_tools,
)
from hearth.store.response_log import ResponseLog, ResponseNotFound

router = APIRouter()
ERROR_SHAPE = ErrorShape("/v1/responses", openai_error_body)
# /openapi.json: with "stream": true the answer is server-sent events instead.
STREAMED = {200: {"content": {"text/event-stream": {}}}}


class PreviousResponseNotFound(InvalidRequest):
    code = "previous_response_not_found"  # OpenAI's code for it


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


def response_shell(body: ResponsesRequest, tools: ToolSet) -> ResponseObject:
    """The response before any output: the request's settings echoed, as the SDK's type wants."""
    reasoning = body.reasoning
    return ResponseObject(
        id=new_id("resp"), created_at=int(time.time()), status="in_progress", model=body.model,
        instructions=body.instructions, max_output_tokens=body.max_output_tokens,
        parallel_tool_calls=True if body.parallel_tool_calls is None else body.parallel_tool_calls,
        previous_response_id=body.previous_response_id,
        reasoning={"effort": reasoning.effort if reasoning else None,
                   "summary": reasoning.summary if reasoning else None},
        store=body.store, temperature=body.temperature, top_p=body.top_p,
        text={"format": (body.text.format if body.text else None) or {"type": "text"}},
        tool_choice=body.tool_choice or "auto", tools=tools.echoed,
        truncation=body.truncation or "disabled", user=body.user, metadata=body.metadata or {},
    )


def sse(events: list[Event]) -> bytes:
    return b"".join(f"event: {event['type']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n".encode()
                    for event in events)


@router.post("/v1/responses", response_model=ResponseObject, responses=STREAMED)
async def create_response(body: ResponsesRequest, request: Request):
    log = ResponseLog()
    earlier: list[dict[str, Any]] = []
    if body.previous_response_id:
        try:
            earlier = (await call_in_thread(log.load, body.previous_response_id))["history"]
        except ResponseNotFound:
            raise PreviousResponseNotFound(
                f"Previous response with id '{body.previous_response_id}' not found.") from None
    history = earlier + read_items(body.input)
    tools = read_tools(body.tools)
    choice, offered = read_tool_choice(body.tool_choice, tools)
    chat = chat_request(body, history, offered, choice)
    output = OutputStream(response_shell(body, tools), tools.origin_of)
    runtime = runtime_of(request)

    def make(flag: CancelFlag) -> Iterator[Any]:
        return runtime.chat(chat, cancelled=flag)

    async def keep(response: dict[str, Any]) -> None:
        # Saved before the client hears of it, so a next request naming it finds it.
        if body.store:
            record = {"response": response, "history": history + response["output"]}
            await call_in_thread(log.save, response["id"], record)

    if body.stream:
        return await stream_response(request, make, output, keep)
    chunks = await run_to_end(request, make)
    for chunk in chunks:
        output.feed(chunk)
    output.finish(chunks[-1])
    response = output.final_response()
    await keep(response)
    return JSONResponse(response)


async def stream_response(request: Request, make: Callable[[CancelFlag], Iterator[Any]], output: OutputStream,
                          keep: Callable[[dict[str, Any]], Any]) -> StreamingResponse:
    # Waiting for the first chunk first: an unknown model or a prompt that does not fit is
    # still a real HTTP error, before any event.
    first, items, flag = await open_stream(request, make)
    metrics = request.app.state.metrics

    async def produce() -> AsyncIterator[bytes]:
        final = None
        pending = output.start()
        batches = items.batches()
        batch = [] if first is None else [first]
        while True:
            for chunk in batch:
                pending += output.feed(chunk)
                if chunk.done:
                    final = chunk
                    metrics.record_generation(chunk)
            if pending:
                yield sse(pending)
                pending = []
            try:
                batch = await batches.__anext__()
            except StopAsyncIteration:
                break
        if final is None:
            return  # shut down mid-answer: guarded_body sends the failure
        closing = output.finish(final)
        await keep(output.final_response())
        yield sse(closing)

    body = guarded_body(request, items, flag, produce(), lambda status, message: sse(output.failed(status, message)))
    return StreamingResponse(body, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/v1/responses/{response_id}", response_model=ResponseObject)
async def retrieve_response(response_id: str) -> JSONResponse:
    record = await call_in_thread(ResponseLog().load, response_id)
    return JSONResponse(record["response"])


@router.delete("/v1/responses/{response_id}", response_model=ResponseDeleted)
async def delete_response(response_id: str) -> ResponseDeleted:
    await call_in_thread(ResponseLog().delete, response_id)
    return ResponseDeleted(id=response_id)
