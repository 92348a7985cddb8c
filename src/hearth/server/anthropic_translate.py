"""Anthropic's Messages request, translated to the runtime's ChatRequest, and the runtime's last
chunk read back as Anthropic's stop reason and usage.

What Anthropic keeps apart, hearth's messages carry as fields: a ``tool_use`` block is an
assistant ``ToolCall``, a ``tool_result`` block is a "tool" message (with the name of the tool
whose call it answers, which some templates print), a ``thinking`` block is the assistant's
``thinking``. System text, whether in ``system`` or in ``system``-role messages anywhere in
``messages`` (recent Claude Code puts one last), becomes one system message first: many chat
templates refuse a system message after the first turn.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from hearth.api.anthropic_types import (
    ImageBlock,
    InputMessage,
    MessagesRequest,
    MessageUsage,
    OtherBlock,
    PromptFields,
    RedactedThinkingBlock,
    StopReason,
    TextBlock,
    ThinkingBlock,
    ThinkingConfig,
    ToolChoice,
    ToolDefinition,
    ToolResultBlock,
    ToolUseBlock,
)
from hearth.api.types import ChatRequest, Message, Options, Think, ToolCall, ToolCallFunction
from hearth.api.validation import first_problem
from hearth.errors import InvalidRequest

log = logging.getLogger("hearth.server")

TEXT_ONLY = "this model does not support images (it is a text-only model)"
# A client tool has no type or "custom"; anything else is one of Anthropic's server tools
# (web search, code execution, ...), which a local model has no way to run.
CLIENT_TOOL_TYPES = (None, "custom")
EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def chat_request(body: PromptFields, options: Options | None = None,
                 keep_alive: str | float | int | None = None) -> ChatRequest:
    tools = tools_of(body.tools)
    system, messages = messages_of(body.system, body.messages)
    if system:
        messages.insert(0, Message(role="system", content=system))
    # truncate=False: Anthropic's clients expect "prompt is too long" (and compact the
    # conversation themselves), not a reply to a silently shortened one.
    return ChatRequest(model=body.model, messages=messages, tools=tools,
                       tool_choice=tool_choice_of(body.tool_choice, tools), think=think_of(body.thinking),
                       options=options, keep_alive=keep_alive, truncate=False)


def options_of(body: MessagesRequest) -> Options:
    fields = {"num_predict": body.max_tokens, "temperature": body.temperature, "top_p": body.top_p,
              "top_k": body.top_k, "stop": body.stop_sequences or None}
    try:
        return Options(**{key: value for key, value in fields.items() if value is not None})
    except ValidationError as exc:
        where, what = first_problem(exc)
        where = "stop_sequences" if where.startswith("stop") else where
        raise InvalidRequest(f"invalid request: {where}: {what}") from exc


# -- messages --------------------------------------------------------------------------------


def text_of(content: str | list[Any], where: str) -> str:
    """The text of a string or of text blocks (system prompts, system messages, tool results)."""
    if isinstance(content, str):
        return content
    texts = []
    for block in content:
        if isinstance(block, TextBlock):
            texts.append(block.text)
        elif isinstance(block, ImageBlock):
            raise InvalidRequest(TEXT_ONLY)
        else:
            raise InvalidRequest(f"{where}: content blocks of type '{block.type}' are not supported here")
    return "\n\n".join(texts)


def merged(messages: list[InputMessage]) -> list[tuple[str, list[Any]]]:
    """Consecutive messages of one role as one, as Anthropic's API combines them (templates
    that insist on alternating roles would refuse them otherwise); string content as a block."""
    turns: list[tuple[str, list[Any]]] = []
    for message in messages:
        blocks = [TextBlock(text=message.content)] if isinstance(message.content, str) else list(message.content)
        if turns and turns[-1][0] == message.role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((message.role, blocks))
    return turns


def messages_of(system: str | list[TextBlock] | None,
                messages: list[InputMessage]) -> tuple[str, list[Message]]:
    """The system text and the conversation, in hearth's messages."""
    system_parts = [text_of(system, "system")] if system else []
    tool_names: dict[str, str] = {}  # tool_use id -> the tool's name, for the results
    out: list[Message] = []
    for position, (role, blocks) in enumerate(merged(messages)):
        where = f"messages[{position}]"
        if role == "system":
            system_parts.append(text_of(blocks, where))
        elif role == "assistant":
            out.append(assistant_message(blocks, where, tool_names))
        else:
            out.extend(user_messages(blocks, where, tool_names))
    return "\n\n".join(part for part in system_parts if part), out


