"""A Responses API request, translated into the runtime's ChatRequest.

Input items become messages: ``message`` items by role (``developer`` and ``system`` are folded
into one system prompt at the start, after ``instructions``: many chat templates refuse a
system turn anywhere else, and agents such as Codex send several); ``function_call`` items
become the assistant turn's tool calls (consecutive ones, and a call right after the
assistant's text, join one turn); ``function_call_output`` items become ``tool`` messages that
name their call and its function; ``reasoning`` items become the next assistant turn's
thinking. Items hearth cannot act on (a hosted tool's call or result) are left out with a
warning in the server log, as are hosted tools in ``tools`` (``web_search``, ``file_search``,
...): a client that offers them still gets an answer from the function tools.
``namespace`` groups are flattened; a name two groups share is qualified as ``group__name``,
and the group is remembered so a call goes back out with its ``namespace``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from hearth.api.responses_types import (
    ContentPart,
    FunctionCallItem,
    FunctionCallOutputItem,
    MessageItem,
    ReasoningItem,
    ResponsesRequest,
)
from hearth.api.tool_arguments import arguments_object
from hearth.api.types import ChatRequest, Message, Think, ToolCall, ToolCallFunction, ToolChoice
from hearth.api.validation import first_problem
from hearth.errors import InvalidRequest
from hearth.server.openai_translate import options_for

log = logging.getLogger("hearth.server")

ITEM_MODELS: dict[str, type[BaseModel]] = {
    "message": MessageItem,
    "function_call": FunctionCallItem,
    "function_call_output": FunctionCallOutputItem,
    "reasoning": ReasoningItem,
}
TEXT_PARTS = {"input_text", "output_text", "text", "summary_text", "reasoning_text"}
IMAGE_PARTS = {"input_image", "image_url", "image"}
EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


# -- input items ----------------------------------------------------------------------------


def read_items(input: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The request's input as normalized item dicts (what the response log keeps)."""
    if isinstance(input, str):
        return [{"type": "message", "role": "user", "content": input}]
    items, left_out = [], []
    for index, raw in enumerate(input):
        kind = raw.get("type") or ("message" if "role" in raw else None)
        if kind == "item_reference":
            raise InvalidRequest(f"input[{index}]: item_reference is not supported; send the item "
                                 "itself, or continue with previous_response_id")
        model = ITEM_MODELS.get(kind) if isinstance(kind, str) else None
        if model is None:
            left_out.append(str(kind))
            continue
        try:
            item = model.model_validate({**raw, "type": kind})
        except ValidationError as exc:
            where, what = first_problem(exc)
            raise InvalidRequest(f"input[{index}].{where}: {what}") from exc
        items.append(item.model_dump(mode="json", exclude_none=True))
    if left_out:
        log.warning("/v1/responses: leaving out input items hearth cannot act on: %s",
                    ", ".join(sorted(set(left_out))))
    return items


def text_of(content: str | list[Any], where: str) -> str:
    if isinstance(content, str):
        return content
    texts = []
    for part in content:
        part = part if isinstance(part, ContentPart) else ContentPart.model_validate(part)
        if part.type in TEXT_PARTS:
            texts.append(part.text or "")
        elif part.type == "refusal":
            texts.append(part.refusal or "")
        elif part.type in IMAGE_PARTS:
            raise InvalidRequest(f"{where}: this model does not support images (it is a text-only model)")
        else:
            raise InvalidRequest(f"{where}: content parts of type '{part.type}' are not supported")
    return "\n".join(texts)


def joined(first: str | None, second: str) -> str:
    return f"{first}\n\n{second}" if first else second


def to_messages(items: list[dict[str, Any]], instructions: str | None, tools: ToolSet) -> list[Message]:
    system = [instructions] if instructions else []
    messages: list[Message] = []
    called: dict[str, str] = {}  # call_id -> the function it called
    thinking: list[str] = []     # reasoning waiting for the assistant turn it belongs to

    def assistant(join: bool) -> Message:
        last = messages[-1] if messages else None
        if not (join and last is not None and last.role == "assistant"):
            last = Message(role="assistant", content="")
            messages.append(last)
        if thinking:
            last.thinking = joined(last.thinking, "\n\n".join(thinking))
            thinking.clear()
        return last

    for index, item in enumerate(items):
        where, kind = f"input[{index}]", item["type"]
        if kind == "message":
            text = text_of(item["content"], where)
            role = item["role"]
            if role in ("system", "developer"):
                system.append(text)
            elif role == "user":
                thinking.clear()  # reasoning with no answer after it belongs to no turn
                messages.append(Message(role="user", content=text))
            else:
                last = messages[-1] if messages else None
                message = assistant(join=last is not None and not last.tool_calls)
                message.content = joined(message.content, text)
        elif kind == "function_call":
            arguments = arguments_object(item.get("arguments", "{}"))
            if arguments is None:
                raise InvalidRequest(f"{where}.arguments: the arguments of '{item['name']}' are not a JSON object")
            name = tools.flat_name(item.get("namespace"), item["name"])
            message = assistant(join=True)
            message.tool_calls = [*(message.tool_calls or []),
                                  ToolCall(id=item["call_id"], function=ToolCallFunction(name=name, arguments=arguments))]
            called[item["call_id"]] = name
        elif kind == "function_call_output":
            messages.append(Message(role="tool", content=text_of(item["output"], f"{where}.output"),
                                    tool_call_id=item["call_id"], tool_name=called.get(item["call_id"])))
        elif kind == "reasoning":
            parts = item.get("content") or item.get("summary") or []
            text = "\n".join(part["text"] for part in parts if part.get("text"))
            if text:
                thinking.append(text)
    if system:
        messages.insert(0, Message(role="system", content="\n\n".join(system)))
    return messages


