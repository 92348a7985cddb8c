"""OpenAI's API under /v1: a translation layer over the same runtime as the Ollama routes.

Requests become the runtime's ChatRequest / GenerateRequest / EmbedRequest; the runtime's
chunks become OpenAI objects, streamed as server-sent events (``data: {json}`` and a last
``data: [DONE]``). Errors before the first chunk are normal HTTP errors in OpenAI's shape
(``ERROR_SHAPE``, see error_shapes.py); errors after it are one ``data: {"error": {...}}`` event.
The field translation is ``openai_translate.py``, the running and streaming ``openai_stream.py``,
this module holds the routes and the chunk-to-event mapping.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import APIRouter, Request

from hearth.api.openai_types import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChunkChoice,
    ChunkDelta,
    Completion,
    CompletionChoice,
    CompletionRequest,
    EmbeddingList,
    EmbeddingObject,
    EmbeddingRequest,
    EmbeddingUsage,
    FunctionCallDelta,
    ModelList,
    ModelObject,
    ToolCallDelta,
    Usage,
)
from hearth.api.types import (
    ChatRequest,
    EmbedRequest,
    GenerateRequest,
)
from hearth.errors import InvalidModelName, InvalidRequest, ModelNotFound
from hearth.runtime import Runtime
from hearth.server import gateway
from hearth.server.bridge import CancelFlag, call_in_thread
from hearth.server.error_shapes import ErrorShape, openai_error_body
from hearth.server.openai_stream import include_usage, run_to_end, sse_response
from hearth.server.openai_translate import (
    encode,
    finish_reason,
    format_of,
    options_for,
    owner_of,
    prompt_of,
    sampling_options,
    think_of,
    to_messages,
    tool_call_out,
    tool_choice_of,
    usage_of,
)

router = APIRouter()
# OpenAI clients parse {"error": {"message", "type", ...}} under /v1.
ERROR_SHAPE = ErrorShape("/v1", openai_error_body)

FINGERPRINT = "fp_hearth"
# /openapi.json: with "stream": true these routes answer with server-sent events instead.
STREAMED = {200: {"content": {"text/event-stream": {}}}}


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








# -- chat -----------------------------------------------------------------------------------


@router.post("/v1/chat/completions", response_model=ChatCompletion, responses=STREAMED)
async def chat_completions(body: ChatCompletionRequest, request: Request):
    if runtime_of(request).is_remote(body.model):
        return await gateway.forward(request, "chat/completions", body.stream)
    if body.logprobs:
        raise InvalidRequest("logprobs are not supported")
    # Tools, tool_choice and reasoning are the runtime's to apply (runtime/reply_plan.py): the
    # model's own call format is parsed there, so this layer only translates.
    chat = ChatRequest(
        model=body.model,
        messages=to_messages(body.messages),
        tools=[tool.model_dump(exclude_none=True) for tool in body.tools] if body.tools else None,
        tool_choice=tool_choice_of(body.tool_choice),
        think=think_of(body.reasoning_effort, body.think),
        chat_template_kwargs=body.chat_template_kwargs,
        format=format_of(body.response_format),
        options=sampling_options(body, body.max_completion_tokens or body.max_tokens),
        keep_alive=body.keep_alive,
    )
    runtime = runtime_of(request)

    def make(flag: CancelFlag) -> Iterator[Any]:
        return runtime.chat(chat, cancelled=flag)

    completion_id, created = new_id("chatcmpl"), int(time.time())
    if body.stream:
        return await sse_response(request, make,
                                  lambda chunks: chat_events(chunks, body, completion_id, created))
    chunks = await run_to_end(request, make)
    final = chunks[-1]
    content = "".join(c.message.content for c in chunks)
    thinking = "".join(c.message.thinking or "" for c in chunks) or None
    calls = [tool_call_out(call) for c in chunks for call in (c.message.tool_calls or ())]
    message = AssistantMessage(content=content if content or not calls else None,
                               reasoning_content=thinking, reasoning=thinking, tool_calls=calls or None)
    choice = ChatChoice(message=message, finish_reason=finish_reason(final.done_reason, bool(calls)))
    return ChatCompletion(id=completion_id, created=created, model=body.model, choices=[choice],
                          usage=usage_of(final), system_fingerprint=FINGERPRINT)


async def chat_events(chunks: AsyncIterator[Any], body: ChatCompletionRequest,
                      completion_id: str, created: int) -> AsyncIterator[ChatCompletionChunk]:
    def event(delta: ChunkDelta | None, finish: str | None = None, usage: Usage | None = None):
        choices = [] if delta is None else [ChunkChoice(delta=delta, finish_reason=finish)]
        return ChatCompletionChunk(id=completion_id, created=created, model=body.model, choices=choices,
                                   usage=usage, system_fingerprint=FINGERPRINT)

    yield event(ChunkDelta(role="assistant", content=""))
    final = None
    called = False
    async for chunk in chunks:
        message = chunk.message
        if message.thinking:
            yield event(ChunkDelta(reasoning_content=message.thinking, reasoning=message.thinking))
        if message.content:
            yield event(ChunkDelta(content=message.content))
        for call in message.tool_calls or ():
            # A call arrives whole: its id and name, then its arguments, keyed by its index.
            out = tool_call_out(call)
            index = call.function.index or 0
            yield event(ChunkDelta(tool_calls=[ToolCallDelta(
                index=index, id=out.id, type="function",
                function=FunctionCallDelta(name=out.function.name, arguments=""))]))
            yield event(ChunkDelta(tool_calls=[ToolCallDelta(
                index=index, function=FunctionCallDelta(arguments=out.function.arguments))]))
            called = True
        if chunk.done:
            final = chunk
    if final is None:
        return
    yield event(ChunkDelta(), finish_reason(final.done_reason, called))
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


