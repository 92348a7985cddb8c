"""hearth's requests as OpenAI request bodies, and OpenAI's streamed chunks read back.

Only the options OpenAI's API defines are sent (temperature, top_p, num_predict as max_tokens,
seed, stop, presence and frequency penalties); llama.cpp-only options (top_k, min_p,
repeat_penalty, num_ctx, ...) have no meaning for a hosted model and are left out, since
several providers refuse fields they do not know.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections import deque
from typing import Any

from hearth.api.tool_arguments import read_arguments
from hearth.api.types import ChatRequest, Message, Options, ToolCall, ToolCallFunction
from hearth.errors import InvalidRequest
from hearth.providers.directory import Provider

# Fields only hearth understands; a provider may refuse them, so the gateway drops them.
HEARTH_ONLY_FIELDS = ("keep_alive", "options", "num_ctx", "top_k")

_IMAGE_TYPES = ((b"\x89PNG", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"),
                (b"RIFF", "image/webp"))


def sampling(options: Options | None) -> dict[str, Any]:
    if options is None:
        return {}
    body: dict[str, Any] = {}
    for name in ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty"):
        value = getattr(options, name)
        if value is not None:
            body[name] = value
    if options.num_predict is not None and options.num_predict > 0:
        body["max_tokens"] = options.num_predict
    if options.stop:
        body["stop"] = list(options.stop)
    return body


def response_format(fmt: str | dict[str, Any] | None, provider: Provider) -> dict[str, Any] | None:
    """Ollama's ``format`` ("json" or a JSON schema) as OpenAI's ``response_format``."""
    if not fmt:
        return None
    if fmt == "json":
        return {"type": "json_object"}
    if not isinstance(fmt, dict):
        raise InvalidRequest('format must be "json" or a JSON schema object')
    if provider.structured_output == "json_object":
        return {"type": "json_object", "schema": fmt}
    return {"type": "json_schema", "json_schema": {"name": "response", "schema": fmt}}


def adapt_response_format(body: dict[str, Any], provider: Provider) -> None:
    """An OpenAI client's json_schema request, for a provider that takes the other style."""
    requested = body.get("response_format")
    if provider.structured_output != "json_object" or not isinstance(requested, dict):
        return
    if requested.get("type") == "json_schema":
        schema = (requested.get("json_schema") or {}).get("schema")
        body["response_format"] = {"type": "json_object", **({"schema": schema} if schema else {})}


def _image_url(data: str) -> str:
    try:
        head = base64.b64decode(data[:64] + "=" * (-len(data[:64]) % 4), validate=False)
    except (binascii.Error, ValueError):
        raise InvalidRequest("images must be base64-encoded") from None
    kind = next((mime for magic, mime in _IMAGE_TYPES if head.startswith(magic)), "image/png")
    return f"data:{kind};base64,{data}"


def _content(message: Message) -> str | list[dict[str, Any]]:
    if not message.images:
        return message.content
    parts: list[dict[str, Any]] = [{"type": "text", "text": message.content}] if message.content else []
    parts += [{"type": "image_url", "image_url": {"url": _image_url(image)}} for image in message.images]
    return parts


def messages_body(messages: list[Message]) -> list[dict[str, Any]]:
    """Ollama messages as OpenAI's. Ollama's tool results carry no call id, so each assistant
    tool call gets one and the tool messages that follow answer them in order."""
    out: list[dict[str, Any]] = []
    pending: deque[str] = deque()
    for i, message in enumerate(messages):
        if message.role == "assistant" and message.tool_calls:
            calls = []
            for j, call in enumerate(message.tool_calls):
                call_id = f"call_{i}_{j}"
                pending.append(call_id)
                calls.append({"id": call_id, "type": "function",
                              "function": {"name": call.function.name,
                                           "arguments": json.dumps(call.function.arguments)}})
            out.append({"role": "assistant", "content": message.content or None, "tool_calls": calls})
        elif message.role == "tool":
            call_id = pending.popleft() if pending else f"call_{i}"
            out.append({"role": "tool", "content": message.content, "tool_call_id": call_id})
        else:
            out.append({"role": message.role, "content": _content(message)})
    return out


def chat_body(request: ChatRequest, model: str, provider: Provider) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": messages_body(request.messages), "stream": True}
    if provider.stream_usage:
        body["stream_options"] = {"include_usage": True}
    if request.tools:
        body["tools"] = request.tools
    fmt = response_format(request.format, provider)
    if fmt is not None:
        body["response_format"] = fmt
    body.update(sampling(request.options))
    return body


def _arguments(text: str) -> dict[str, Any]:
    try:
        value = read_arguments(text)
    except ValueError:
        return {"_raw": text}  # cut short: keep what came rather than lose it
    return value if isinstance(value, dict) else {"value": value}


class StreamReader:
    """Reads the events of a streamed chat or text completion: text as it comes, then the
    finish reason, tool calls and token usage."""

    def __init__(self) -> None:
        self.started_ns = time.perf_counter_ns()
        self.first_token_ns: int | None = None
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] = {}
        self.pieces = 0
        self._calls: dict[int, dict[str, str]] = {}

    def feed(self, event: dict[str, Any]) -> str:
        usage = event.get("usage") or (event.get("x_groq") or {}).get("usage")
        if isinstance(usage, dict):
            self.usage = usage
        text_parts: list[str] = []
        for choice in event.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            # "delta" when streamed; "message" or "text" from a provider that ignored "stream".
            delta = choice.get("delta") or choice.get("message") or {}
            text = delta.get("content") if isinstance(delta, dict) else None
            if text is None:
                text = choice.get("text")
            if isinstance(text, str) and text:
                text_parts.append(text)
            for call in (delta.get("tool_calls") if isinstance(delta, dict) else None) or []:
                self._add_call(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        text = "".join(text_parts)
        if (text or self._calls) and self.first_token_ns is None:
            self.first_token_ns = time.perf_counter_ns()
        if text:
            self.pieces += 1
        return text

    def _add_call(self, call: dict[str, Any]) -> None:
        slot = self._calls.setdefault(int(call.get("index", len(self._calls))), {"name": "", "arguments": ""})
        function = call.get("function") or {}
        if function.get("name"):
            slot["name"] = function["name"]
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            slot["arguments"] += arguments
        elif isinstance(arguments, dict):
            slot["arguments"] = json.dumps(arguments)

    def tool_calls(self) -> list[ToolCall]:
        return [ToolCall(function=ToolCallFunction(name=slot["name"], arguments=_arguments(slot["arguments"])))
                for _, slot in sorted(self._calls.items()) if slot["name"]]

    @property
    def done_reason(self) -> str:
        return "length" if self.finish_reason == "length" else "stop"

    def timings(self) -> dict[str, Any]:
        """Ollama's timing fields: the wait for the first token stands in for prompt eval."""
        end = time.perf_counter_ns()
        first = self.first_token_ns or end
        completion = self.usage.get("completion_tokens")
        prompt = self.usage.get("prompt_tokens")
        return {
            "total_duration": end - self.started_ns,
            "load_duration": 0,
            "prompt_eval_count": prompt if isinstance(prompt, int) else None,
            "prompt_eval_duration": first - self.started_ns,
            # Without usage from the provider, each streamed piece counts as one token.
            "eval_count": completion if isinstance(completion, int) else self.pieces,
            "eval_duration": max(end - first, 1),
        }