# -- tools ----------------------------------------------------------------------------------


@dataclass
class ToolSet:
    """The function tools a request offers, flattened, and where each came from."""

    chat_tools: list[dict[str, Any]] = field(default_factory=list)  # for the ChatRequest
    echoed: list[dict[str, Any]] = field(default_factory=list)      # for the response object
    origin: dict[str, tuple[str | None, str]] = field(default_factory=dict)  # flat -> (namespace, name)

    def flat_name(self, namespace: str | None, name: str) -> str:
        """The flat name of ``name`` in group ``namespace`` (or, failing that, in any group)."""
        matches = [flat for flat, (group, original) in self.origin.items() if original == name]
        exact = [flat for flat in matches if self.origin[flat][0] == namespace]
        return (exact or matches or [name])[0]

    def origin_of(self, flat: str) -> tuple[str | None, str]:
        return self.origin.get(flat, (None, flat))

    def only(self, names: set[str]) -> ToolSet:
        kept = [tool for tool in self.chat_tools if tool["function"]["name"] in names]
        return ToolSet(kept, self.echoed, {name: self.origin[name] for name in names if name in self.origin})


def read_tools(tools: list[dict[str, Any]] | None) -> ToolSet:
    found = ToolSet()
    left_out: list[str] = []

    def add(tool: dict[str, Any], namespace: str | None, where: str) -> None:
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequest(f"{where}: a function tool needs a name")
        parameters = tool.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise InvalidRequest(f"{where}.parameters: give a JSON schema object")
        flat = name if name not in found.origin or namespace is None else f"{namespace}__{name}"
        if flat in found.origin:
            raise InvalidRequest(f"{where}: two function tools are named '{flat}'")
        found.origin[flat] = (namespace, name)
        # In Chat Completions' order (name, description, parameters): templates print the
        # tool as JSON, so the same tool gives the same prompt through either API.
        function: dict[str, Any] = {"name": flat}
        if tool.get("description"):
            function["description"] = tool["description"]
        function["parameters"] = parameters or EMPTY_PARAMETERS
        found.chat_tools.append({"type": "function", "function": function})

    for index, tool in enumerate(tools or []):
        kind = tool.get("type")
        if kind == "function":
            add(tool, None, f"tools[{index}]")
            found.echoed.append(tool)
        elif kind == "namespace":
            group = tool.get("name")
            inner = [t for t in tool.get("tools") or [] if isinstance(t, dict)]
            for position, nested in enumerate(inner):
                if nested.get("type") == "function":
                    add(nested, group, f"tools[{index}].tools[{position}]")
                else:
                    left_out.append(f"{group}.{nested.get('type')}")
            found.echoed.append({**tool, "tools": [t for t in inner if t.get("type") == "function"]})
        else:
            left_out.append(str(kind))
    if left_out:
        log.warning("/v1/responses: leaving out tools hearth cannot run (function tools only): %s",
                    ", ".join(left_out))
    return found


def read_tool_choice(choice: str | dict[str, Any] | None, tools: ToolSet) -> tuple[ToolChoice, ToolSet]:
    """The runtime's tool_choice, and the tools it leaves on offer."""
    if choice is None or choice in ("auto", "none"):
        return choice, tools
    if choice == "required":
        if not tools.chat_tools:
            raise InvalidRequest("tool_choice 'required' needs function tools")
        return "required", tools
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = tools.flat_name(choice.get("namespace"), str(choice.get("name")))
        if name not in tools.origin:
            raise InvalidRequest(f"tool_choice names '{choice.get('name')}', which is not among the function tools")
        return {"name": name}, tools
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = {tools.flat_name(t.get("namespace"), str(t.get("name")))
                   for t in choice.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"}
        mode = choice.get("mode", "auto")
        if mode not in ("auto", "required"):
            raise InvalidRequest("tool_choice.mode: give auto or required")
        kept = tools.only(allowed)
        if mode == "required" and not kept.chat_tools:
            raise InvalidRequest("tool_choice allows no function tool among the tools")
        return mode, kept
    kind = choice.get("type") if isinstance(choice, dict) else choice
    raise InvalidRequest(f"tool_choice '{kind}' is not supported: hearth runs function tools only")


# -- settings -------------------------------------------------------------------------------


def think_of(body: ResponsesRequest) -> Think:
    effort = body.reasoning.effort if body.reasoning else None
    if effort is None:
        return None
    if effort in ("none", "minimal"):
        return False
    return "high" if effort == "xhigh" else effort


def format_of(body: ResponsesRequest) -> str | dict[str, Any] | None:
    spec = body.text.format if body.text else None
    kind = spec.get("type") if spec else "text"
    if kind == "text":
        return None
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        schema = spec.get("schema")
        if schema is not None and not isinstance(schema, dict):
            raise InvalidRequest("text.format.schema: give a JSON schema object")
        return schema or "json"
    raise InvalidRequest(f"text.format.type: '{kind}' is not supported (text, json_object or json_schema)")


def chat_request(body: ResponsesRequest, items: list[dict[str, Any]], tools: ToolSet,
                 choice: ToolChoice) -> ChatRequest:
    return ChatRequest(
        model=body.model,
        messages=to_messages(items, body.instructions, tools),
        tools=tools.chat_tools or None,
        tool_choice=choice,
        format=format_of(body),
        options=options_for(body, num_predict=body.max_output_tokens, temperature=body.temperature,
                            top_p=body.top_p, seed=body.seed),
        keep_alive=body.keep_alive,
        think=think_of(body),
        # OpenAI's default is to refuse a conversation that does not fit (truncation "disabled").
        truncate=body.truncation == "auto",
    )
