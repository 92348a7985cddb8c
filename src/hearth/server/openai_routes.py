"""OpenAI's API under /v1: a translation layer over the same runtime as the Ollama routes.

Requests become the runtime's ChatRequest / GenerateRequest / EmbedRequest; the runtime's
chunks become OpenAI objects, streamed as server-sent events (``data: {json}`` and a last
``data: [DONE]``). Errors before the first chunk are normal HTTP errors in OpenAI's shape
(see responses.py); errors after it are one ``data: {"error": {...}}`` event.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import struct
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ValidationError

from hearth.api.openai_types import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessage,
    ChunkChoice,
    ChunkDelta,
    Completion,
    CompletionChoice,
    CompletionRequest,
    ContentPart,
    EmbeddingList,
    EmbeddingObject,
    EmbeddingRequest,
    EmbeddingUsage,
    HearthExtras,
    ModelList,
    ModelObject,
    ResponseFormat,
    SamplingFields,
    ToolCallDelta,
    Usage,
)
from hearth.api.types import (
    ChatRequest,
    EmbedRequest,
    GenerateRequest,
    Message,
    Options,
    ToolCall,
    ToolCallFunction,
)
from hearth.errors import HearthError, InvalidModelName, InvalidRequest, ModelNotFound, ServerBusy
from hearth.names import ModelName
from hearth.runtime import Runtime
from hearth.server import gateway
from hearth.server.bridge import CancelFlag, call_in_thread
from hearth.server.error_shapes import ErrorShape, openai_error_body
from hearth.server.openai_tools import ToolPlan, arguments_dict, plan_tools, read_output
from hearth.server.responses import SHUTDOWN_MESSAGE, open_stream

router = APIRouter()
# OpenAI clients parse {"error": {"message", "type", ...}} under /v1.
ERROR_SHAPE = ErrorShape("/v1", openai_error_body)
log = logging.getLogger("hearth.server")

FINGERPRINT = "fp_hearth"
# /openapi.json: with "stream": true these routes answer with server-sent events instead.
STREAMED = {200: {"content": {"text/event-stream": {}}}}
IMAGE_PARTS = {"image_url", "input_image", "image"}


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


# -- models ---------------------------------------------------------------------------------


@router.get("/v1/models", response_model=ModelList)
async def list_models(request: Request) -> ModelList:
    listed = await call_in_thread(runtime_of(request).list_models)
    # Remote models named in providers.toml allow-lists are listed too (no network call).
    remote = await call_in_thread(runtime_of(request).remote.declared_models)
    return ModelList(data=[
        ModelObject(id=m.name, created=int(m.modified_at.timestamp()), owned_by=owner_of(m.name))
        for m in listed.models
    ] + [ModelObject(id=name, created=0, owned_by=provider) for name, provider in remote])


@router.get("/v1/models/{model_id:path}", response_model=ModelObject)
async def retrieve_model(model_id: str, request: Request) -> ModelObject:
    runtime = runtime_of(request)
    try:
        if runtime.is_remote(model_id):
            target = runtime.remote.target(model_id)
            return ModelObject(id=target.name, created=0, owned_by=target.provider.name)
        stored = await call_in_thread(runtime.get_model, model_id)
    except InvalidModelName as exc:
        # To an OpenAI client a name that cannot exist is simply not there.
        raise ModelNotFound(model_id) from exc
    return ModelObject(id=stored.name.short, created=int(stored.modified_at.timestamp()),
                       owned_by=stored.name.namespace)


def owner_of(name: str) -> str:
    try:
        return ModelName.parse(name).namespace
    except InvalidModelName:
        return "library"


# -- request translation --------------------------------------------------------------------


def options_for(body: HearthExtras, **explicit: Any) -> Options:
    """``options`` from the body, overridden by the OpenAI fields and the top-level extras."""
    data = body.options.model_dump(exclude_none=True) if body.options else {}
    explicit.update(num_ctx=body.num_ctx, top_k=body.top_k)
    data.update({key: value for key, value in explicit.items() if value is not None})
    try:
        return Options(**data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error.get("loc", ()))
        raise InvalidRequest(f"invalid request: {where}: {error.get('msg')}") from exc


def sampling_options(body: SamplingFields, max_tokens: int | None) -> Options:
    if body.n not in (None, 1):
        raise InvalidRequest("n: only n=1 is supported")
    stop = [body.stop] if isinstance(body.stop, str) else body.stop
    return options_for(body, num_predict=max_tokens, temperature=body.temperature, top_p=body.top_p,
                       seed=body.seed, stop=stop, frequency_penalty=body.frequency_penalty,
                       presence_penalty=body.presence_penalty)


def text_of(content: str | list[ContentPart] | None) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for part in content:
        if part.type == "text":
            texts.append(part.text or "")
        elif part.type in IMAGE_PARTS:
            raise InvalidRequest("this model does not support images (it is a text-only model)")
        else:
            raise InvalidRequest(f"content parts of type '{part.type}' are not supported")
    return "\n".join(texts)


def to_message(message: ChatMessage) -> Message:
    role = {"developer": "system", "function": "tool"}.get(message.role, message.role)
    tool_calls = None
    if message.tool_calls:
        if role != "assistant":
            raise InvalidRequest("only assistant messages may carry tool_calls")
        tool_calls = [
            ToolCall(function=ToolCallFunction(
                name=call.function.name, arguments=arguments_dict(call.function.name, call.function.arguments)))
            for call in message.tool_calls
        ]
    return Message(role=role, content=text_of(message.content), tool_calls=tool_calls)


def format_of(response_format: ResponseFormat | None) -> str | dict[str, Any] | None:
    if response_format is None or response_format.type == "text":
        return None
    if response_format.type == "json_schema" and response_format.json_schema is not None:
        return response_format.json_schema.schema_ or "json"
    return "json"


def finish_reason(done_reason: str | None, tool_calls: bool = False) -> str:
    if done_reason == "length":
        return "length"
    return "tool_calls" if tool_calls else "stop"


def usage_of(final: Any) -> Usage:
    # prompt_eval_count counts only what was computed; OpenAI's prompt_tokens is the whole prompt.
    prompt = (final.prompt_eval_count or 0) + (final.prompt_cache_count or 0)
    completion = final.eval_count or 0
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


# -- running and streaming ------------------------------------------------------------------


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


Events = Callable[[AsyncIterator[Any]], AsyncIterator[BaseModel]]


async def sse_response(request: Request, make: Callable[[CancelFlag], Iterator[Any]],
                       events: Events) -> StreamingResponse:
    """The SSE counterpart of ``ndjson_response``: ``events`` turns runtime chunks into events."""
    first, items, flag = await open_stream(request, make)
    registry = request.app.state.streams
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

    async def body() -> AsyncIterator[bytes]:
        try:
            async for event in events(chunks()):
                yield sse_event(event)
            if flag.reason == SHUTDOWN_MESSAGE:
                yield sse_event(error_event(503, SHUTDOWN_MESSAGE))
                return
            yield b"data: [DONE]\n\n"
        except HearthError as exc:
            yield sse_event(error_event(exc.status_code, exc.message))
        except Exception:
            log.exception("stream failed")
            yield sse_event(error_event(500, "internal error while streaming; see the server log"))
        finally:
            registry.discard(flag)
            await items.aclose()

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def include_usage(body: SamplingFields) -> bool:
    return bool(body.stream_options and body.stream_options.include_usage)


# -- chat -----------------------------------------------------------------------------------


@router.post("/v1/chat/completions", response_model=ChatCompletion, responses=STREAMED)
async def chat_completions(body: ChatCompletionRequest, request: Request):
    if runtime_of(request).is_remote(body.model):
        return await gateway.forward(request, "chat/completions", body.stream)
    if body.logprobs:
        raise InvalidRequest("logprobs are not supported")
    plan = plan_tools(body.tools, body.tool_choice)
    chat = ChatRequest(
        model=body.model,
        messages=[to_message(m) for m in body.messages],
        tools=plan.tools,
        # A required tool call is a JSON schema too, and it wins over response_format.
        format=plan.format or format_of(body.response_format),
        options=sampling_options(body, body.max_completion_tokens or body.max_tokens),
        keep_alive=body.keep_alive,
    )
    runtime = runtime_of(request)

    def make(flag: CancelFlag) -> Iterator[Any]:
        return runtime.chat(chat, cancelled=flag)

    completion_id, created = new_id("chatcmpl"), int(time.time())
    if body.stream:
        return await sse_response(request, make,
                                  lambda chunks: chat_events(chunks, body, plan, completion_id, created))
    chunks = await run_to_end(request, make)
    final = chunks[-1]
    content, calls = read_output(plan, "".join(c.message.content for c in chunks))
    message = AssistantMessage(content=content, tool_calls=calls or None)
    choice = ChatChoice(message=message, finish_reason=finish_reason(final.done_reason, bool(calls)))
    return ChatCompletion(id=completion_id, created=created, model=body.model, choices=[choice],
                          usage=usage_of(final), system_fingerprint=FINGERPRINT)


async def chat_events(chunks: AsyncIterator[Any], body: ChatCompletionRequest, plan: ToolPlan,
                      completion_id: str, created: int) -> AsyncIterator[ChatCompletionChunk]:
    def event(delta: ChunkDelta | None, finish: str | None = None, usage: Usage | None = None):
        choices = [] if delta is None else [ChunkChoice(delta=delta, finish_reason=finish)]
        return ChatCompletionChunk(id=completion_id, created=created, model=body.model, choices=choices,
                                   usage=usage, system_fingerprint=FINGERPRINT)

    yield event(ChunkDelta(role="assistant", content=""))
    # With tools in play, whether the reply is a call is only known once all of it is there:
    # it is buffered and sent at the end, as a content delta or a tool_calls delta.
    buffered: list[str] = []
    final = None
    async for chunk in chunks:
        text = chunk.message.content
        if text and plan.active:
            buffered.append(text)
        elif text:
            yield event(ChunkDelta(content=text))
        if chunk.done:
            final = chunk
    if final is None:
        return
    calls = []
    if plan.active:
        content, calls = read_output(plan, "".join(buffered))
        if content:
            yield event(ChunkDelta(content=content))
        if calls:
            deltas = [ToolCallDelta(index=i, id=c.id, function=c.function) for i, c in enumerate(calls)]
            yield event(ChunkDelta(tool_calls=deltas))
    yield event(ChunkDelta(), finish_reason(final.done_reason, bool(calls)))
    if include_usage(body):
        yield event(None, usage=usage_of(final))


# -- completions ----------------------------------------------------------------------------


@router.post("/v1/completions", response_model=Completion, responses=STREAMED)
async def completions(body: CompletionRequest, request: Request):
    if runtime_of(request).is_remote(body.model):
        return await gateway.forward(request, "completions", body.stream)
    prompt = prompt_of(body.prompt)
    if body.logprobs:
        raise InvalidRequest("logprobs are not supported")
    if body.best_of not in (None, 1):
        raise InvalidRequest("best_of: only best_of=1 is supported")
    generate = GenerateRequest(model=body.model, prompt=prompt, raw=True,
                               options=sampling_options(body, body.max_tokens), keep_alive=body.keep_alive)
    runtime = runtime_of(request)

    def make(flag: CancelFlag) -> Iterator[Any]:
        return runtime.generate(generate, cancelled=flag)

    completion_id, created = new_id("cmpl"), int(time.time())

    def event(text: str, finish: str | None = None, usage: Usage | None = None, choices: bool = True):
        listed = [CompletionChoice(text=text, finish_reason=finish)] if choices else []
        return Completion(id=completion_id, created=created, model=body.model, choices=listed,
                          usage=usage, system_fingerprint=FINGERPRINT)

    async def events(chunks: AsyncIterator[Any]) -> AsyncIterator[Completion]:
        if body.echo and prompt:
            yield event(prompt)
        final = None
        async for chunk in chunks:
            if chunk.response:
                yield event(chunk.response)
            if chunk.done:
                final = chunk
        if final is None:
            return
        yield event("", finish_reason(final.done_reason))
        if include_usage(body):
            yield event("", usage=usage_of(final), choices=False)

    if body.stream:
        return await sse_response(request, make, events)
    chunks = await run_to_end(request, make)
    final = chunks[-1]
    text = "".join(c.response for c in chunks)
    result = event(prompt + text if body.echo else text, finish_reason(final.done_reason), usage_of(final))
    return result


def prompt_of(prompt: str | list[Any]) -> str:
    if isinstance(prompt, str):
        return prompt
    if len(prompt) == 1 and isinstance(prompt[0], str):
        return prompt[0]
    if prompt and not all(isinstance(p, str) for p in prompt):
        raise InvalidRequest("prompt: token arrays are not supported; send text")
    raise InvalidRequest("prompt: only one prompt per request is supported")


# -- embeddings -----------------------------------------------------------------------------


@router.post("/v1/embeddings", response_model=EmbeddingList)
async def embeddings(body: EmbeddingRequest, request: Request) -> EmbeddingList:
    if runtime_of(request).is_remote(body.model):
        return await gateway.forward(request, "embeddings", False)
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not texts or any(not isinstance(text, str) for text in texts):
        raise InvalidRequest("input: give a string or a non-empty list of strings "
                             "(token arrays are not supported)")
    if any(text == "" for text in texts):
        raise InvalidRequest("input: empty strings cannot be embedded")
    embed = EmbedRequest(model=body.model, input=list(texts), options=options_for(body),
                         keep_alive=body.keep_alive, dimensions=body.dimensions)
    result = await call_in_thread(runtime_of(request).embed, embed)
    count = result.prompt_eval_count or 0
    request.app.state.metrics.record_prompt_tokens(count)
    data = [EmbeddingObject(index=i, embedding=encode(vector, body.encoding_format))
            for i, vector in enumerate(result.embeddings)]
    return EmbeddingList(data=data, model=body.model,
                         usage=EmbeddingUsage(prompt_tokens=count, total_tokens=count))


def encode(vector: list[float], encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return vector
