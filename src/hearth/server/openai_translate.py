"""OpenAI's request and response fields, translated to and from hearth's own (the Ollama wire
types the runtime speaks): options, messages and their content parts, response formats,
finish reasons, usage, prompts, embedding encodings."""

from __future__ import annotations

import base64
import json
import secrets
import struct
from typing import Any

from pydantic import ValidationError

from hearth.api.openai_types import (
    ChatMessage,
    ContentPart,
    FunctionCall,
    HearthExtras,
    NamedToolChoice,
    ResponseFormat,
    SamplingFields,
    ToolCallOut,
    Usage,
)
from hearth.api.tool_arguments import read_arguments
from hearth.api.types import Message, Options, ToolCall, ToolCallFunction
from hearth.api.validation import first_problem
from hearth.errors import InvalidModelName, InvalidRequest
from hearth.names import ModelName

IMAGE_PARTS = {"image_url", "input_image", "image"}


def new_call_id() -> str:
    return "call_" + secrets.token_hex(12)


def owner_of(name: str) -> str:
    try:
        return ModelName.parse(name).namespace
    except InvalidModelName:
        return "library"


def options_for(body: HearthExtras, **explicit: Any) -> Options:
    """``options`` from the body, overridden by the OpenAI fields and the top-level extras."""
    data = body.options.model_dump(exclude_none=True) if body.options else {}
    explicit.update(num_ctx=body.num_ctx, top_k=body.top_k)
    data.update({key: value for key, value in explicit.items() if value is not None})
    try:
        return Options(**data)
    except ValidationError as exc:
        where, what = first_problem(exc)
        raise InvalidRequest(f"invalid request: {where}: {what}") from exc


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


def to_messages(messages: list[ChatMessage]) -> list[Message]:
    """OpenAI messages as hearth's; a tool result gets the name of the call it answers (Ollama's
    tool_name), which some templates print."""
    names: dict[str, str] = {}
    converted = []
    for message in messages:
        out = to_message(message)
        for call in out.tool_calls or ():
            if call.id:
                names[call.id] = call.function.name
        if out.role == "tool" and out.tool_call_id:
            out.tool_name = names.get(out.tool_call_id, message.name)
        converted.append(out)
    return converted


def to_message(message: ChatMessage) -> Message:
    role = {"developer": "system", "function": "tool"}.get(message.role, message.role)
    tool_calls = None
    if message.tool_calls:
        if role != "assistant":
            raise InvalidRequest("only assistant messages may carry tool_calls")
        tool_calls = [
            ToolCall(id=call.id, function=ToolCallFunction(
                name=call.function.name, arguments=arguments_dict(call.function.name, call.function.arguments)))
            for call in message.tool_calls
        ]
    return Message(role=role, content=text_of(message.content), tool_calls=tool_calls,
                   tool_call_id=message.tool_call_id if role == "tool" else None,
                   tool_name=message.name if role == "tool" else None)


def tool_choice_of(choice: str | NamedToolChoice | None) -> str | dict[str, Any] | None:
    if isinstance(choice, NamedToolChoice):
        return {"name": choice.function.name}
    return choice


def think_of(effort: str | None, think: bool | str | None) -> bool | str | None:
    """Ollama's think (extra_body) wins; else OpenAI's reasoning_effort."""
    if think is not None:
        return think
    if effort is None:
        return None
    return False if effort in ("none", "minimal") else effort


def tool_call_out(call: ToolCall) -> ToolCallOut:
    return ToolCallOut(id=call.id or new_call_id(),
                       function=FunctionCall(name=call.function.name, arguments=json.dumps(call.function.arguments)))


def arguments_dict(call_name: str, arguments: str) -> dict[str, Any]:
    """An assistant message's tool-call arguments (a JSON string) as the dict templates expect."""
    try:
        value = read_arguments(arguments)
    except ValueError as exc:
        raise InvalidRequest(f"tool call '{call_name}': arguments are not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidRequest(f"tool call '{call_name}': arguments must be a JSON object")
    return value


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
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion,
                 dropped_messages=getattr(final, "dropped_messages", None))


def prompt_of(prompt: str | list[Any]) -> str:
    if isinstance(prompt, str):
        return prompt
    if len(prompt) == 1 and isinstance(prompt[0], str):
        return prompt[0]
    if prompt and not all(isinstance(p, str) for p in prompt):
        raise InvalidRequest("prompt: token arrays are not supported; send text")
    raise InvalidRequest("prompt: only one prompt per request is supported")


def encode(vector: list[float], encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return vector
