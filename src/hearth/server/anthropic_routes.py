"""Anthropic's Messages API under /v1/messages: a translation layer over the same runtime as
the Ollama and OpenAI routes, for Anthropic's SDKs and Claude Code.

``POST /v1/messages`` (Claude Code adds ``?beta=true``, which changes nothing here) answers a
whole message, or with ``"stream": true`` Anthropic's server-sent events
(``anthropic_stream.py``); ``POST /v1/messages/count_tokens`` counts the prompt as the model
would read it. Requests become the runtime's ChatRequest in ``anthropic_translate.py``; content
blocks are assembled in ``anthropic_blocks.py``. Errors take Anthropic's shape
(``{"type": "error", "error": {"type", "message"}}``, ``ERROR_SHAPE``) whatever raised them.
The model is any hearth model, by hearth's name for it; another name is a 404.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request

from hearth.api.anthropic_types import CountTokensRequest, MessageOut, MessagesRequest, TokenCount
from hearth.runtime import Runtime
from hearth.server.anthropic_blocks import BlockAssembly
from hearth.server.anthropic_stream import sse_response
from hearth.server.anthropic_translate import chat_request, options_of, stop_reason, usage_of
from hearth.server.bridge import CancelFlag, call_in_thread
from hearth.server.error_shapes import ErrorShape, anthropic_error_body
from hearth.server.openai_stream import run_to_end

router = APIRouter()
# Anthropic's SDKs read {"type": "error", "error": {"type": ..., "message": ...}}, not the
# OpenAI shape of the /v1 around it.
ERROR_SHAPE = ErrorShape("/v1/messages", anthropic_error_body)

# /openapi.json: with "stream": true the route answers with server-sent events instead.
STREAMED = {200: {"content": {"text/event-stream": {}}}}


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


def new_message_id() -> str:
    return "msg_" + secrets.token_hex(12)


@router.post("/v1/messages", response_model=MessageOut, responses=STREAMED)
async def create_message(body: MessagesRequest, request: Request):
    chat = chat_request(body, options_of(body), body.keep_alive)
    runtime = runtime_of(request)
    message = MessageOut(id=new_message_id(), model=body.model)

    if body.stream:
        remote = runtime.is_remote(body.model)

        def counted_then_chat(flag: CancelFlag) -> Iterator[Any]:
            # message_start carries the prompt's size, which the runtime reports only at the
            # end; it is counted first, and handed over only once the chat has started, so
            # that the chat's own errors (an unknown model, a prompt too long) still come
            # before the status line. A remote provider's prompt cannot be counted here: 0,
            # and message_delta brings the provider's count.
            prompt_tokens = 0 if remote else runtime.count_chat_tokens(chat)
            with contextlib.closing(runtime.chat(chat, cancelled=flag)) as chunks:
                for position, chunk in enumerate(chunks):
                    if position == 0:
                        yield prompt_tokens
                    yield chunk

        return await sse_response(request, counted_then_chat, message)

    chunks = await run_to_end(request, lambda flag: runtime.chat(chat, cancelled=flag))
    blocks = BlockAssembly()
    for chunk in chunks:
        blocks.feed(chunk)
    blocks.finish()
    final = chunks[-1]
    message.content = blocks.blocks
    message.stop_reason, message.stop_sequence = stop_reason(final, blocks.tool_calls)
    message.usage = usage_of(final)
    return message


@router.post("/v1/messages/count_tokens", response_model=TokenCount)
async def count_tokens(body: CountTokensRequest, request: Request) -> TokenCount:
    chat = chat_request(body)
    count = await call_in_thread(runtime_of(request).count_chat_tokens, chat)
    return TokenCount(input_tokens=count)