def assistant_message(blocks: list[Any], where: str, tool_names: dict[str, str]) -> Message:
    texts, thoughts, calls = [], [], []
    for block in blocks:
        if isinstance(block, TextBlock):
            texts.append(block.text)
        elif isinstance(block, ThinkingBlock):
            thoughts.append(block.thinking)
        elif isinstance(block, RedactedThinkingBlock):
            continue  # encrypted by Anthropic for its own models: nothing here can read it
        elif isinstance(block, ToolUseBlock):
            tool_names[block.id] = block.name
            calls.append(ToolCall(id=block.id, function=ToolCallFunction(name=block.name, arguments=block.input)))
        else:
            raise_unreadable(block, where, "assistant")
    return Message(role="assistant", content="\n\n".join(texts), thinking="\n\n".join(thoughts) or None,
                   tool_calls=calls or None)


def user_messages(blocks: list[Any], where: str, tool_names: dict[str, str]) -> list[Message]:
    """A user turn: each tool result as a "tool" message, the text around them as user messages."""
    out: list[Message] = []
    texts: list[str] = []

    def flush() -> None:
        if texts:
            out.append(Message(role="user", content="\n\n".join(texts)))
            texts.clear()

    for block in blocks:
        if isinstance(block, TextBlock):
            texts.append(block.text)
        elif isinstance(block, ToolResultBlock):
            flush()
            out.append(tool_message(block, where, tool_names))
        else:
            raise_unreadable(block, where, "user")
    flush()
    return out


def tool_message(block: ToolResultBlock, where: str, tool_names: dict[str, str]) -> Message:
    text = text_of(block.content or "", f"{where}: tool_result")
    if block.is_error:
        # Templates have no place for the flag: the model reads it in the result instead.
        text = f"Error: {text}"
    return Message(role="tool", content=text, tool_call_id=block.tool_use_id,
                   tool_name=tool_names.get(block.tool_use_id))


def raise_unreadable(block: Any, where: str, role: str) -> None:
    if isinstance(block, ImageBlock):
        raise InvalidRequest(TEXT_ONLY)
    if isinstance(block, OtherBlock):
        raise InvalidRequest(f"{where}: content blocks of type '{block.type}' are not supported")
    raise InvalidRequest(f"{where}: a '{block.type}' block cannot be in a {role} message")


# -- tools, tool choice, thinking ------------------------------------------------------------


def tools_of(tools: list[ToolDefinition] | None) -> list[dict[str, Any]] | None:
    """Client tools as the OpenAI-style function dicts the runtime and templates take, the
    schema passed through as written; server tools are left out with a warning."""
    if not tools:
        return None
    functions = []
    for tool in tools:
        if tool.type not in CLIENT_TOOL_TYPES:
            log.warning("leaving out Anthropic server tool '%s' (%s): a local model cannot run it",
                        tool.name, tool.type)
            continue
        function: dict[str, Any] = {"name": tool.name, "parameters": tool.input_schema or EMPTY_SCHEMA}
        if tool.description is not None:
            function["description"] = tool.description
        functions.append({"type": "function", "function": function})
    return functions or None


def tool_choice_of(choice: ToolChoice | None, tools: list[dict[str, Any]] | None) -> Any:
    if choice is None:
        return None
    if choice.type in ("any", "tool") and not tools:
        raise InvalidRequest(f"tool_choice '{choice.type}' needs tools")
    if choice.type == "tool":
        names = {tool["function"]["name"] for tool in tools or []}
        if not choice.name:
            raise InvalidRequest("tool_choice: type 'tool' needs the tool's name")
        if choice.name not in names:
            raise InvalidRequest(f"tool_choice names '{choice.name}', which is not among the tools")
        return {"name": choice.name}
    if not tools:
        return None  # "auto" or "none" with nothing to call: nothing to decide
    return {"auto": "auto", "any": "required", "none": "none"}[choice.type]


def think_of(thinking: ThinkingConfig | None) -> Think:
    # "adaptive" lets the model decide: its template's default. budget_tokens has no
    # counterpart in local templates and is left to max_tokens.
    if thinking is None or thinking.type == "adaptive":
        return None
    return thinking.type == "enabled"


# -- the answer ------------------------------------------------------------------------------


def stop_reason(final: Any, tool_calls: bool) -> tuple[StopReason, str | None]:
    """Anthropic's stop_reason and stop_sequence from the runtime's last chunk."""
    if final.done_reason == "length":
        return "max_tokens", None
    if tool_calls:
        return "tool_use", None
    stop = getattr(final, "stop_sequence", None)
    if stop:
        return "stop_sequence", stop
    return "end_turn", None


def usage_of(final: Any) -> MessageUsage:
    # Anthropic counts the prompt tokens read from its cache apart from input_tokens; hearth's
    # prompt_cache_count is the same thing (the prefix reused from an earlier request).
    return MessageUsage(input_tokens=final.prompt_eval_count or 0, output_tokens=final.eval_count or 0,
                        cache_read_input_tokens=final.prompt_cache_count or 0)
